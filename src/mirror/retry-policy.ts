import { RelayError } from '../errors.js'
import { OriginStatusError } from './fetch.js'

/** Origin answers that mean the presigned URL is refused or its object gone: no later retry fixes them. */
export const GONE_STATUSES: ReadonlySet<number> = new Set([403, 404, 410])

/**
 * Attempts answered 403/404/410 before the object is given up: one short retry
 * for an origin that flaps, never a retry until the deadline.
 */
export const GONE_ATTEMPTS = 2

/** Errors that no retry can fix. */
const PERMANENT = new Set([
  'HOOKRELAY_MIRROR_URL_REFUSED',
  'HOOKRELAY_MIRROR_DOWNGRADE',
  'HOOKRELAY_MIRROR_REDIRECTS',
  'HOOKRELAY_MIRROR_TOO_LARGE',
])

export interface FailedAttempt {
  err: unknown
  /** Attempts made so far, this one included. */
  attempts: number
  /** Attempts of this URL the origin answered 403/404/410, this one included. */
  goneAnswers?: number
  now: number
  /** When the URL expires (epoch ms). */
  deadline: number
  /** The bytes are in the spool: only the upload is left. */
  spooled: boolean
  baseMs: number
  maxMs: number
  /** [0, 1); injectable for tests. */
  random?: () => number
}

/** Retry at `at` (epoch ms), or give up with a stable `code` and a `message` for people. */
export type RetryDecision = { retryAt: number; code: string; message: string } | { giveUp: true; code: string; message: string }

/**
 * What to do after a failed attempt.
 *
 * - Refused URLs, downgrades, redirect loops and files over the cap: give up.
 * - 403/404/410: give up once the URL's deadline has passed, else after
 *   `GONE_ATTEMPTS` such answers (one short retry, `baseMs` later), whatever
 *   the deadline.
 * - Anything else before the deadline: exponential backoff from `baseMs`,
 *   capped at `maxMs`, with jitter (50–100 % of the step); a retry that would
 *   land after the deadline is moved to just before it, once.
 * - After the deadline: give up, unless the file is already spooled: then
 *   the URL no longer matters and the upload is retried until it works.
 *
 * @example
 *   decideRetry({ err, attempts: 1, now, deadline: now + 60_000, spooled: false, baseMs: 1000, maxMs: 60_000 })
 *   // { retryAt: now + 500..1000, ... }
 */
export function decideRetry(f: FailedAttempt): RetryDecision {
  const code = f.err instanceof RelayError ? f.err.code : 'HOOKRELAY_MIRROR_NETWORK'
  const message = f.err instanceof Error ? f.err.message : String(f.err)
  if (PERMANENT.has(code)) return { giveUp: true, code, message }
  const expired = f.now >= f.deadline
  if (!f.spooled && f.err instanceof OriginStatusError && GONE_STATUSES.has(f.err.originStatus)) {
    if (expired) return { giveUp: true, code, message: `expired: ${message}` }
    const answers = f.goneAnswers ?? 1
    if (answers >= GONE_ATTEMPTS) return { giveUp: true, code, message: `${message} ${answers} times; the URL is refused or its object gone` }
    return { retryAt: f.now + f.baseMs, code, message }
  }
  if (!f.spooled && expired) {
    return { giveUp: true, code, message: `deadline passed after ${f.attempts} attempts: ${message}` }
  }
  const step = Math.min(f.maxMs, f.baseMs * 2 ** Math.min(f.attempts - 1, 30))
  let at = f.now + step * (0.5 + (f.random ?? Math.random)() / 2)
  if (!f.spooled && at >= f.deadline) {
    // One last try just before the deadline, unless it is too close to bother.
    if (f.deadline - f.now <= 1000) return { giveUp: true, code, message: `deadline passed after ${f.attempts} attempts: ${message}` }
    at = f.deadline - 500
  }
  return { retryAt: at, code, message }
}
