import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { VerifyConfig } from '../config/types.js'
import { stringField } from './json-field.js'
import { literalHmacKeys } from './key-material.js'
import { VERIFIED, rejection } from './outcome.js'
import type { Described, HeaderBag, Verifier, VerifyOutcome } from './types.js'

/** The header Runflow signs callbacks with, lower-cased. */
export const RUNFLOW_SIGNATURE_HEADER = 'runflow-signature'

// Lowercase only: the uppercase hex of a right signature is a mismatch like any other.
const HEX64 = /^[0-9a-f]{64}$/

const MISSING = rejection('signature header missing')
const MALFORMED = rejection('signature malformed')
const NO_MATCH = rejection('no secret matched')

const HEADERS: readonly string[] = Object.freeze([RUNFLOW_SIGNATURE_HEADER])

/**
 * Runflow callbacks: `Runflow-Signature` is the lowercase hex HMAC-SHA256 of
 * the raw body, keyed with the callback secret string as given (`whsec_...`
 * used literally). Several secrets may be configured during a rotation; any
 * one verifying is enough.
 *
 * @example
 *   const v = new RunflowVerifier({ scheme: 'runflow', secrets: ['whsec_abc'], public_keys: [], tolerance_ms: 300_000 })
 *   v.verify({ 'runflow-signature': sig }, body, Date.now()) // { ok: true }
 */
export class RunflowVerifier implements Verifier {
  readonly scheme = 'runflow' as const
  readonly headers = HEADERS
  readonly #keys: KeyObject[]

  constructor(cfg: VerifyConfig) {
    this.#keys = literalHmacKeys('runflow', cfg.secrets)
  }

  verify(headers: HeaderBag, body: Buffer, _nowMs: number): VerifyOutcome {
    const header = headers[RUNFLOW_SIGNATURE_HEADER]
    if (header === undefined || header === '') return MISSING
    if (!HEX64.test(header)) return MALFORMED
    const given = Buffer.from(header, 'hex')
    for (const key of this.#keys) {
      if (timingSafeEqual(createHmac('sha256', key).update(body).digest(), given)) return VERIFIED
    }
    return NO_MATCH
  }

  /**
   * Idempotency key: `run_id` for `run.*` events, `batch_id` for `batch.*`
   * events, else whichever of the two is present (`run_id` first).
   */
  describe(_headers: HeaderBag, json: unknown): Described {
    const event = stringField(json, 'event')
    let key: string | undefined
    if (event?.startsWith('run.')) key = stringField(json, 'run_id')
    else if (event?.startsWith('batch.')) key = stringField(json, 'batch_id')
    else key = stringField(json, 'run_id') ?? stringField(json, 'batch_id')
    return { key, event, status: stringField(json, 'status') }
  }
}
