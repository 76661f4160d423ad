/**
 * The shape of `hookrelay.yaml`: keys, types and defaults (declarative, see
 * `spec.ts`), the checks that span several keys, and the mapping onto the
 * `Config` the relay runs on.
 */
import { isIP } from 'node:net'
import { resolve as resolvePath } from 'node:path'
import { dataDirProblem } from '../journal/data-dir.js'
import type { Config, SchemeName, SourceConfig } from './types.js'
import {
  bool,
  duration,
  httpUrlOf,
  list,
  mapOf,
  num,
  obj,
  oneOf,
  secret,
  secretList,
  size,
  threadCount,
  str,
  type Spec,
} from './spec.js'
import type { Walk } from './walk.js'
import {
  checkFieldPath,
  checkHeaderName,
  checkTemplate,
  HMAC_ALGORITHMS,
  HMAC_ENCODINGS,
  HMAC_KEY_NAMES,
  HMAC_PRESETS,
  resolveHmac,
} from '../verify/hmac.js'
import { checkDestinations, destinationsSpec, toDestinations } from '../destinations/config.js'
import { checkJetStream, jetstreamSpec, toJetStream } from '../journal/jetstream/config.js'

export const SCHEMES = ['runflow', 'github', 'stripe', 'standard-webhooks', 'hmac'] as const satisfies readonly SchemeName[]
/** The largest `max_body` any source may have. */
export const MAX_BODY_CEILING = 64 * 1024 * 1024
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
/** auto: pretty when stdout is a terminal, JSON lines otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const

const SOURCE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/
const SUBSCRIBER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/
/** Paths the relay serves itself; a source may not shadow them. */
const RESERVED_PATHS = ['/livez', '/readyz', '/metrics']
const WHSEC_RE = /^whsec_[A-Za-z0-9+/]+={0,2}$/
const WHPK_RE = /^whpk_[A-Za-z0-9+/]+={0,2}$/

function sourcePath(p: string): void {
  if (!p.startsWith('/')) throw new Error(`"${p}" does not start with "/"; write it like /webhook/runflow`)
  if (/[\s?#]/.test(p)) throw new Error(`"${p}" holds a space, "?" or "#"; use a plain path like /webhook/runflow`)
  // The router reads ":name" and "*" as patterns; a source is one literal path.
  const odd = /[^A-Za-z0-9._~/-]/.exec(p)
  if (odd !== null) {
    throw new Error(`"${p}" holds "${odd[0]}"; a source path is literal: use letters, digits, "/", ".", "_", "~" and "-", like /webhook/runflow`)
  }
  if (p === '/v1' || p.startsWith('/v1/') || RESERVED_PATHS.includes(p)) {
    throw new Error(`"${p}" is reserved for the relay's own API; use a path like /webhook/<name>`)
  }
}

function consolePath(p: string): void {
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(p)) {
    throw new Error(`"${p}" is not a plain path; use "/" and letters, digits, ".", "_", "~", "-" without a trailing "/", like /console`)
  }
  if (p === '/v1' || p.startsWith('/v1/') || RESERVED_PATHS.includes(p)) {
    throw new Error(`"${p}" is reserved for the relay's own API; use a path like /console`)
  }
}

function httpUrl(s: string): void {
  httpUrlOf(s, 'http://127.0.0.1:9000')
}

/** S3 bucket naming rules (the general-purpose bucket subset every S3 implementation accepts). */
function bucketName(s: string): void {
  const ok =
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s) &&
    !s.includes('..') &&
    !s.includes('.-') &&
    !s.includes('-.') &&
    isIP(s) === 0
  if (!ok) {
    throw new Error(
      `"${s}" is not a valid bucket name; use 3-63 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit`,
    )
  }
}

function hostName(s: string): void {
  if (s === '' || /[\s/]/.test(s)) {
    throw new Error(`"${s}" is not a host name; write a bare host like files.example.com or 127.0.0.1 (no scheme or path)`)
  }
}

