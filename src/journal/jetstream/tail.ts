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
  #stopped = false
  /** Called for each entry after head moved to it (commit listeners, repair). */
  onEntry: ((e: TailEntry) => void) | undefined

  private constructor(head: number, cacheMax: number) {
    this.#head = head
    this.#cacheMax = cacheMax
  }

  /** Follows `stream` from the entry after `head`. */
  static async start(js: JetStreamClient, stream: string, head: number, cacheMax: number): Promise<Tail> {
    const tail = new Tail(head, cacheMax)
    const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: head + 1 })
    tail.#msgs = await consumer.consume({ max_messages: 1024 })
    void (async () => {
      for await (const m of tail.#msgs!) tail.#deliver(m)
    })().catch(() => undefined)
    return tail
  }

  get head(): number {
    return this.#head
  }

  #deliver(m: JsMsg): void {
    if (m.seq <= this.#head) return
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
