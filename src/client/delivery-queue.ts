/**
 * Events received but not yet handed to the application, in order. Past
 * `highWater` queued it asks the socket to pause (TCP backpressure reaches
 * the relay, whose pump then stops at its own high-water mark), and below
 * half of it to resume, so a slow handler or iterator costs bounded memory.
 */
export class DeliveryQueue<T> {
  #items: T[] = []
  #start = 0
  #paused = false
  #highWater: number
  #flow: { pause(): void; resume(): void }

  constructor(highWater: number, flow: { pause(): void; resume(): void }) {
    this.#highWater = Math.max(1, highWater)
    this.#flow = flow
  }

  get length(): number {
    return this.#items.length - this.#start
  }

  push(item: T): void {
    this.#items.push(item)
    if (!this.#paused && this.length >= this.#highWater) {
      this.#paused = true
      this.#flow.pause()
    }
  }

  /** The oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#start >= this.#items.length) return undefined
    const item = this.#items[this.#start++]!
    if (this.#start === this.#items.length) {
      this.#items = []
      this.#start = 0
    } else if (this.#start > 1024) {
      this.#items = this.#items.slice(this.#start)
      this.#start = 0
    }
    if (this.#paused && this.length <= this.#highWater / 2) {
      this.#paused = false
      this.#flow.resume()
    }
    return item
  }

  /**
   * Drops everything. The socket the queue paused is being dropped too (a
   * close) or has nothing buffered for the old epoch, so it is not resumed.
   */
  clear(): void {
    this.#items = []
    this.#start = 0
    this.#paused = false
  }
}