function ipAddress(s: string): void {
  if (isIP(s) === 0) throw new Error(`"${s}" is not an IP address; list proxies by exact address, e.g. 127.0.0.1`)
}

function nonEmpty(s: string): void {
  if (s.trim() === '') throw new Error('is empty; give a value or remove the key')
}

const verifySpec = obj(
  {
    scheme: oneOf(SCHEMES, { required: true }),
    secrets: secretList(),
    public_keys: secretList(),
    tolerance: duration({ default: '300s', min: '1s', max: '1d' }),
    // Scheme hmac only (crossCheck refuses them elsewhere).
    preset: oneOf(HMAC_PRESETS),
    header: str({ check: checkHeaderName }),
    prefix: str(),
    algorithm: oneOf(HMAC_ALGORITHMS),
    encoding: oneOf(HMAC_ENCODINGS),
    signed: str({ check: checkTemplate }),
    timestamp_header: str({ check: checkHeaderName }),
    id_header: str({ check: checkHeaderName }),
    key_header: str({ check: checkHeaderName }),
    key_field: str({ check: checkFieldPath }),
    event_header: str({ check: checkHeaderName }),
    event_field: str({ check: checkFieldPath }),
  },
  { required: true, hint: 'add verify: { scheme: runflow, secrets: ["${RUNFLOW_WEBHOOK_SECRET:-}"] }' },
)

const sourceSpec = obj({
  path: str({ check: sourcePath }),
  verify: verifySpec,
  max_body: size({ default: '5mb', min: 1, max: MAX_BODY_CEILING }),
})

const subscriberSpec = obj({
  name: str({
    required: true,
    hint: 'add name: <a unique name, e.g. app>',
    check(s: string) {
      if (!SUBSCRIBER_NAME_RE.test(s)) {
        throw new Error(`"${s}" is not a valid name; use letters, digits, "_", "-" and "." (up to 63), e.g. app`)
      }
    },
  }),
  token: secret(),
  sources: list(str(), { default: ['*'] }),
  role: oneOf(['reader', 'operator'] as const, { default: 'reader' }),
})

const mirrorSpec = obj(
  {
    enabled: bool({ default: false }),
    endpoint: str({ default: '', check: (s: string) => s === '' || httpUrl(s) }),
    region: str({ default: 'us-east-1', check: nonEmpty }),
    access_key: secret(),
    secret_key: secret(),
    bucket: str({ default: '', check: (s: string) => s === '' || bucketName(s) }),
    allow_hosts: list(str({ check: hostName }), { default: [] }),
    selectors: list(str({ check: nonEmpty }), { default: [] }),
    concurrency: num({ default: 2, min: 1, max: 64 }),
    // Objects go up as one streamed PUT, and S3 caps a single PUT at 5 GiB.
    max_bytes: size({ default: '1gb', min: 1, max: '5gb' }),
    default_deadline: duration({ default: '1h', min: '1s' }),
    timeouts: obj({
      connect: duration({ default: '10s', min: 1 }),
      headers: duration({ default: '30s', min: 1 }),
      total: duration({ default: '30m', min: 1 }),
    }),
  },
  { gate: 'enabled' },
)

