import type { JournalPort } from '../journal/port.js'
import type { Logger } from '../log.js'

/**
 * Durable consumers' acked positions. Acks land here in memory at once (so a
 * consumer that reconnects resumes after its latest ack even before it is on
 * disk) and are written to the journal's `cursors` db in one transaction at
 * most once per `intervalMs`, and right away when a consumer disconnects or
 * the hub closes.
 */
export class ConsumerCursors {
  #journal: JournalPort
  #log: Logger
  #intervalMs: number
  /** Positions newer than what is stored. */
  #latest = new Map<string, number>()
  /** Stored positions looked up by `position()`, so that `record()` compares without a read. */
  #stored = new Map<string, number>()
  #dirty = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #lastFlush = 0
  #chain: Promise<void> = Promise.resolve()
  #closed = false

  constructor(journal: JournalPort, log: Logger, intervalMs = 1000) {
    this.#journal = journal
    this.#log = log
    this.#intervalMs = intervalMs
  }

  /**
   * Where `consumer` resumes: its latest ack, else the stored ack of
   * `legacy` (a name stored before consumers were namespaced by subscriber;
   * read only, never advanced), else 0.
   */
  async position(consumer: string, legacy?: string): Promise<number> {
    const latest = this.#latest.get(consumer)
    if (latest !== undefined) return latest
    const own = (await this.#journal.getCursor(consumer))?.seq
    if (own !== undefined) this.#stored.set(consumer, own)
    return own ?? (legacy === undefined ? undefined : (await this.#journal.getCursor(legacy))?.seq) ?? 0
  }

  /** Whether `consumer` has an ack, in memory or stored. */
  async has(consumer: string): Promise<boolean> {
    return this.#latest.has(consumer) || (await this.#journal.getCursor(consumer)) !== undefined
  }

  /**
   * Records a cumulative ack (ignored when not ahead of the current position:
   * the latest ack, or the stored one `position()` found).
   */
  record(consumer: string, seq: number): void {
    if (this.#closed || seq <= (this.#latest.get(consumer) ?? this.#stored.get(consumer) ?? 0)) return
    this.#latest.set(consumer, seq)
    this.#dirty.set(consumer, seq)
    if (this.#timer === undefined) {
      const wait = Math.max(0, this.#lastFlush + this.#intervalMs - Date.now())
      this.#timer = setTimeout(() => void this.flush(), wait)
      this.#timer.unref()
    }
  }

  /** Every consumer known (stored or only in memory) with its position. */
  async list(): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    for (const c of await this.#journal.listCursors()) out.set(c.name, c.seq)
    for (const [name, seq] of this.#latest) out.set(name, seq)
    return out
  }

  /** Writes every pending ack now; resolves once it is committed (or failed and logged). */
  flush(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#dirty.size === 0) return this.#chain
    const batch = this.#dirty
    this.#dirty = new Map()
    this.#lastFlush = Date.now()
    this.#chain = this.#chain.then(() =>
      this.#journal.saveCursors(batch).catch((err: unknown) => {
        // Not fatal: the acks stay in memory and the consumer resumes from them
        // while this process lives; after a restart it sees a few duplicates.
        this.#log.error({ err, consumers: [...batch.keys()] }, 'could not store consumer acks')
      }),
    )
    return this.#chain
  }

  /**
   * Forgets `consumer` in memory and in the journal, after any write already
   * queued (so a flush in flight cannot store it again). Whether it existed.
   */
  forget(consumer: string): Promise<boolean> {
    const known = this.#latest.delete(consumer)
    this.#dirty.delete(consumer)
    const done = this.#chain.then(() => this.#journal.deleteCursor(consumer)).then((stored) => stored || known)
    this.#chain = done.then(
      () => undefined,
      () => undefined,
    )
    return done
  }

  /** Flushes and stops taking acks. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    await this.flush()
  }
}
