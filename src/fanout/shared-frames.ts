import type { JournalPort } from '../journal/port.js'
import { encodeEventFrame, type EventFrame } from './frame-encoder.js'
import { RecentFrames } from './recent-frames.js'

/**
 * Where every pump gets its frames: the recent-frames cache first, else a
 * page read from the journal, encoded once and put in the cache, so that
 * subscribers reading the same stretch (a live burst, a replay after a
 * restart) share one encoding of each event.
 */
export class SharedFrames {
  readonly cache: RecentFrames
  #journal: JournalPort
  #encoded = 0

  constructor(journal: JournalPort, cache = new RecentFrames()) {
    this.#journal = journal
    this.cache = cache
  }

  /** Event frames encoded so far. */
  get encoded(): number {
    return this.#encoded
  }

  /**
   * Up to `limit` consecutive frames from `after + 1` (fewer near the head),
   * or null when `after + 1` is no longer in the journal (pruned). From the
   * cache at once; a promise when the journal must be read.
   */
  page(after: number, limit: number): EventFrame[] | null | Promise<EventFrame[] | null> {
    const head = this.#journal.head
    const cache = this.cache
    const out: EventFrame[] = []
    for (let seq = after + 1; out.length < limit && seq <= head; seq++) {
      const f = cache.get(seq)
      if (f === undefined) break
      out.push(f)
    }
    if (out.length > 0) return out
    return this.#read(after, limit)
  }

  async #read(after: number, limit: number): Promise<EventFrame[] | null> {
    const out: EventFrame[] = []
    const cache = this.cache
    const events = await this.#journal.read(after, limit)
    if (events.length === 0 || events[0]!.seq !== after + 1) return null
    for (const e of events) {
      let f = cache.get(e.seq)
      if (f === undefined) {
        f = encodeEventFrame(e)
        this.#encoded++
        cache.add(f)
      }
      out.push(f)
    }
    return out
  }
}
