/**
 * The retry decision for one event after one attempt: a pure function, so
 * that every path (delivered, paused, retried, dead-lettered) is checked by a
 * property test and no outcome sequence can loop forever. Each failed
 * attempt uses one step of the schedule, Retry-After included; past the
 * schedule's end or `max_age` the event is dead-lettered.
 */

export interface RetryPolicy {
  schedule_ms: readonly number[]
  jitter: number
  max_age_ms: number
}

/** What one attempt came back with. */
export type AttemptResult =
  | { kind: 'delivered'; status: number }
  /** 410 Gone: the handler is not there any more; the destination pauses. */
  | { kind: 'gone'; status: number }
  | { kind: 'failed'; status: number | null; error: string; retryAfterMs?: number }

export type RetryDecision =
  | { kind: 'delivered' }
  | { kind: 'pause' }
  | { kind: 'retry'; at: number }
  | { kind: 'dead'; reason: string }

/**
 * @param attempt the attempt just made, 1-based
 * @param receivedAt epoch ms the relay received the event (`max_age` counts from it)
 * @param random a number in [0, 1) (the jitter)
 *
 * @example
 *   decide({ schedule_ms: [1000], jitter: 0, max_age_ms: 60_000 }, 1, t0, t0, { kind: 'failed', status: 500, error: 'status 500' })
 *   // { kind: 'retry', at: t0 + 1000 }
 */
export function decide(
  policy: RetryPolicy,
  attempt: number,
  receivedAt: number,
  now: number,
  result: AttemptResult,
  random: () => number = Math.random,
): RetryDecision {
  if (result.kind === 'delivered') return { kind: 'delivered' }
  if (result.kind === 'gone') return { kind: 'pause' }
  const step = policy.schedule_ms[attempt - 1]
  if (step === undefined) return { kind: 'dead', reason: `${attempt} attempts, the retry schedule's end (last: ${result.error})` }
  const wait = result.retryAfterMs ?? step * (1 + policy.jitter * (2 * random() - 1))
  const at = now + Math.max(1, Math.round(wait))
  if (at - receivedAt > policy.max_age_ms) return { kind: 'dead', reason: `older than max_age at the next attempt (last: ${result.error})` }
  return { kind: 'retry', at }
}

/** `Retry-After` as milliseconds from `now` (seconds or an HTTP date), undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const v = value.trim()
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000
  const date = Date.parse(v)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
