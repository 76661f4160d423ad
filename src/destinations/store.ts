/**
 * What destinations keep on disk, behind one small interface so that the
 * workers do not depend on how the journal stores it: a cursor per
 * destination, the attempts, the dead letters, the paused state, and the
 * `delivery.failed` entry. `JournalDestinationStore` implements it over the
 * journal port: its cursors, three job queues of its own (attempts, dead
 * letters, paused state), and `appendInternal`.
 */
import type { JobChanges, JournalPort } from '../journal/port.js'

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
  /** Resolves once `seq` (or a later cursor of `name` asked for since) is durable. */
  saveCursor(name: string, seq: number): Promise<void>
  /**
   * Records an attempt, dropping the oldest when more than `keep` are kept for
   * `name`. Resolves once the record is durable.
   */
  recordAttempt(name: string, a: AttemptRecord, keep: number): Promise<void>
  /** The highest attempt number recorded for `seq` (or being recorded), 0 when none. */
  lastAttempt(name: string, seq: number): Promise<number>
  /** Newest first: of one event when `seq` is given, else of every event. */
  attempts(name: string, opts: { seq?: number; limit: number }): Promise<AttemptRecord[]>
  addDeadLetter(name: string, d: DeadLetter, failed: DeliveryFailed): Promise<void>
  removeDeadLetter(name: string, seq: number): Promise<void>
  deadLetters(name: string): Promise<DeadLetter[]>
  paused(name: string): Promise<PausedState | undefined>
  savePaused(name: string, s: PausedState): Promise<void>
}

/**
 * The least time between two batches of attempt records and cursors: what a
 * crash can repeat grows by this much of delivery, a record shows up this
 * much later, and a busy destination's commits stay few and large.
 */
const FLUSH_EVERY_MS = 5

/** The journal cursor of a destination: `:` cannot occur in a stream consumer's name, so the two never meet. */
export function cursorName(destination: string): string {
  return `destination:${destination}`
}

interface Waiter {
  resolve: () => void
  reject: (err: unknown) => void
}

/** What one flush writes: attempt records (one `changeJobs`) and cursors (one `saveCursors`), committed together. */
interface Batch {
  records: Array<{ name: string; a: AttemptRecord; keep: number }>
  cursors: Map<string, number>
  waiters: Waiter[]
}

/**
 * Attempt records and cursors are written in batches: whatever every worker
 * asked for while the previous batch was committing goes into the next one,
 * so at thousands of deliveries a second the journal sees a few commits a
 * second instead of two per delivery. One batch at a time, in the order
 * asked, so a later cursor of a destination never lands before an earlier
 * one; each call's promise resolves once its batch is durable.
 */
export class JournalDestinationStore implements DestinationStore {
  #journal: JournalPort
  /** Per destination, the `[seq, attempt]` of every attempt kept or being written, in key order; loaded once on first use. */
  #keys = new Map<string, Array<[number, number]>>()
  #loading = new Map<string, Promise<Array<[number, number]>>>()
  #next: Batch = emptyBatch()
  /** Per destination, per seq: the highest attempt number in `#next` (not yet in `#keys`). */
  #queued = new Map<string, Map<number, number>>()
  #flushing = false
  #flushedAt = 0

  constructor(journal: JournalPort) {
    this.#journal = journal
    for (const q of [ATTEMPTS, DEAD, PAUSED]) journal.openQueue(q)
  }

