/**
 * The `destinations` block of `hookrelay.yaml`: its spec (positioned checks
 * like every other block), the checks that need the rest of the file, and the
 * mapping onto `DestinationConfig`.
 */
import { isMap, isScalar } from 'yaml'
import type { ConfigFile } from '../config/schema.js'
import { duration, httpUrlOf, list, mapOf, num, obj, oneOf, secret, str, type Spec } from '../config/spec.js'
import type { DestinationConfig, DestinationSigning } from '../config/types.js'
import { describeNode, INVALID, offsetOfNode, type Walk } from '../config/walk.js'
import { MAX_GLOB_LENGTH } from '../fanout/event-glob.js'
import { decodeBase64Strict } from '../verify/key-material.js'

const DESTINATION_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/
const HEADER_NAME_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/
/** Headers the relay sets itself on every delivery. */
const RELAY_HEADERS = ['host', 'content-length', 'transfer-encoding', 'connection', 'content-type', 'keep-alive', 'upgrade']
const SIGNING_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature']

function destinationUrl(s: string): void {
  const url = httpUrlOf(s, 'http://127.0.0.1:3000/webhook/runflow')
  if (url.username !== '' || url.password !== '') {
    throw new Error('holds credentials; put them in headers (e.g. authorization) instead of the URL')
  }
}

function headerValue(s: string): void {
  if (/[\r\n\0]/.test(s)) throw new Error('holds a line break or NUL; give a single-line header value')
}

function eventGlob(s: string): void {
  if (s === '' || s.length > MAX_GLOB_LENGTH) throw new Error(`is empty or longer than ${MAX_GLOB_LENGTH} characters; use a glob like run.*`)
}

const resignSpec = obj({
  scheme: oneOf(['standard-webhooks'] as const, { required: true, hint: 'add scheme: standard-webhooks' }),
  secret: secret(),
  private_key: secret(),
})

/** `signing: original`, or `signing: { scheme: standard-webhooks, secret | private_key }`. */
const signingSpec: Spec<DestinationSigning | { mode: 'resign'; raw: { secret: string; private_key: string } }> = {
  check(node, path, w) {
    const n = w.deref(node)
    if (isScalar(n)) {
      const v = oneOf(['original'] as const).check(n, path, w)
      return v === INVALID ? INVALID : { mode: 'original' }
    }
    if (!isMap(n)) {
      w.report(path, `expected original or a mapping { scheme: standard-webhooks, secret: whsec_... }, got ${describeNode(n)}`, {
        offset: offsetOfNode(n),
      })
      return INVALID
    }
    const v = resignSpec.check(n, path, w)
    if (v === INVALID) return INVALID
    return { mode: 'resign', raw: { secret: v.secret, private_key: v.private_key } }
  },
  absent: () => ({ mode: 'original' }),
}

export const destinationSpec = obj({
  url: str({ required: true, hint: 'add url: http://127.0.0.1:3000/webhook/runflow', check: destinationUrl }),
  sources: list(str(), { default: ['*'] }),
  events: list(str({ check: eventGlob }), { default: ['*'] }),
  signing: signingSpec,
  headers: mapOf(
    { pattern: HEADER_NAME_RE, hint: 'use an HTTP header name: letters, digits and -, e.g. x-environment' },
    str({ check: headerValue }),
  ),
  timeout: duration({ default: '10s', min: '10ms', max: '10m' }),
  concurrency: num({ default: 1, min: 1, max: 256 }),
  retry: obj({
    schedule: list(duration({ min: 1, max: '30d' }), { default: [5_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000] }),
    jitter: num({ default: 0.2, min: 0, max: 1, integer: false }),
    max_age: duration({ default: '3d', min: '1ms' }),
  }),
  circuit: obj({
    failures: num({ default: 10, min: 1, max: 1_000_000 }),
    cooldown: duration({ default: '30s', min: 1, max: '1d' }),
    max_cooldown: duration({ default: '10m', min: 1, max: '7d' }),
  }),
  attempts_kept: num({ default: 10_000, min: 10, max: 10_000_000 }),
})

/** `destinations:` — a mapping of names to blocks. */
export const destinationsSpec = mapOf(
  { pattern: DESTINATION_NAME_RE, hint: 'use lowercase letters, digits, "_" and "-" (up to 63), starting with a letter or digit' },
  destinationSpec,
)

