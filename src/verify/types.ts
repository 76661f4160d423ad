import type { VerifyConfig } from '../config/types.js'

/**
 * Request headers a verifier may read, lower-cased names. The HTTP layer copies
 * exactly the names listed in `Verifier.headers` (plus its own) before any
 * await, because a uWS request object dies when its handler returns.
 */
export type HeaderBag = Record<string, string | undefined>

export type VerifyOutcome =
  | { ok: true }
  /** `reason` goes to the log only, never to the caller. */
  | { ok: false; reason: string }

/**
 * What the relay needs from a signed body besides the signature check: the
 * idempotency key, the event name, and the id of the "run" row it updates.
 * Returns `undefined` fields when the body lacks them (the caller answers 400).
 */
export interface Described {
  key: string | undefined
  event: string | undefined
  /** The sender's status for the run row (`succeeded`, `failed`, …), if any. */
  status: string | undefined
}

export interface Verifier {
  readonly scheme: VerifyConfig['scheme']
  /** Lower-case header names this scheme reads (signature, timestamp, id, event). */
  readonly headers: readonly string[]
  /** Checks the signature over the raw bytes. Never throws for bad input. */
  verify(headers: HeaderBag, body: Buffer, nowMs: number): VerifyOutcome
  /** Extracts key, event and status from the verified headers and parsed JSON body. */
  describe(headers: HeaderBag, json: unknown): Described
}
