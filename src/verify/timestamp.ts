/** Tolerance for timestamped schemes when the config gives none (Stripe's and Standard Webhooks' 5 minutes). */
export const DEFAULT_TOLERANCE_MS = 300_000

// Digits only: no sign, no exponent, no whitespace, no fraction. 12 digits is
// year 33658, far past any honest clock and well inside Number precision.
const UNIX_SECONDS = /^[0-9]{1,12}$/

/**
 * Parses a Unix timestamp in seconds as sent in a signature header, strictly.
 *
 * @example
 *   parseUnixSeconds('1614265330') // 1614265330
 *   parseUnixSeconds('1e9')        // undefined
 */
export function parseUnixSeconds(text: string): number | undefined {
  return UNIX_SECONDS.test(text) ? Number(text) : undefined
}

/** True when `seconds` is no further than `toleranceMs` from `nowMs`, in either direction. */
export function withinTolerance(seconds: number, nowMs: number, toleranceMs: number): boolean {
  const skew = nowMs - seconds * 1000
  return skew <= toleranceMs && skew >= -toleranceMs
}

/** The configured tolerance, or the default when it is missing, zero, negative or not finite. */
export function toleranceOf(configured: number | undefined): number {
  return typeof configured === 'number' && Number.isFinite(configured) && configured > 0
    ? configured
    : DEFAULT_TOLERANCE_MS
}
