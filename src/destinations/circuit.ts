/**
 * A destination-wide circuit: after `failures` consecutive failed attempts it
 * opens, and no event is tried until the cooldown has passed; then one probe
 * goes out (half-open). A delivered probe closes it; a failed one opens it
 * again for twice the cooldown, up to `max_cooldown_ms`. So a handler that is
 * down costs one request per cooldown, not one per event per schedule step.
 */

export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitPolicy {
  failures: number
  cooldown_ms: number
  max_cooldown_ms: number
}

export class Circuit {
  policy: CircuitPolicy
  #state: CircuitState = 'closed'
  #consecutive = 0
  #cooldown: number
  #openUntil = 0
  #probing = false

  constructor(policy: CircuitPolicy) {
    this.policy = policy
    this.#cooldown = policy.cooldown_ms
  }

  get state(): CircuitState {
    return this.#state
  }

  /** Epoch ms the next probe may go, while open. */
  get openUntil(): number {
    return this.#openUntil
  }

  /** Whether an attempt may start now; in half-open, only one (the probe) until it ends. */
  allow(now: number): boolean {
    if (this.#state === 'closed') return true
    if (this.#state === 'open') {
      if (now < this.#openUntil) return false
      this.#state = 'half-open'
    }
    if (this.#probing) return false
    this.#probing = true
    return true
  }

  /** Returns the new state when this changed it between closed and open (what is worth a log line). */
  succeeded(): CircuitState | undefined {
    const was = this.#state
    this.#consecutive = 0
    this.#probing = false
    this.#cooldown = this.policy.cooldown_ms
    this.#state = 'closed'
    return was === 'closed' ? undefined : 'closed'
  }

  failed(now: number): CircuitState | undefined {
    this.#consecutive++
    if (this.#state === 'half-open' && this.#probing) {
      this.#probing = false
      this.#cooldown = Math.min(this.#cooldown * 2, this.policy.max_cooldown_ms)
      this.#state = 'open'
      this.#openUntil = now + this.#cooldown
      return undefined
    }
    if (this.#state === 'closed' && this.#consecutive >= this.policy.failures) {
      this.#state = 'open'
      this.#openUntil = now + this.#cooldown
      return 'open'
    }
    return undefined
  }

  /** Back to closed without a probe (an operator resumed the destination). */
  reset(): CircuitState | undefined {
    return this.succeeded()
  }
}