/** The whole file. Every key has a default except what a source must say about itself. */
export const configSpec = obj({
  listen: obj({
    host: str({ default: '0.0.0.0', check: nonEmpty }),
    port: num({ default: 8080, min: 0, max: 65535 }),
  }),
  data_dir: str({ default: './data', check: nonEmpty }),
  sources: mapOf(
    { pattern: SOURCE_NAME_RE, hint: 'use lowercase letters, digits, "_" and "-" (up to 63), starting with a letter or digit' },
    sourceSpec,
  ),
  subscribers: list(subscriberSpec, { default: [] }),
  mirror: mirrorSpec,
  journal: obj({
    backend: oneOf(['lmdb', 'jetstream'] as const, { default: 'lmdb' }),
    jetstream: jetstreamSpec,
    map_size: size({ default: '4gb', min: '16mb' }),
    retention: obj({
      max_age: duration({ default: '7d', min: '1s' }),
      max_bytes: size({ default: '2gb', min: '1mb' }),
    }),
    min_free: size({ default: '256mb', min: 0 }),
  }),
  stream: obj({
    max_inflight: num({ default: 1000, min: 1, max: 1_000_000 }),
    high_water: size({ default: '1mb', min: '1kb' }),
    hard_limit: size({ default: '16mb', min: '1kb' }),
    max_connections_per_ip: num({ default: 100, min: 1 }),
    max_payload: size({ default: '64kb', min: '1kb', max: '16mb' }),
  }),
  rate_limit: obj({
    ingest_per_second: num({ default: 0, min: 0, integer: false }),
    ingest_burst: num({ min: 0 }),
    limit_loopback: bool({ default: false }),
    trusted_proxies: list(str({ check: ipAddress }), { default: [] }),
  }),
  log: obj({ level: oneOf(LOG_LEVELS, { default: 'info' }), format: oneOf(LOG_FORMATS, { default: 'auto' }) }),
  shutdown: obj({ drain: duration({ default: '10s', min: 0 }) }),
  http: obj({
    body_timeout: duration({ default: '30s', min: '1s', max: '10m' }),
    header_timeout: duration({ default: '10s', min: '1s', max: '5m' }),
    keepalive_timeout: duration({ default: '65s', min: '1s', max: '1h' }),
    max_body_in_flight: size({ min: '16kb' }),
    max_body_per_address: size({ min: '16kb' }),
    threads: threadCount({ default: 'auto', max: 64 }),
  }),
  metrics: obj({ token: secret() }),
  console: obj({
    enabled: bool({ default: true }),
    path: str({ default: '/console', check: consolePath }),
  }),
  destinations: destinationsSpec,
})

/** The file as validated: YAML key names, units already converted, defaults applied. */
export type ConfigFile = typeof configSpec extends Spec<infer T> ? T : never

/** What a relay serving this file needs besides a valid file (see LoadOptions.serving). */
export function servingCheck(file: ConfigFile, w: Walk): void {
  if (Object.keys(file.sources).length === 0 && !w.reported('sources')) {
    w.report('sources', 'no source is configured, so the relay would accept nothing; add one, e.g. sources: { runflow: { verify: { scheme: runflow } } }')
  }
  if (typeof file.data_dir === 'string' && !w.reported('data_dir')) {
    const problem = dataDirProblem(resolvePath(w.cwd, file.data_dir))
    if (problem !== undefined) w.report('data_dir', problem)
  }
}

