/**
 * What destinations keep on disk, behind one small interface so that the
 * workers do not depend on how the journal stores it: a cursor per
 * destination, the attempts, the dead letters, the paused state, and the
 * `delivery.failed` entry. `JournalDestinationStore` implements it over the
 * journal port: its cursors, three job queues of its own (attempts, dead
 * letters, paused state), and `appendInternal`.
 */
import type { JobKey, JournalPort } from '../journal/port.js'

const ATTEMPTS = 'destination-attempts'
const DEAD = 'destination-dead-letters'
const PAUSED = 'destination-paused'

export type { AttemptOutcome, AttemptRecord, DeadLetter, PausedState } from './records.js'
import type { AttemptRecord, DeadLetter, PausedState } from './records.js'

/** What a `delivery.failed` entry says (its JSON body). */
export interface DeliveryFailed {
  destination: string
  seq: number
  source: string
  event: string
  key: string
  attempts: number
  reason: string
  failed_at: string
}

/** The storage a destination worker needs. Reads may be async (a journal behind a port). */
export interface DestinationStore {
  /** The last seq this destination is done with (delivered or dead-lettered), 0 when new. */
  cursor(name: string): Promise<number>
  saveCursor(name: string, seq: number): Promise<void>
  /** Records an attempt, dropping the oldest when more than `keep` are kept for `name`. */
  recordAttempt(name: string, a: AttemptRecord, keep: number): Promise<void>
  /** Newest first: of one event when `seq` is given, else of every event. */
  attempts(name: string, opts: { seq?: number; limit: number }): Promise<AttemptRecord[]>
  addDeadLetter(name: string, d: DeadLetter, failed: DeliveryFailed): Promise<void>
  removeDeadLetter(name: string, seq: number): Promise<void>
  deadLetters(name: string): Promise<DeadLetter[]>
  paused(name: string): Promise<PausedState | undefined>
  savePaused(name: string, s: PausedState): Promise<void>
}

/** The journal cursor of a destination: `:` cannot occur in a stream consumer's name, so the two never meet. */
export function cursorName(destination: string): string {
  return `destination:${destination}`
}

export class JournalDestinationStore implements DestinationStore {
  #journal: JournalPort
  /** Per destination, the `[seq, attempt]` of every attempt kept, in key order; loaded once on first use. */
  #keys = new Map<string, Array<[number, number]>>()
  #recording: Promise<unknown> = Promise.resolve()

  constructor(journal: JournalPort) {
    this.#journal = journal
    for (const q of [ATTEMPTS, DEAD, PAUSED]) journal.openQueue(q)
  }

  async cursor(name: string): Promise<number> {
    return (await this.#journal.getCursor(cursorName(name)))?.seq ?? 0
  }

  async saveCursor(name: string, seq: number): Promise<void> {
    await this.#journal.saveCursors(new Map([[cursorName(name), seq]]))
  }

  recordAttempt(name: string, a: AttemptRecord, keep: number): Promise<void> {
    // One at a time: the kept keys are those the previous write committed.
    const next = this.#recording.then(() => this.#record(name, a, keep))
    this.#recording = next.catch(() => undefined)
    return next
  }

  async #keysOf(name: string): Promise<Array<[number, number]>> {
    let keys = this.#keys.get(name)
    if (keys === undefined) {
      keys = []
      for (const { key } of await this.#journal.jobs<AttemptRecord>(ATTEMPTS)) {
        if (key[0] === name) keys.push([key[1] as number, key[2] as number])
      }
      this.#keys.set(name, keys)
    }
    return keys
  }

  async #record(name: string, a: AttemptRecord, keep: number): Promise<void> {
    const keys = await this.#keysOf(name)
    const at = insertionPoint(keys, a.seq, a.attempt)
    const fresh = !(keys[at]?.[0] === a.seq && keys[at]?.[1] === a.attempt)
    // The oldest events' attempts go first: they are the ones least likely to be asked about.
    const drop = Math.max(0, keys.length + (fresh ? 1 : 0) - keep)
    const remove: Array<{ queue: string; key: JobKey }> = keys.slice(0, Math.min(drop, at)).map(([seq, n]) => ({ queue: ATTEMPTS, key: [name, seq, n] }))
    await this.#journal.changeJobs(() => ({ remove, enqueue: [{ queue: ATTEMPTS, key: [name, a.seq, a.attempt], job: a }] }))
    if (fresh) keys.splice(at, 0, [a.seq, a.attempt])
    keys.splice(0, remove.length)
  }

  async attempts(name: string, opts: { seq?: number; limit: number }): Promise<AttemptRecord[]> {
    const keys = await this.#keysOf(name)
    const chosen = (opts.seq === undefined ? keys : keys.filter(([seq]) => seq === opts.seq)).slice(-opts.limit).reverse()
    const out: AttemptRecord[] = []
    for (const [seq, n] of chosen) {
      const a = await this.#journal.getJob<AttemptRecord>(ATTEMPTS, [name, seq, n])
      if (a) out.push(a)
    }
    return out
  }

  async addDeadLetter(name: string, d: DeadLetter, failed: DeliveryFailed): Promise<void> {
    const body = Buffer.from(JSON.stringify(failed))
    // The entry first: a crash between the two leaves an entry and a re-delivery, never a silent loss.
    await this.#journal.appendInternal({ source: d.source, event: 'delivery.failed', key: d.key, body, receivedAt: d.at, json: failed })
    await this.#journal.changeJobs(() => ({ enqueue: [{ queue: DEAD, key: [name, d.seq], job: d }] }))
  }

  async removeDeadLetter(name: string, seq: number): Promise<void> {
    await this.#journal.changeJobs(() => ({ remove: [{ queue: DEAD, key: [name, seq] }] }))
  }

  async deadLetters(name: string): Promise<DeadLetter[]> {
    return (await this.#journal.jobs<DeadLetter>(DEAD)).filter(({ key }) => key[0] === name).map(({ job }) => job)
  }

  async paused(name: string): Promise<PausedState | undefined> {
    return this.#journal.getJob<PausedState>(PAUSED, [name])
  }

  async savePaused(name: string, s: PausedState): Promise<void> {
    await this.#journal.changeJobs(() => ({ enqueue: [{ queue: PAUSED, key: [name], job: s }] }))
  }
}

/** Where `[seq, attempt]` stands (or would stand) in sorted `keys`. */
function insertionPoint(keys: Array<[number, number]>, seq: number, attempt: number): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const k = keys[mid]!
    if (k[0] < seq || (k[0] === seq && k[1] < attempt)) lo = mid + 1
    else hi = mid
  }
  return lo
}
