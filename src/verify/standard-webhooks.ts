import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'
import { RelayError } from '../errors.js'
import type { VerifyConfig } from '../config/types.js'
import { stringField } from './json-field.js'
import { ed25519PublicKey, standardWebhooksHmacKey } from './key-material.js'
import { VERIFIED, rejection } from './outcome.js'
import { parseUnixSeconds, toleranceOf, withinTolerance } from './timestamp.js'
import type { Described, HeaderBag, Verifier, VerifyOutcome } from './types.js'

/** The message id header; the idempotency key. */
export const WEBHOOK_ID_HEADER = 'webhook-id'
/** The attempt's Unix timestamp in seconds. */
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp'
/** Space-separated `v1,<base64>` / `v1a,<base64>` entries. */
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature'

/** Svix's names for the same three headers (Clerk, Resend and other Svix-powered senders). */
export const SVIX_ID_HEADER = 'svix-id'
export const SVIX_TIMESTAMP_HEADER = 'svix-timestamp'
export const SVIX_SIGNATURE_HEADER = 'svix-signature'

/** At most this many entries of `webhook-signature` are read; the rest are ignored. */
export const STANDARD_WEBHOOKS_MAX_SIGNATURES = 8

// Exact shapes, so that length is checked before any decoding or crypto:
// base64 of a 32-byte HMAC-SHA256 and of a 64-byte ed25519 signature.
const V1_VALUE = /^[A-Za-z0-9+/]{43}=$/
const V1A_VALUE = /^[A-Za-z0-9+/]{86}==$/

const ID_MISSING = rejection('webhook-id (or svix-id) header missing')
const TIMESTAMP_MISSING = rejection('webhook-timestamp header missing')
const TIMESTAMP_MALFORMED = rejection('webhook-timestamp malformed')
const STALE = rejection('timestamp outside tolerance')
const MISSING = rejection('signature header missing')
const NO_USABLE = rejection('no signature of a configured kind')
const NO_MATCH = rejection('no secret matched')

const HEADERS: readonly string[] = Object.freeze([
  WEBHOOK_ID_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  SVIX_ID_HEADER,
  SVIX_TIMESTAMP_HEADER,
  SVIX_SIGNATURE_HEADER,
])

/**
 * The id, timestamp and signature of a request: all three from the
 * `webhook-*` set when it has a `webhook-id`, else from the `svix-*` set.
 * Never mixed, so a `svix-signature` cannot vouch for a `webhook-id`.
 */
function signedHeaders(headers: HeaderBag): { id: string | undefined; timestamp: string | undefined; signature: string | undefined } {
  const webhookId = headers[WEBHOOK_ID_HEADER]
  if (webhookId !== undefined && webhookId !== '') {
    return { id: webhookId, timestamp: headers[WEBHOOK_TIMESTAMP_HEADER], signature: headers[WEBHOOK_SIGNATURE_HEADER] }
  }
  const svixId = headers[SVIX_ID_HEADER]
  if (svixId !== undefined && svixId !== '') {
    return { id: svixId, timestamp: headers[SVIX_TIMESTAMP_HEADER], signature: headers[SVIX_SIGNATURE_HEADER] }
  }
  return { id: undefined, timestamp: headers[WEBHOOK_TIMESTAMP_HEADER], signature: headers[WEBHOOK_SIGNATURE_HEADER] }
}

/**
 * Standard Webhooks (https://www.standardwebhooks.com): signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`; the `svix-id`,
 * `svix-timestamp` and `svix-signature` headers Svix-powered senders send are
 * taken the same way (the `webhook-*` set wins when a request has both); `v1` entries are HMAC-SHA256
 * keyed with the base64 bytes after `whsec_`, `v1a` entries are ed25519
 * signatures checked against `whpk_` public keys. Unknown versions are
 * ignored. Cheap checks (headers, timestamp, entry shapes) run first, then
 * HMAC, and ed25519 (slow, above all on a Pi) only if no HMAC matched.
 *
 * @example
 *   const v = new StandardWebhooksVerifier({
 *     scheme: 'standard-webhooks', secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], public_keys: [], tolerance_ms: 300_000,
 *   })
 *
 * @throws RelayError `HOOKRELAY_CONFIG_BAD_SECRET` for a secret that is not
 *   `whsec_<base64>`, `HOOKRELAY_CONFIG_BAD_PUBLIC_KEY` for a public key that
 *   is not `whpk_<base64 of 32 bytes>`, `HOOKRELAY_CONFIG_NO_SECRET` when
 *   neither is configured.
 */
