import type { EventFrame } from './frame-encoder.js'

/**
 * Recently encoded event frames keyed by seq, bounded by count and bytes, so
 * that a live burst to N subscribers reads and encodes each event once.
 * Eviction is insertion order (FIFO): pumps read forward, so the oldest
 * frame is the one least likely to be asked for again.
 */
export class RecentFrames {
  #frames = new Map<number, EventFrame>()
  #bytes = 0
  readonly maxFrames: number
  readonly maxBytes: number

  constructor(maxFrames = 4096, maxBytes = 16 * 1024 * 1024) {
    this.maxFrames = maxFrames
    this.maxBytes = maxBytes
  }

  get(seq: number): EventFrame | undefined {
    return this.#frames.get(seq)
  }

  get size(): number {
    return this.#frames.size
  }

  get bytes(): number {
    return this.#bytes
  }

  add(f: EventFrame): void {
    if (this.#frames.has(f.seq)) return
    this.#frames.set(f.seq, f)
    this.#bytes += f.bytes.length
    while (this.#frames.size > this.maxFrames || (this.#bytes > this.maxBytes && this.#frames.size > 1)) {
      const oldest = this.#frames.keys().next().value as number
      this.#bytes -= this.#frames.get(oldest)!.bytes.length
      this.#frames.delete(oldest)
    }
  }

  clear(): void {
    this.#frames.clear()
    this.#bytes = 0
  }
}
