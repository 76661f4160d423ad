import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { VerifyConfig } from '../config/types.js'
import { headerValue, stringField } from './json-field.js'
import { literalHmacKeys } from './key-material.js'
import { VERIFIED, rejection } from './outcome.js'
import type { Described, HeaderBag, Verifier, VerifyOutcome } from './types.js'

/** GitHub's signature header, lower-cased. */
export const GITHUB_SIGNATURE_HEADER = 'x-hub-signature-256'
/** The delivery GUID GitHub sends; the idempotency key. */
export const GITHUB_DELIVERY_HEADER = 'x-github-delivery'
/** The event name GitHub sends (`push`, `issues`, ...). */
export const GITHUB_EVENT_HEADER = 'x-github-event'

const SIGNATURE = /^sha256=[0-9a-f]{64}$/
const PREFIX_LENGTH = 'sha256='.length

const MISSING = rejection('signature header missing')
const MALFORMED = rejection('signature malformed')
const NO_MATCH = rejection('no secret matched')

const HEADERS: readonly string[] = Object.freeze([
  GITHUB_SIGNATURE_HEADER,
  GITHUB_DELIVERY_HEADER,
  GITHUB_EVENT_HEADER,
])

/**
 * GitHub webhooks: `X-Hub-Signature-256: sha256=<lowercase hex>` is the
 * HMAC-SHA256 of the raw body keyed with the webhook secret.
 *
 * @example
 *   const v = new GithubVerifier({ scheme: 'github', secrets: ["It's a Secret to Everybody"], public_keys: [], tolerance_ms: 300_000 })
 *   v.describe({ 'x-github-event': 'issues', 'x-github-delivery': 'd-1' }, { action: 'opened' })
 *   // { key: 'd-1', event: 'issues.opened', status: undefined }
 */
export class GithubVerifier implements Verifier {
  readonly scheme = 'github' as const
  readonly headers = HEADERS
  readonly #keys: KeyObject[]

  constructor(cfg: VerifyConfig) {
    this.#keys = literalHmacKeys('github', cfg.secrets)
  }

  verify(headers: HeaderBag, body: Buffer, _nowMs: number): VerifyOutcome {
    const header = headers[GITHUB_SIGNATURE_HEADER]
    if (header === undefined || header === '') return MISSING
    if (!SIGNATURE.test(header)) return MALFORMED
    const given = Buffer.from(header.slice(PREFIX_LENGTH), 'hex')
    for (const key of this.#keys) {
      if (timingSafeEqual(createHmac('sha256', key).update(body).digest(), given)) return VERIFIED
    }
    return NO_MATCH
  }

  /** key = `X-GitHub-Delivery`; event = `X-GitHub-Event`, plus `.<action>` when the body has one. */
  describe(headers: HeaderBag, json: unknown): Described {
    const name = headerValue(headers[GITHUB_EVENT_HEADER])
    const action = stringField(json, 'action')
    return {
      key: headerValue(headers[GITHUB_DELIVERY_HEADER]),
      event: name === undefined || action === undefined ? name : `${name}.${action}`,
      status: undefined,
    }
  }
}