export class StandardWebhooksVerifier implements Verifier {
  readonly scheme = 'standard-webhooks' as const
  readonly headers = HEADERS
  readonly #hmacKeys: KeyObject[]
  readonly #publicKeys: Uint8Array[]
  readonly #toleranceMs: number

  constructor(cfg: VerifyConfig) {
    this.#hmacKeys = cfg.secrets.map((secret, i) => standardWebhooksHmacKey(secret, i))
    this.#publicKeys = cfg.public_keys.map((key, i) => ed25519PublicKey(key, i))
    if (this.#hmacKeys.length === 0 && this.#publicKeys.length === 0) {
      throw new RelayError(
        'HOOKRELAY_CONFIG_NO_SECRET',
        'standard-webhooks: no secret and no public key configured; set verify.secrets (whsec_...) or verify.public_keys (whpk_...)',
      )
    }
    this.#toleranceMs = toleranceOf(cfg.tolerance_ms)
  }

  verify(headers: HeaderBag, body: Buffer, nowMs: number): VerifyOutcome {
    const { id, timestamp, signature: header } = signedHeaders(headers)
    if (id === undefined) return ID_MISSING
    if (timestamp === undefined || timestamp === '') return TIMESTAMP_MISSING
    const seconds = parseUnixSeconds(timestamp)
    if (seconds === undefined) return TIMESTAMP_MALFORMED
    if (!withinTolerance(seconds, nowMs, this.#toleranceMs)) return STALE
    if (header === undefined || header === '') return MISSING

    // Collect only entries we hold keys for; count every entry against the cap.
    const wantV1 = this.#hmacKeys.length > 0
    const wantV1a = this.#publicKeys.length > 0
    let v1: Buffer[] | undefined
    let v1a: Buffer[] | undefined
    let seen = 0
    let start = 0
    while (start < header.length && seen < STANDARD_WEBHOOKS_MAX_SIGNATURES) {
      let end = header.indexOf(' ', start)
      if (end === -1) end = header.length
      if (end > start) {
        seen++
        if (header.startsWith('v1,', start)) {
          const value = header.slice(start + 3, end)
          if (wantV1 && V1_VALUE.test(value)) (v1 ??= []).push(Buffer.from(value, 'base64'))
        } else if (header.startsWith('v1a,', start)) {
          const value = header.slice(start + 4, end)
          if (wantV1a && V1A_VALUE.test(value)) (v1a ??= []).push(Buffer.from(value, 'base64'))
        }
      }
      start = end + 1
    }
    if (v1 === undefined && v1a === undefined) return NO_USABLE

    const prefix = `${id}.${timestamp}.`
    if (v1 !== undefined) {
      for (const key of this.#hmacKeys) {
        const expected = createHmac('sha256', key).update(prefix).update(body).digest()
        for (const signature of v1) {
          if (timingSafeEqual(expected, signature)) return VERIFIED
        }
      }
    }
    if (v1a !== undefined) {
      const signed = Buffer.concat([Buffer.from(prefix, 'utf8'), body])
      for (const publicKey of this.#publicKeys) {
        for (const signature of v1a) {
          if (nacl.sign.detached.verify(signed, signature, publicKey)) return VERIFIED
        }
      }
    }
    return NO_MATCH
  }

  /** key = `webhook-id` (or `svix-id`), event = the body's `type`. */
  describe(headers: HeaderBag, json: unknown): Described {
    return { key: signedHeaders(headers).id, event: stringField(json, 'type'), status: undefined }
  }
}
