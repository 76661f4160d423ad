import type { Journal } from '../journal/journal.js'
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
  #journal: Journal
  #encoded = 0

  constructor(journal: Journal, cache = new RecentFrames()) {
    this.#journal = journal
    this.cache = cache
  }

  /** Event frames encoded so far. */
  get encoded(): number {
    return this.#encoded
  }

  /**
   * Up to `limit` consecutive frames from `after + 1` (fewer near the head),
   * or null when `after + 1` is no longer in the journal (pruned).
   */
  page(after: number, limit: number): EventFrame[] | null {
    const head = this.#journal.head
    const cache = this.cache
    const out: EventFrame[] = []
    for (let seq = after + 1; out.length < limit && seq <= head; seq++) {
      const f = cache.get(seq)
      if (f === undefined) break
      out.push(f)
    }
    if (out.length > 0) return out
    const events = this.#journal.read(after, limit)
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
