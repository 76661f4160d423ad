/**
 * What the destinations API shows of a destination's history: attempts, dead
 * letters, the paused state. No imports, so the console page shares these
 * types with the server.
 */

/** How one attempt ended. */
export type AttemptOutcome = 'delivered' | 'retry' | 'dead' | 'paused' | 'circuit'

/** One delivery attempt, as `GET /v1/destinations/<name>/attempts` shows it. */
export interface AttemptRecord {
  seq: number
  /** 1 for the first attempt of this event (since the relay started it). */
  attempt: number
  /** Epoch ms the request was sent. */
  at: number
  /** The destination's HTTP status, null when no answer came. */
  status: number | null
  latency_ms: number
  /** Why it failed when it did (`timeout`, `ECONNREFUSED`, `status 500`, …). */
  error: string | null
  outcome: AttemptOutcome
  /** Epoch ms of the next attempt, null when none is planned. */
  next_at: number | null
}

/** An event given up on; replay sends it again. */
export interface DeadLetter {
  seq: number
  source: string
  event: string
  key: string
  /** Epoch ms it was dead-lettered. */
  at: number
  attempts: number
  reason: string
}

export interface PausedState {
  paused: boolean
  /** `operator` or `gone (410)`. */
  reason: string
  at: number
}
