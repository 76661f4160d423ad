import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { VerifyConfig } from '../config/types.js'
import { stringField } from './json-field.js'
import { literalHmacKeys } from './key-material.js'
import { VERIFIED, rejection } from './outcome.js'
import { parseUnixSeconds, toleranceOf, withinTolerance } from './timestamp.js'
import type { Described, HeaderBag, Verifier, VerifyOutcome } from './types.js'

/** Stripe's signature header, lower-cased. */
export const STRIPE_SIGNATURE_HEADER = 'stripe-signature'

/** At most this many `v1=` entries are read from one header; the rest are ignored. */
export const STRIPE_MAX_SIGNATURES = 8

const HEX64 = /^[0-9a-f]{64}$/

const MISSING = rejection('signature header missing')
const MALFORMED = rejection('signature malformed')
const NO_TIMESTAMP = rejection('timestamp missing or malformed')
const STALE = rejection('timestamp outside tolerance')
const NO_V1 = rejection('no v1 signature')
const NO_MATCH = rejection('no secret matched')

const HEADERS: readonly string[] = Object.freeze([STRIPE_SIGNATURE_HEADER])

/**
 * Stripe webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...][,v0=...]`,
 * each `v1` the HMAC-SHA256 of `${t}.${body}` keyed with the endpoint secret
 * string as-is. `t` must be within `tolerance_ms` of now, either direction.
 * `v0` (test-mode, SHA-1 era) entries are never accepted.
 *
 * @example
 *   const v = new StripeVerifier({ scheme: 'stripe', secrets: ['whsec_...'], public_keys: [], tolerance_ms: 300_000 })
 *   v.verify({ 'stripe-signature': 't=1700000000,v1=5257a8...' }, body, Date.now())
 */
export class StripeVerifier implements Verifier {
  readonly scheme = 'stripe' as const
  readonly headers = HEADERS
  readonly #keys: KeyObject[]
  readonly #toleranceMs: number

  constructor(cfg: VerifyConfig) {
    this.#keys = literalHmacKeys('stripe', cfg.secrets)
    this.#toleranceMs = toleranceOf(cfg.tolerance_ms)
  }

  verify(headers: HeaderBag, body: Buffer, nowMs: number): VerifyOutcome {
    const header = headers[STRIPE_SIGNATURE_HEADER]
    if (header === undefined || header === '') return MISSING

    // One pass over `k=v,k=v` without split(): no intermediate arrays.
    let t: string | undefined
    const given: Buffer[] = []
    let start = 0
    while (start < header.length) {
      let end = header.indexOf(',', start)
      if (end === -1) end = header.length
      if (header.startsWith('t=', start)) {
        if (t !== undefined) return MALFORMED // a second timestamp: which one was signed?
        t = header.slice(start + 2, end)
      } else if (header.startsWith('v1=', start) && given.length < STRIPE_MAX_SIGNATURES) {
        const hex = header.slice(start + 3, end)
        // A malformed entry is a signature that does not match, not a reason to drop the others.
        if (HEX64.test(hex)) given.push(Buffer.from(hex, 'hex'))
      }
      start = end + 1
    }

    const seconds = t === undefined ? undefined : parseUnixSeconds(t)
    if (t === undefined || seconds === undefined) return NO_TIMESTAMP
    if (!withinTolerance(seconds, nowMs, this.#toleranceMs)) return STALE
    if (given.length === 0) return NO_V1

    for (const key of this.#keys) {
      const expected = createHmac('sha256', key).update(t).update('.').update(body).digest()
      for (const signature of given) {
        if (timingSafeEqual(expected, signature)) return VERIFIED
      }
    }
    return NO_MATCH
  }

  /** key = the event's `id` (`evt_...`), event = its `type` (`invoice.paid`). */
  describe(_headers: HeaderBag, json: unknown): Described {
    return { key: stringField(json, 'id'), event: stringField(json, 'type'), status: undefined }
  }
}
