import type { VerifyOutcome } from './types.js'

/**
 * Verification outcomes are preallocated: the hot path returns one of these
 * constants instead of building an object per request.
 */
export const VERIFIED: VerifyOutcome = Object.freeze({ ok: true })

/**
 * Makes a frozen failure outcome; call it at module load, not per request.
 *
 * @example
 *   const NO_MATCH = rejection('no secret matched')
 */
export function rejection(reason: string): VerifyOutcome {
  return Object.freeze({ ok: false, reason })
}
