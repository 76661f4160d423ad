import type { BackoffOptions } from './types.js'

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): a uniformly random wait in [0, min(max, initial·2^n)),
 * so that many clients dropped at once do not reconnect in step.
 *
 * @example
 *   const b = new Backoff({ initialMs: 100, maxMs: 5000 })
 *   setTimeout(reconnect, b.next())   // after each failure
 *   b.reset()                         // after a success
 */
export class Backoff {
  readonly initialMs: number
  readonly maxMs: number
  #attempt = 0
  #random: () => number

  constructor(opts: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialMs = Math.max(1, opts.initialMs ?? 250)
    this.maxMs = Math.max(this.initialMs, opts.maxMs ?? 30_000)
    this.#random = random
  }

  get attempt(): number {
    return this.#attempt
  }

  /** The wait before the next attempt, in ms. */
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 30))
    this.#attempt++
    return Math.floor(this.#random() * cap)
  }

  reset(): void {
    this.#attempt = 0
  }
}