/** Checks that span several keys. Reports into `w`; tolerates values left undefined by earlier problems. */
export function crossCheck(file: ConfigFile, w: Walk): void {
  const paths = new Map<string, string>()
  for (const [name, source] of Object.entries(file.sources)) {
    const path = source.path ?? defaultSourcePath(name)
    const other = paths.get(path)
    if (other !== undefined) {
      w.report(`sources.${name}.path`, `${path} is also the path of sources.${other}; give each source its own path`)
    } else {
      paths.set(path, name)
    }
    const verify = source.verify
    if (verify === undefined || verify.scheme === undefined) continue
    const at = `sources.${name}.verify`
    if (verify.scheme === 'standard-webhooks') {
      verify.secrets.forEach((s, i) => {
        if (!isBase64Key(s, WHSEC_RE, 'whsec_')) {
          w.report(`${at}.secrets[${i}]`, 'is not a Standard Webhooks secret; use whsec_<base64>, e.g. from `hookrelay keygen`')
        }
      })
      verify.public_keys.forEach((k, i) => {
        if (!isBase64Key(k, WHPK_RE, 'whpk_', 32)) {
          w.report(`${at}.public_keys[${i}]`, 'is not an ed25519 public key; use whpk_<base64 of 32 bytes>, e.g. from `hookrelay keygen`')
        }
      })
    } else if (verify.public_keys.length > 0) {
      w.report(
        `${at}.public_keys`,
        `public keys apply only to scheme standard-webhooks (v1a), not ${verify.scheme}; remove public_keys or change the scheme`,
      )
    }
    if (verify.scheme === 'hmac') {
      // Keys that failed their own check were reported already; what spans keys is checked once they are all well-formed.
      if (HMAC_KEY_NAMES.every((k) => !w.reported(`${at}.${k}`))) {
        for (const p of resolveHmac(verify).problems) w.report(`${at}.${p.key}`, p.message)
      }
    } else {
      for (const k of HMAC_KEY_NAMES) {
        if (verify[k] !== undefined) {
          w.report(`${at}.${k}`, `applies only to scheme hmac, not ${verify.scheme}; remove it or change the scheme`)
        }
      }
    }
  }

  const names = new Map<string, number>()
  const tokens = new Map<string, number>()
  file.subscribers.forEach((sub, i) => {
    const at = `subscribers[${i}]`
    if (sub.name !== undefined) {
      const first = names.get(sub.name)
      if (first !== undefined) {
        w.report(`${at}.name`, `"${sub.name}" is also the name of subscribers[${first}]; give each subscriber its own name`)
      } else {
        names.set(sub.name, i)
      }
    }
    if (sub.token !== '') {
      const first = tokens.get(sub.token)
      if (first !== undefined) {
        // Never echo the token itself.
        w.report(`${at}.token`, `same token as subscribers[${first}]; give each subscriber its own token`)
      } else {
        tokens.set(sub.token, i)
      }
    }
    if (sub.sources.length === 0) {
      w.report(`${at}.sources`, 'lists no source, so the token could read nothing; use ["*"] for every source')
    }
    sub.sources.forEach((s, j) => {
      if (s !== '*' && !Object.hasOwn(file.sources, s)) {
        const known = Object.keys(file.sources)
        w.report(
          `${at}.sources[${j}]`,
          `"${s}" is not a configured source; use "*" or one of ${known.length === 0 ? '(none configured)' : known.join(', ')}`,
        )
      }
    })
  })

  const m = file.mirror
  if (m.enabled) {
    const required: Array<[keyof typeof m, string]> = [
      ['endpoint', 'set the S3/MinIO URL, e.g. http://127.0.0.1:9000'],
      ['bucket', 'set the bucket the outputs are copied to'],
      ['access_key', 'set access_key or access_key_file'],
      ['secret_key', 'set secret_key or secret_key_file'],
    ]
    for (const [key, todo] of required) {
      const at = `mirror.${key}`
      // A value that failed its own check (unset ${VAR}, unreadable file) was reported already.
      if (m[key] === '' && !w.reported(at) && !w.reported(`${at}_file`)) {
        w.report(at, `required when mirror.enabled is true; ${todo}`)
      }
    }
  }

  if (file.stream.high_water >= file.stream.hard_limit) {
    w.report('stream.high_water', 'must be below stream.hard_limit (sending pauses at high_water; hard_limit closes the socket); lower it or raise hard_limit')
  }
  // map_size is LMDB's; a JetStream stream has no map.
  if (file.journal.backend === 'lmdb' && file.journal.retention.max_bytes >= file.journal.map_size) {
    w.report(
      'journal.retention.max_bytes',
      'must be below journal.map_size (the journal cannot grow past its map); lower it or raise map_size',
    )
  }
  checkDestinations(file, w)
  checkJetStream(file, w)
  if (file.rate_limit.ingest_per_second > 0 && file.rate_limit.ingest_burst === 0) {
    w.report('rate_limit.ingest_burst', 'is 0, so no request would ever pass; raise it or leave it out (default 2 × ingest_per_second)')
  }
}

