import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { HmacAlgorithm, HmacPreset, HmacSettings, ValueSource, VerifyConfig } from '../config/types.js'
import { RelayError } from '../errors.js'
import { headerValue } from './json-field.js'
import { literalHmacKeys } from './key-material.js'
import { VERIFIED, rejection } from './outcome.js'
import { parseUnixSeconds, toleranceOf, withinTolerance } from './timestamp.js'
import type { Described, HeaderBag, Verifier, VerifyOutcome } from './types.js'

export const HMAC_ALGORITHMS = ['sha1', 'sha256', 'sha512'] as const satisfies readonly HmacAlgorithm[]
export const HMAC_ENCODINGS = ['hex', 'base64'] as const
export const HMAC_PRESETS = ['shopify', 'slack', 'linear'] as const satisfies readonly HmacPreset[]

/** The keys of an `hmac` verify block besides scheme, secrets and tolerance, as written in YAML. */
export interface HmacKeys {
  preset?: HmacPreset | undefined
  header?: string | undefined
  prefix?: string | undefined
  algorithm?: HmacAlgorithm | undefined
  encoding?: 'hex' | 'base64' | undefined
  signed?: string | undefined
  timestamp_header?: string | undefined
  id_header?: string | undefined
  key_header?: string | undefined
  key_field?: string | undefined
  event_header?: string | undefined
  event_field?: string | undefined
}

export const HMAC_KEY_NAMES = [
  'preset',
  'header',
  'prefix',
  'algorithm',
  'encoding',
  'signed',
  'timestamp_header',
  'id_header',
  'key_header',
  'key_field',
  'event_header',
  'event_field',
] as const satisfies ReadonlyArray<keyof HmacKeys>

/**
 * How each provider documents its signature. Any key written next to
 * `preset` overrides the preset's.
 */
