/**
 * The relay's view of the stream's end: an ordered consumer from the head at
 * open onwards, so every relay sees every entry (whichever relay published
 * it) in stream order. It keeps `head` current, fires commit listeners, and
 * keeps the newest entries in memory (bounded by bytes) so that the fan-out's
 * reads of what just arrived need no round trip.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream'
import { decodeEvent, type StoredEvent } from '../record.js'

export interface TailEntry {
  event: StoredEvent
  subject: string
  status: string | undefined
}

export class Tail {
  #head: number
  #cache = new Map<number, StoredEvent>()
  #cacheBytes = 0
  #cacheMax: number
  #waiters = new Map<number, Array<() => void>>()
  #msgs: ConsumerMessages | undefined
  #js: JetStreamClient
  #stream: string
  #stopped = false
  /** Consumers made so far (the first one included). */
  restarts = 0
  /** Called for each entry after head moved to it (commit listeners, repair). */
  onEntry: ((e: TailEntry) => void) | undefined
  /** Called when the next entry delivered is past head + 1; returning false drops it (the journal failed). */
  onSkip: ((from: number, through: number) => boolean) | undefined

  private constructor(js: JetStreamClient, stream: string, head: number, cacheMax: number) {
    this.#js = js
    this.#stream = stream
    this.#head = head
    this.#cacheMax = cacheMax
  }

  /** Follows `stream` from the entry after `head`. */
  static async start(js: JetStreamClient, stream: string, head: number, cacheMax: number): Promise<Tail> {
    const tail = new Tail(js, stream, head, cacheMax)
    await tail.restart()
    return tail
  }

  /**
   * Follows the stream from head + 1 with a new ordered consumer. The journal
   * calls it when the stream is ahead of the tail and the tail does not move
   * (its consumer was on a node that died and was not replaced yet).
   */
  async restart(): Promise<void> {
    if (this.#stopped) return
    this.#msgs?.stop()
    this.restarts++
    const consumer = await this.#js.consumers.get(this.#stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#head + 1 })
    if (this.#stopped) return
    const msgs = await consumer.consume({ max_messages: 1024, expires: 5000 })
    this.#msgs = msgs
    void (async () => {
      for await (const m of msgs) this.#deliver(m)
    })().catch(() => undefined)
  }

  get head(): number {
    return this.#head
  }

  #deliver(m: JsMsg): void {
    if (m.seq <= this.#head) return
    if (m.seq > this.#head + 1 && this.onSkip?.(this.#head + 1, m.seq - 1) === false) return
    const event = decodeEvent(m.seq, Buffer.from(m.data))
    this.#head = m.seq
    this.#cache.set(m.seq, event)
    this.#cacheBytes += event.body.length + event.fragment.length
    for (const [seq, ev] of this.#cache) {
      if (this.#cacheBytes <= this.#cacheMax || this.#cache.size <= 1) break
      this.#cache.delete(seq)
      this.#cacheBytes -= ev.body.length + ev.fragment.length
    }
    for (const [seq, ws] of this.#waiters) {
      if (seq > m.seq) continue
      this.#waiters.delete(seq)
      for (const w of ws) w()
    }
    this.onEntry?.({ event, subject: m.subject, status: m.headers?.get('Hookrelay-Status') || undefined })
  }

  /** Resolves true once head >= seq, or false after `timeoutMs`. */
  waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#head >= seq || this.#stopped) return Promise.resolve(this.#head >= seq)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const ws = this.#waiters.get(seq)
        if (ws) ws.splice(ws.indexOf(done), 1)
        resolve(false)
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      const ws = this.#waiters.get(seq)
      if (ws) ws.push(done)
      else this.#waiters.set(seq, [done])
    })
  }

  /** An entry from memory, if still held. */
  cached(seq: number): StoredEvent | undefined {
    return this.#cache.get(seq)
  }

  /** Entries from..through from memory when the cache holds all of them, else undefined. */
  range(from: number, through: number): StoredEvent[] | undefined {
    if (through < from) return []
    if (!this.#cache.has(from) || !this.#cache.has(through)) return undefined
    const out: StoredEvent[] = []
    for (let s = from; s <= through; s++) {
      const e = this.#cache.get(s)
      if (e === undefined) return undefined
      out.push(e)
    }
    return out
  }

  stop(): void {
    this.#stopped = true
    this.#msgs?.stop()
    for (const ws of this.#waiters.values()) for (const w of ws) w()
    this.#waiters.clear()
  }
}