/** Maps the validated file onto `Config`. Call only when the walk found no problems. */
export function toConfig(file: ConfigFile, absFile: string, cwd: string): Config {
  const sources: Record<string, SourceConfig> = {}
  for (const [name, s] of Object.entries(file.sources)) {
    const verify = required(s.verify, `sources.${name}.verify`)
    sources[name] = {
      name,
      path: s.path ?? defaultSourcePath(name),
      verify: {
        scheme: required(verify.scheme, `sources.${name}.verify.scheme`),
        secrets: verify.secrets,
        public_keys: verify.public_keys,
        tolerance_ms: verify.tolerance,
        ...(verify.scheme === 'hmac' ? { hmac: required(resolveHmac(verify).settings, `sources.${name}.verify.header`) } : {}),
      },
      max_body: s.max_body,
    }
  }
  const { mirror: m, journal: j, rate_limit: r } = file
  return {
    file: absFile,
    listen: { host: file.listen.host, port: file.listen.port },
    data_dir: resolvePath(cwd, file.data_dir),
    sources,
    subscribers: file.subscribers.map((s, i) => ({
      name: required(s.name, `subscribers[${i}].name`),
      token: s.token,
      sources: s.sources,
      role: s.role,
    })),
    mirror: {
      enabled: m.enabled,
      endpoint: m.endpoint,
      region: m.region,
      access_key: m.access_key,
      secret_key: m.secret_key,
      bucket: m.bucket,
      allow_hosts: m.allow_hosts,
      selectors: m.selectors,
      concurrency: m.concurrency,
      max_bytes: m.max_bytes,
      default_deadline_ms: m.default_deadline,
      timeouts: { connect_ms: m.timeouts.connect, headers_ms: m.timeouts.headers, total_ms: m.timeouts.total },
    },
    journal: {
      backend: j.backend,
      jetstream: j.backend === 'jetstream' ? toJetStream(j.jetstream, cwd) : undefined,
      map_size: j.map_size,
      retention: { max_age_ms: j.retention.max_age, max_bytes: j.retention.max_bytes },
      min_free: j.min_free,
    },
    stream: { ...file.stream },
    rate_limit: {
      ingest_per_second: r.ingest_per_second,
      ingest_burst: r.ingest_burst ?? Math.ceil(2 * r.ingest_per_second),
      limit_loopback: r.limit_loopback,
      trusted_proxies: r.trusted_proxies,
    },
    log: { level: file.log.level, format: file.log.format },
    shutdown: { drain_ms: file.shutdown.drain },
    http: {
      body_timeout_ms: file.http.body_timeout,
      header_timeout_ms: file.http.header_timeout,
      keepalive_timeout_ms: file.http.keepalive_timeout,
      max_body_in_flight: file.http.max_body_in_flight,
      max_body_per_address: file.http.max_body_per_address,
      threads: file.http.threads,
    },
    metrics: { token: file.metrics.token },
    console: { enabled: file.console.enabled, path: file.console.path },
    destinations: toDestinations(file),
  }
}

export function defaultSourcePath(name: string): string {
  return `/webhook/${name}`
}

/** `<prefix><canonical base64>`, as strict as the verifier that will decode it at start. */
function isBase64Key(value: string, re: RegExp, prefix: string, bytes?: number): boolean {
  const text = value.slice(prefix.length)
  if (!re.test(value) || text.length % 4 !== 0) return false
  const decoded = Buffer.from(text, 'base64')
  if (decoded.toString('base64') !== text) return false
  return bytes === undefined ? decoded.length > 0 : decoded.length === bytes
}

function required<T>(value: T | undefined, path: string): T {
  // Unreachable once the walk reported no problems: a missing required key is a problem.
  if (value === undefined) throw new Error(`internal: ${path} missing after validation`)
  return value
}