  async cursor(name: string): Promise<number> {
    return (await this.#journal.getCursor(cursorName(name)))?.seq ?? 0
  }

  saveCursor(name: string, seq: number): Promise<void> {
    this.#next.cursors.set(name, seq)
    return this.#wait()
  }

  recordAttempt(name: string, a: AttemptRecord, keep: number): Promise<void> {
    this.#next.records.push({ name, a, keep })
    let queued = this.#queued.get(name)
    if (queued === undefined) this.#queued.set(name, (queued = new Map()))
    if ((queued.get(a.seq) ?? 0) < a.attempt) queued.set(a.seq, a.attempt)
    return this.#wait()
  }

  async lastAttempt(name: string, seq: number): Promise<number> {
    const keys = this.#keys.get(name) ?? (await this.#keysOf(name))
    const queued = this.#queued.get(name)?.get(seq) ?? 0
    // Nearly always an event newer than every record: no search.
    const last = keys[keys.length - 1]
    if (last === undefined || last[0] < seq) return queued
    // The last key of `seq` is just before where `[seq, ∞)` would go.
    const k = keys[insertionPoint(keys, seq, Infinity) - 1]
    return Math.max(queued, k !== undefined && k[0] === seq ? k[1] : 0)
  }

  #wait(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#next.waiters.push({ resolve, reject }))
    if (!this.#flushing) {
      this.#flushing = true
      // After the current task: what the caller asks for next in this turn joins the batch.
      queueMicrotask(() => void this.#flush())
    }
    return done
  }

  async #flush(): Promise<void> {
    try {
      while (this.#next.waiters.length > 0) {
        // At most one batch per FLUSH_EVERY_MS: at a few deliveries a batch, the commits cost more than the deliveries.
        const wait = this.#flushedAt + FLUSH_EVERY_MS - Date.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        this.#flushedAt = Date.now()
        let loaded: unknown
        try {
          // Every destination in the batch has its keys loaded before the batch is taken, so taking it is synchronous.
          for (const { name } of this.#next.records) if (!this.#keys.has(name)) await this.#keysOf(name)
        } catch (err) {
          loaded = err ?? new Error('cannot read the attempt records')
        }
        const batch = this.#next
        this.#next = emptyBatch()
        this.#queued.clear()
        try {
          if (loaded !== undefined) throw loaded
          const changes = this.#apply(batch.records)
          const writes: Array<Promise<void>> = []
          if (changes.enqueue.length > 0 || changes.remove.length > 0) writes.push(this.#journal.changeJobs(() => changes))
          if (batch.cursors.size > 0) {
            const acks = new Map<string, number>()
            for (const [name, seq] of batch.cursors) acks.set(cursorName(name), seq)
            writes.push(this.#journal.saveCursors(acks))
          }
          await Promise.all(writes)
          for (const w of batch.waiters) w.resolve()
        } catch (err) {
          for (const w of batch.waiters) w.reject(err)
        }
      }
    } finally {
      this.#flushing = false
    }
  }

  /**
   * Puts the batch's records into the kept keys and returns the job changes
   * that make the attempts queue match them: the records written, and beyond
   * each destination's `keep` the oldest events' records removed, those
   * already stored before the batch's own (so an old event's new attempt
   * stays while there is anything older to drop).
   */
  #apply(records: Batch['records']): { enqueue: NonNullable<JobChanges['enqueue']>; remove: NonNullable<JobChanges['remove']> } {
    const keepOf = new Map<string, number>()
    /** The batch's records by their key (the tuple in `#keys`). */
    const fresh = new Map<[number, number], { name: string; a: AttemptRecord }>()
    for (const { name, a, keep } of records) {
      const keys = this.#keys.get(name)!
      keepOf.set(name, keep)
      const last = keys[keys.length - 1]
      // Nearly always the newest: an append.
      const at = last === undefined || last[0] < a.seq || (last[0] === a.seq && last[1] < a.attempt) ? keys.length : insertionPoint(keys, a.seq, a.attempt)
      let k = keys[at]
      if (k === undefined || k[0] !== a.seq || k[1] !== a.attempt) {
        k = [a.seq, a.attempt]
        keys.splice(at, 0, k)
      }
      fresh.set(k, { name, a })
    }
    const remove: NonNullable<JobChanges['remove']> = []
    const dropped = new Set<[number, number]>()
    for (const [name, keep] of keepOf) {
      const keys = this.#keys.get(name)!
      let need = keys.length - keep
      if (need <= 0) continue
      const mine: Array<[number, number]> = []
      const drop = (k: [number, number]): void => {
        dropped.add(k)
        mine.push(k)
        if (!fresh.has(k)) remove.push({ queue: ATTEMPTS, key: [name, k[0], k[1]] })
        need--
      }
      for (let i = 0; i < keys.length && need > 0; i++) if (!fresh.has(keys[i]!)) drop(keys[i]!)
      for (let i = 0; i < keys.length && need > 0; i++) if (!dropped.has(keys[i]!)) drop(keys[i]!)
      let prefix = 0
      while (prefix < keys.length && dropped.has(keys[prefix]!)) prefix++
      if (prefix === mine.length) keys.splice(0, prefix)
      else this.#keys.set(name, keys.filter((k) => !dropped.has(k)))
    }
    const enqueue: NonNullable<JobChanges['enqueue']> = []
    for (const [k, { name, a }] of fresh) if (!dropped.has(k)) enqueue.push({ queue: ATTEMPTS, key: [name, a.seq, a.attempt], job: a })
    return { enqueue, remove }
  }

  #keysOf(name: string): Promise<Array<[number, number]>> {
    const keys = this.#keys.get(name)
    if (keys !== undefined) return Promise.resolve(keys)
    let loading = this.#loading.get(name)
    if (loading === undefined) {
      loading = this.#journal.jobs<AttemptRecord>(ATTEMPTS).then((jobs) => {
        const loaded: Array<[number, number]> = []
        for (const { key } of jobs) if (key[0] === name) loaded.push([key[1] as number, key[2] as number])
        this.#keys.set(name, loaded)
        this.#loading.delete(name)
        return loaded
      })
      this.#loading.set(name, loading)
      // A failed load is tried again by the next caller.
      loading.catch(() => this.#loading.delete(name))
    }
    return loading
  }

  async attempts(name: string, opts: { seq?: number; limit: number }): Promise<AttemptRecord[]> {
    const keys = await this.#keysOf(name)
    const from = opts.seq === undefined ? 0 : insertionPoint(keys, opts.seq, 0)
    const to = opts.seq === undefined ? keys.length : insertionPoint(keys, opts.seq, Infinity)
    const chosen = keys.slice(Math.max(from, to - opts.limit), to).reverse()
    const out: AttemptRecord[] = []
    for (const [seq, n] of chosen) {
      // A record whose batch is still being written is not there yet.
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

function emptyBatch(): Batch {
  return { records: [], cursors: new Map(), waiters: [] }
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
