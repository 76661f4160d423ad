/**
 * What destinations keep on disk, behind one small interface so that the
 * workers do not depend on how the journal stores it: a cursor per
 * destination, the attempts, the dead letters, the paused state, and the
 * `delivery.failed` entry. `JournalDestinationStore` implements it over the
 * journal's public methods (its cursors, named LMDB databases in the same
 * environment, and `appendInternal`).
 */
import type { Database } from 'lmdb'
import type { Journal } from '../journal/journal.js'

/** How one attempt ended. */
export type AttemptOutcome = 'delivered' | 'retry' | 'dead' | 'paused' | 'circuit'

/** One delivery attempt, as `GET /v1/destinations/<name>/attempts` shows it. */
export interface AttemptRecord {
  seq: number
  /** 1 for the first attempt of this event (since the relay started it). */
  attempt: number
  /** Epoch ms the request was sent. */
  at: number
  /** The destination's HTTP status, null when no answer came. */
  status: number | null
  latency_ms: number
  /** Why it failed when it did (`timeout`, `ECONNREFUSED`, `status 500`, …). */
  error: string | null
  outcome: AttemptOutcome
  /** Epoch ms of the next attempt, null when none is planned. */
  next_at: number | null
}

/** An event given up on; replay sends it again. */
export interface DeadLetter {
  seq: number
  source: string
  event: string
  key: string
  /** Epoch ms it was dead-lettered. */
  at: number
  attempts: number
  reason: string
}

export interface PausedState {
  paused: boolean
  /** `operator` or `gone (410)`. */
  reason: string
  at: number
}

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

/** Seqs stay below this, so it closes every `[name, seq, …]` range. */
const SEQ_END = Number.MAX_SAFE_INTEGER

export class JournalDestinationStore implements DestinationStore {
  #journal: Journal
  #attempts: Database<AttemptRecord, [string, number, number]>
  #dead: Database<DeadLetter, [string, number]>
  #paused: Database<PausedState, string>
  /** Attempts kept per destination, counted once on first use. */
  #counts = new Map<string, number>()
  #recording: Promise<unknown> = Promise.resolve()

  constructor(journal: Journal) {
    this.#journal = journal
    this.#attempts = journal.openDB('destination-attempts')
    this.#dead = journal.openDB('destination-dead-letters')
    this.#paused = journal.openDB('destination-paused')
  }

  async cursor(name: string): Promise<number> {
    return (await this.#journal.getCursor(cursorName(name)))?.seq ?? 0
  }

  async saveCursor(name: string, seq: number): Promise<void> {
    await this.#journal.saveCursors(new Map([[cursorName(name), seq]]))
  }

  recordAttempt(name: string, a: AttemptRecord, keep: number): Promise<void> {
    // One at a time: the count and the oldest keys are read from what the previous write committed.
    const next = this.#recording.then(() => this.#record(name, a, keep))
    this.#recording = next.catch(() => undefined)
    return next
  }

  async #record(name: string, a: AttemptRecord, keep: number): Promise<void> {
    let count = this.#counts.get(name)
    if (count === undefined) {
      count = 0
      for (const _ of this.#attempts.getKeys({ start: [name, 0, 0], end: [name, SEQ_END] })) count++
    }
    if (!this.#attempts.doesExist([name, a.seq, a.attempt])) count++
    const writes: Array<Promise<boolean>> = [this.#attempts.put([name, a.seq, a.attempt], a)]
    // The oldest events' attempts go first: they are the ones least likely to be asked about.
    if (count > keep) {
      for (const k of this.#attempts.getKeys({ start: [name, 0, 0], end: [name, SEQ_END], limit: count - keep })) {
        writes.push(this.#attempts.remove(k))
        count--
      }
    }
    this.#counts.set(name, count)
    await Promise.all(writes)
  }

  async attempts(name: string, opts: { seq?: number; limit: number }): Promise<AttemptRecord[]> {
    const range =
      opts.seq === undefined
        ? { start: [name, SEQ_END] as [string, number], end: [name, 0, 0] as [string, number, number] }
        : { start: [name, opts.seq, SEQ_END] as [string, number, number], end: [name, opts.seq, 0] as [string, number, number] }
    const out: AttemptRecord[] = []
    for (const { value } of this.#attempts.getRange({ ...range, reverse: true, limit: opts.limit })) out.push(value)
    return out
  }

  async addDeadLetter(name: string, d: DeadLetter, failed: DeliveryFailed): Promise<void> {
    const body = Buffer.from(JSON.stringify(failed))
    // The entry first: a crash between the two leaves an entry and a re-delivery, never a silent loss.
    await this.#journal.appendInternal({ source: d.source, event: 'delivery.failed', key: d.key, body, receivedAt: d.at, json: failed })
    await this.#dead.put([name, d.seq], d)
  }

  async removeDeadLetter(name: string, seq: number): Promise<void> {
    await this.#dead.remove([name, seq])
  }

  async deadLetters(name: string): Promise<DeadLetter[]> {
    const out: DeadLetter[] = []
    for (const { value } of this.#dead.getRange({ start: [name, 0], end: [name, SEQ_END] })) out.push(value)
    return out
  }

  async paused(name: string): Promise<PausedState | undefined> {
    return this.#paused.get(name)
  }

  async savePaused(name: string, s: PausedState): Promise<void> {
    await this.#paused.put(name, s)
  }
}
