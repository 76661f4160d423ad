import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import nacl from 'tweetnacl'
import type { VerifyConfig } from '../config/types.js'
import { RelayError } from '../errors.js'
import { GITHUB_DELIVERY_HEADER, GITHUB_EVENT_HEADER, GITHUB_SIGNATURE_HEADER } from './github.js'
import { signHmac } from './hmac.js'
import { ed25519SigningKey, standardWebhooksHmacKey } from './key-material.js'
import { RUNFLOW_SIGNATURE_HEADER } from './runflow.js'
import {
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from './standard-webhooks.js'
import { STRIPE_SIGNATURE_HEADER } from './stripe.js'

/**
 * The signing side of every scheme, for `hookrelay send` and for tests.
 * Header names are lower-case, so a result is usable both as request headers
 * and as a `HeaderBag` for `Verifier.verify`.
 */
export type SignedHeaders = Record<string, string>

/**
 * Signs like Runflow: lowercase hex HMAC-SHA256 of the body, keyed with the secret string as-is.
 *
 * @example
 *   signRunflow('whsec_abc', body) // { 'runflow-signature': '5bdc...' }
 */
export function signRunflow(secret: string, body: Buffer | string): SignedHeaders {
  return { [RUNFLOW_SIGNATURE_HEADER]: createHmac('sha256', secret).update(body).digest('hex') }
}

/**
 * Signs like GitHub: `X-Hub-Signature-256: sha256=<hex>`.
 *
 * @example
 *   signGithub("It's a Secret to Everybody", 'Hello, World!')
 *   // { 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' }
 */
export function signGithub(secret: string, body: Buffer | string): SignedHeaders {
  return { [GITHUB_SIGNATURE_HEADER]: `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` }
}

/**
 * Signs like Stripe: `Stripe-Signature: t=<nowSec>,v1=<hex HMAC-SHA256 of "t.body">`.
 *
 * @example
 *   signStripe('whsec_abc', body, Math.floor(Date.now() / 1000))
 */
export function signStripe(secret: string, body: Buffer | string, nowSec: number): SignedHeaders {
  const t = String(Math.floor(nowSec))
  const v1 = createHmac('sha256', secret).update(t).update('.').update(body).digest('hex')
  return { [STRIPE_SIGNATURE_HEADER]: `t=${t},v1=${v1}` }
}

/** Keys to sign a Standard Webhooks message with; give one or both. */
export interface StandardWebhooksSigningKeys {
  /** `whsec_<base64>` HMAC secret: adds a `v1` entry. */
  secret?: string
  /** `whsk_<base64>` ed25519 secret key (64 bytes, or a 32-byte seed): adds a `v1a` entry. */
  secretKey?: string
}

/**
 * Signs like a Standard Webhooks sender: `webhook-id`, `webhook-timestamp`
 * and a `webhook-signature` with a `v1` entry, a `v1a` entry, or both.
 *
 * @example
 *   signStandardWebhooks({ secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
 *     'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')
 *   // 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
 *
 * @throws RelayError `HOOKRELAY_SEND_NO_SECRET` when neither key is given,
 *   `HOOKRELAY_CONFIG_BAD_SECRET` when one is malformed.
 */
export function signStandardWebhooks(
  keys: StandardWebhooksSigningKeys,
  id: string,
  timestampSec: number,
  body: Buffer | string,
): SignedHeaders {
  if (!keys.secret && !keys.secretKey) {
    throw new RelayError('HOOKRELAY_SEND_NO_SECRET', 'standard-webhooks: give a whsec_ secret or a whsk_ secret key to sign with')
  }
  const timestamp = String(Math.floor(timestampSec))
  const prefix = `${id}.${timestamp}.`
  const entries: string[] = []
  if (keys.secret) {
    const mac = createHmac('sha256', standardWebhooksHmacKey(keys.secret)).update(prefix).update(body).digest('base64')
    entries.push(`v1,${mac}`)
  }
  if (keys.secretKey) {
    const content = Buffer.concat([Buffer.from(prefix, 'utf8'), typeof body === 'string' ? Buffer.from(body, 'utf8') : body])
    const signature = nacl.sign.detached(content, ed25519SigningKey(keys.secretKey))
    entries.push(`v1a,${Buffer.from(signature).toString('base64')}`)
  }
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
    [WEBHOOK_SIGNATURE_HEADER]: entries.join(' '),
  }
}

/** What `signFor` adds besides the signature, for schemes that carry it in headers. */
export interface SignForOptions {
  /** Message id: `webhook-id` (standard-webhooks), `X-GitHub-Delivery` (github), the key or id header (hmac). Random when omitted. */
  id?: string
  /** Event name for `X-GitHub-Event` (github, e.g. `issues`) or the event header (hmac); omitted when not given. */
  event?: string
}

/**
 * Signs `body` the way a sender configured like `cfg` would, with its first
 * secret: what `hookrelay send` posts.
 *
 * @example
 *   const headers = signFor(source.verify, body, Date.now())
 *   await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body })
 *
 * @throws RelayError `HOOKRELAY_SEND_NO_SECRET` when no secret is configured
 *   (for standard-webhooks: no HMAC secret; a public key cannot sign).
 */
export function signFor(cfg: VerifyConfig, body: Buffer, nowMs: number, opts: SignForOptions = {}): SignedHeaders {
  const secret = cfg.secrets.find(s => s !== '')
  if (secret === undefined) {
    throw new RelayError(
      'HOOKRELAY_SEND_NO_SECRET',
      `${cfg.scheme}: no secret configured to sign with; set verify.secrets${cfg.scheme === 'standard-webhooks' ? ' (a whsec_ secret: public keys cannot sign)' : ''}`,
    )
  }
  const nowSec = Math.floor(nowMs / 1000)
  switch (cfg.scheme) {
    case 'runflow':
      return signRunflow(secret, body)
    case 'github': {
      const headers = signGithub(secret, body)
      headers[GITHUB_DELIVERY_HEADER] = opts.id ?? randomUUID()
      if (opts.event !== undefined) headers[GITHUB_EVENT_HEADER] = opts.event
      return headers
    }
    case 'stripe':
      return signStripe(secret, body, nowSec)
    case 'standard-webhooks':
      return signStandardWebhooks({ secret }, opts.id ?? `msg_${randomBytes(16).toString('base64url')}`, nowSec, body)
    case 'hmac': {
      const s = cfg.hmac
      if (s === undefined) throw new RelayError('HOOKRELAY_CONFIG_BAD_SCHEME', 'hmac: the signature settings are missing; set verify.header or verify.preset')
      const id = opts.id ?? randomUUID()
      const headers = signHmac(s, secret, body, { timestampS: nowSec, id })
      if ('header' in s.key) headers[s.key.header] = id
      if ('header' in s.event && opts.event !== undefined) headers[s.event.header] = opts.event
      return headers
    }
    default:
      return unknownScheme(cfg.scheme)
  }
}

function unknownScheme(scheme: never): never {
  throw new RelayError('HOOKRELAY_CONFIG_BAD_SCHEME', `unknown verify scheme ${JSON.stringify(scheme)}; use runflow, github, stripe, standard-webhooks or hmac`)
}