export const HMAC_PRESET_KEYS: Readonly<Record<HmacPreset, Readonly<HmacKeys>>> = {
  // shopify.dev, "Verify webhooks": base64 HMAC-SHA256 of the raw body.
  shopify: {
    header: 'X-Shopify-Hmac-Sha256',
    encoding: 'base64',
    key_header: 'X-Shopify-Webhook-Id',
    event_header: 'X-Shopify-Topic',
  },
  // api.slack.com, "Verifying requests from Slack": v0=hex HMAC-SHA256 of v0:<timestamp>:<body>.
  slack: {
    header: 'X-Slack-Signature',
    prefix: 'v0=',
    signed: 'v0:{timestamp}:{body}',
    timestamp_header: 'X-Slack-Request-Timestamp',
    key_field: 'event_id',
    event_field: 'event.type',
  },
  // linear.app developers, "Webhooks": hex HMAC-SHA256 of the raw body.
  linear: {
    header: 'Linear-Signature',
    key_header: 'Linear-Delivery',
    event_header: 'Linear-Event',
  },
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/
const FIELD_PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/
const PLACEHOLDER = /\{([^{}]*)\}/g

/** Throws an Error ("what is wrong; what to do") for a header name that is not an HTTP token. */
export function checkHeaderName(s: string): void {
  if (!HEADER_NAME.test(s)) throw new Error(`"${s}" is not a header name; write it like X-Signature`)
}

/** Throws for a JSON field path that is not dot-separated names. */
export function checkFieldPath(s: string): void {
  if (!FIELD_PATH.test(s)) throw new Error(`"${s}" is not a field path; write names separated by dots, like data.id`)
}

/** Throws for a `signed` template without exactly one `{body}`, or with an unknown placeholder. */
export function checkTemplate(s: string): void {
  const names = [...s.matchAll(PLACEHOLDER)].map((m) => m[1])
  const unknown = names.find((n) => n !== 'body' && n !== 'timestamp' && n !== 'id')
  if (unknown !== undefined) {
    throw new Error(`{${unknown}} is not a placeholder; use {body}, {timestamp} and {id}`)
  }
  const bodies = names.filter((n) => n === 'body').length
  if (bodies !== 1) {
    throw new Error(
      bodies === 0
        ? 'does not hold {body}, so the body would not be signed; write e.g. "{body}" or "v0:{timestamp}:{body}"'
        : 'holds {body} more than once; write it once',
    )
  }
}

/** A problem with an hmac block as a whole, found by `resolveHmac`: which key, what is wrong and what to do. */
export interface HmacProblem {
  key: keyof HmacKeys
  message: string
}

/**
 * The settings of an `hmac` verify block: the preset's keys, overridden by
 * those written (a written `key_header` or `key_field` replaces both of the
 * preset's, likewise for the event), then the defaults. Problems that span
 * keys are returned; each key's own shape is checked by the config schema.
 */
export function resolveHmac(given: HmacKeys): { settings: HmacSettings | undefined; problems: HmacProblem[] } {
  const preset = given.preset === undefined ? {} : HMAC_PRESET_KEYS[given.preset]
  const pick = <K extends keyof HmacKeys>(k: K): HmacKeys[K] => given[k] ?? preset[k]
  const problems: HmacProblem[] = []
  const source = (what: 'key' | 'event'): ValueSource | undefined => {
    const header = given[`${what}_header`]
    const field = given[`${what}_field`]
    if (header !== undefined && field !== undefined) {
      problems.push({ key: `${what}_field`, message: `both ${what}_header and ${what}_field are set; keep one` })
      return undefined
    }
    const h = header ?? (field === undefined ? preset[`${what}_header`] : undefined)
    const f = field ?? (header === undefined ? preset[`${what}_field`] : undefined)
    if (h !== undefined) return { header: h.toLowerCase() }
    if (f !== undefined) return { field: f }
    const hint = what === 'key'
      ? 'set key_header (e.g. X-Webhook-Id) or key_field (e.g. id) to the sender\'s delivery id'
      : 'set event_header (e.g. X-Event-Type) or event_field (e.g. type)'
    problems.push({ key: `${what}_header`, message: `missing; ${hint}` })
    return undefined
  }
  const header = pick('header')
  if (header === undefined) {
    problems.push({ key: 'header', message: 'missing; set header to the signature header (e.g. X-Signature) or use a preset (shopify, slack, linear)' })
  }
  const signed = pick('signed') ?? '{body}'
  const timestampHeader = pick('timestamp_header')
  const idHeader = pick('id_header')
  if (signed.includes('{timestamp}') && timestampHeader === undefined) {
    problems.push({ key: 'signed', message: 'uses {timestamp} but no timestamp_header is set; set it' })
  }
  if (!signed.includes('{timestamp}') && timestampHeader !== undefined) {
    problems.push({
      key: 'timestamp_header',
      message: 'is not signed, so anyone could refresh it; put {timestamp} into signed, or remove timestamp_header',
    })
  }
  if (signed.includes('{id}') && idHeader === undefined) {
    problems.push({ key: 'signed', message: 'uses {id} but no id_header is set; set it' })
  }
  if (!signed.includes('{id}') && idHeader !== undefined) {
    problems.push({ key: 'id_header', message: 'is not used; put {id} into signed, or remove id_header' })
  }
  const key = source('key')
  const event = source('event')
  if (header === undefined || key === undefined || event === undefined || problems.length > 0) {
    return { settings: undefined, problems }
  }
  return {
    settings: {
      preset: given.preset,
      header: header.toLowerCase(),
      prefix: pick('prefix') ?? '',
      algorithm: pick('algorithm') ?? 'sha256',
      encoding: pick('encoding') ?? 'hex',
      signed,
      timestamp_header: timestampHeader?.toLowerCase(),
      id_header: idHeader?.toLowerCase(),
      key,
      event,
    },
    problems,
  }
}

type Part = string | { header: string }

/** The template's text before and after `{body}`, `{timestamp}` and `{id}` replaced by their headers. */
function splitTemplate(s: HmacSettings): { before: Part[]; after: Part[] } {
  const at = s.signed.indexOf('{body}')
  const parts = (text: string): Part[] =>
    text.split(/(\{timestamp\}|\{id\})/).filter((p) => p !== '').map((p) => {
      if (p === '{timestamp}') return { header: s.timestamp_header as string }
      if (p === '{id}') return { header: s.id_header as string }
      return p
    })
  return { before: parts(s.signed.slice(0, at)), after: parts(s.signed.slice(at + '{body}'.length)) }
}

const DIGEST_BYTES: Record<HmacAlgorithm, number> = { sha1: 20, sha256: 32, sha512: 64 }

const MISSING = rejection('signature header missing')
const MALFORMED = rejection('signature malformed')
const TIMESTAMP_MISSING = rejection('timestamp header missing')
const TIMESTAMP_MALFORMED = rejection('timestamp malformed')
const STALE = rejection('timestamp outside tolerance')
const ID_MISSING = rejection('id header missing')
const NO_MATCH = rejection('no secret matched')

/**
 * Reads a non-empty string, or an integer (as its decimal text), at a dotted
 * path of a parsed JSON body; anything else is `undefined`.
 *
 * @example
 *   fieldAt({ event: { type: 'app_mention' } }, 'event.type') // 'app_mention'
 *   fieldAt({ id: 820982911946154500 }, 'id')                 // '820982911946154500'
 */
export function fieldAt(json: unknown, path: string): string | undefined {
  let cur = json
  for (const name of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined
    cur = (cur as Record<string, unknown>)[name]
  }
  if (typeof cur === 'string') return cur === '' ? undefined : cur
  if (typeof cur === 'number' && Number.isSafeInteger(cur)) return String(cur)
  return undefined
}

function valueOf(from: ValueSource, headers: HeaderBag, json: unknown): string | undefined {
  return 'header' in from ? headerValue(headers[from.header]) : fieldAt(json, from.field)
}

/**
 * Senders that sign the raw body their own way: the signature header holds
 * `prefix` + the hex or base64 HMAC (sha1, sha256 or sha512) of the `signed`
 * template, `{body}` being the raw body and `{timestamp}` / `{id}` the
 * values of their headers. The secret string is the key as given. A timestamp
 * header, when set, must be within `tolerance_ms` of now.
 *
 * @example
 *   const v = new HmacVerifier({ scheme: 'hmac', secrets: ['shpss_...'], public_keys: [], tolerance_ms: 300_000,
 *     hmac: resolveHmac({ preset: 'shopify' }).settings })
 *   v.verify({ 'x-shopify-hmac-sha256': 'Xz8...=' }, body, Date.now())
 *
 * @throws RelayError `HOOKRELAY_CONFIG_NO_SECRET`, `HOOKRELAY_CONFIG_BAD_SECRET`,
 *   `HOOKRELAY_CONFIG_BAD_SCHEME` when the settings are missing.
 */
export class HmacVerifier implements Verifier {
  readonly scheme = 'hmac' as const
  readonly headers: readonly string[]
  readonly #s: HmacSettings
  readonly #keys: KeyObject[]
  readonly #before: Part[]
  readonly #after: Part[]
  readonly #toleranceMs: number
  readonly #shape: RegExp
  readonly #bytes: number

  constructor(cfg: VerifyConfig) {
    if (cfg.hmac === undefined) {
      throw new RelayError('HOOKRELAY_CONFIG_BAD_SCHEME', 'hmac: the signature settings are missing; set verify.header or verify.preset')
    }
    this.#s = cfg.hmac
    this.#keys = literalHmacKeys('hmac', cfg.secrets)
    ;({ before: this.#before, after: this.#after } = splitTemplate(cfg.hmac))
    this.#toleranceMs = toleranceOf(cfg.tolerance_ms)
    this.#bytes = DIGEST_BYTES[cfg.hmac.algorithm]
    // Exact shapes, so that length is checked before any decoding or crypto.
    this.#shape = cfg.hmac.encoding === 'hex'
      ? new RegExp(`^[0-9a-fA-F]{${this.#bytes * 2}}$`)
      : new RegExp(`^[A-Za-z0-9+/]{${Math.floor(this.#bytes / 3) * 4}}${['', '[A-Za-z0-9+/]{2}==', '[A-Za-z0-9+/]{3}='][this.#bytes % 3]}$`)
    const { header, timestamp_header, id_header, key, event } = cfg.hmac
    this.headers = Object.freeze([...new Set([
      header,
      ...(timestamp_header === undefined ? [] : [timestamp_header]),
      ...(id_header === undefined ? [] : [id_header]),
      ...('header' in key ? [key.header] : []),
      ...('header' in event ? [event.header] : []),
    ])])
  }

  verify(headers: HeaderBag, body: Buffer, nowMs: number): VerifyOutcome {
    const s = this.#s
    const header = headers[s.header]
    if (header === undefined || header === '') return MISSING
    if (!header.startsWith(s.prefix)) return MALFORMED
    const value = header.slice(s.prefix.length)
    if (!this.#shape.test(value)) return MALFORMED
    if (s.timestamp_header !== undefined) {
      const ts = headers[s.timestamp_header]
      if (ts === undefined || ts === '') return TIMESTAMP_MISSING
      const seconds = parseUnixSeconds(ts)
      if (seconds === undefined) return TIMESTAMP_MALFORMED
      if (!withinTolerance(seconds, nowMs, this.#toleranceMs)) return STALE
    }
    if (s.id_header !== undefined && (headers[s.id_header] ?? '') === '') return ID_MISSING
    const given = Buffer.from(value, s.encoding)
    const before = this.#text(this.#before, headers)
    const after = this.#text(this.#after, headers)
    for (const key of this.#keys) {
      const expected = createHmac(s.algorithm, key).update(before).update(body).update(after).digest()
      if (timingSafeEqual(expected, given)) return VERIFIED
    }
    return NO_MATCH
  }

  #text(parts: Part[], headers: HeaderBag): string {
    let out = ''
    for (const p of parts) out += typeof p === 'string' ? p : (headers[p.header] ?? '')
    return out
  }

  /** key and event from the configured header or JSON field. */
  describe(headers: HeaderBag, json: unknown): Described {
    return { key: valueOf(this.#s.key, headers, json), event: valueOf(this.#s.event, headers, json), status: undefined }
  }
}

/**
 * Signs `body` as a sender set up like `s` would: the signature header, and
 * the timestamp and id headers the template names.
 *
 * @example
 *   signHmac(resolveHmac({ preset: 'slack' }).settings!, secret, body, { timestampS: 1531420618 })
 *   // { 'x-slack-signature': 'v0=a2114d…', 'x-slack-request-timestamp': '1531420618' }
 */
export function signHmac(
  s: HmacSettings,
  secret: string,
  body: Buffer | string,
  opts: { timestampS: number; id?: string },
): Record<string, string> {
  const values: HeaderBag = {}
  if (s.timestamp_header !== undefined) values[s.timestamp_header] = String(Math.floor(opts.timestampS))
  if (s.id_header !== undefined) values[s.id_header] = opts.id ?? ''
  const { before, after } = splitTemplate(s)
  const text = (parts: Part[]): string => parts.map((p) => (typeof p === 'string' ? p : values[p.header] ?? '')).join('')
  const mac = createHmac(s.algorithm, secret).update(text(before)).update(body).update(text(after)).digest(s.encoding)
  return { ...(values as Record<string, string>), [s.header]: `${s.prefix}${mac}` }
}