/** Checks that need the rest of the file. Tolerates values left undefined by earlier problems. */
export function checkDestinations(file: ConfigFile, w: Walk): void {
  for (const [name, d] of Object.entries(file.destinations)) {
    const at = `destinations.${name}`
    d.sources.forEach((s, j) => {
      if (s !== '*' && !Object.hasOwn(file.sources, s)) {
        const known = Object.keys(file.sources)
        w.report(`${at}.sources[${j}]`, `"${s}" is not a configured source; use "*" or one of ${known.length === 0 ? '(none configured)' : known.join(', ')}`)
      }
    })
    if (d.sources.length === 0) w.report(`${at}.sources`, 'lists no source, so nothing would be delivered; use ["*"] for every source')
    if (d.events.length === 0) w.report(`${at}.events`, 'lists no event, so nothing would be delivered; use ["*"] for every event')
    if (d.retry.schedule.length === 0 && !w.reported(`${at}.retry.schedule`)) {
      w.report(`${at}.retry.schedule`, 'is empty, so a failed delivery would be dead-lettered at once; give waits like [5s, 30s, 2m]')
    }
    if (d.circuit.max_cooldown < d.circuit.cooldown) {
      w.report(`${at}.circuit.max_cooldown`, 'is below circuit.cooldown; raise it or lower cooldown')
    }
    const signing = d.signing
    for (const header of Object.keys(d.headers)) {
      const lower = header.toLowerCase()
      if (RELAY_HEADERS.includes(lower) || (signing.mode === 'resign' && SIGNING_HEADERS.includes(lower))) {
        w.report(`${at}.headers.${header}`, `the relay sets ${lower} itself; remove it`)
      }
    }
    if (signing.mode !== 'resign') continue
    const sat = `${at}.signing`
    const { secret: s, private_key: k } = signing.raw
    const reported = (key: string): boolean => w.reported(`${sat}.${key}`) || w.reported(`${sat}.${key}_file`)
    if (s === '' && k === '' && !reported('secret') && !reported('private_key')) {
      w.report(sat, 'has no key to sign with; set secret (whsec_..., v1) or private_key / private_key_file (whsk_..., v1a), e.g. from `hookrelay keygen`')
    }
    if (s !== '' && !validKey(s, 'whsec_')) {
      w.report(`${sat}.secret`, 'is not a Standard Webhooks secret; use whsec_<base64>, e.g. from `hookrelay keygen`')
    }
    if (k !== '' && !validKey(k, 'whsk_', [32, 64])) {
      w.report(`${sat}.private_key`, 'is not an ed25519 secret key; use whsk_<base64 of 64 bytes or a 32-byte seed>, e.g. from `hookrelay keygen --ed25519`')
    }
  }
}

/** Maps the validated block onto `Config.destinations`. Call only when the walk found no problems. */
export function toDestinations(file: ConfigFile): Record<string, DestinationConfig> {
  const out: Record<string, DestinationConfig> = {}
  for (const [name, d] of Object.entries(file.destinations)) {
    if (d.url === undefined) throw new Error(`internal: destinations.${name}.url missing after validation`)
    const signing: DestinationSigning =
      d.signing.mode === 'resign'
        ? { mode: 'standard-webhooks', secret: d.signing.raw.secret, private_key: d.signing.raw.private_key }
        : { mode: 'original' }
    out[name] = {
      name,
      url: d.url,
      sources: d.sources,
      events: d.events,
      signing,
      headers: Object.fromEntries(Object.entries(d.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k.toLowerCase(), v]]))),
      timeout_ms: d.timeout,
      concurrency: d.concurrency,
      retry: { schedule_ms: d.retry.schedule, jitter: d.retry.jitter, max_age_ms: d.retry.max_age },
      circuit: { failures: d.circuit.failures, cooldown_ms: d.circuit.cooldown, max_cooldown_ms: d.circuit.max_cooldown },
      attempts_kept: d.attempts_kept,
    }
  }
  return out
}

function validKey(value: string, prefix: string, lengths?: number[]): boolean {
  if (!value.startsWith(prefix)) return false
  const bytes = decodeBase64Strict(value.slice(prefix.length))
  if (bytes === undefined || bytes.length === 0) return false
  return lengths === undefined || lengths.includes(bytes.length)
}
