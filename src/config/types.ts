/**
 * The validated, frozen configuration the relay runs on. Key names follow the
 * YAML file (snake_case) so that the README, the file and the code say the same
 * thing. Sizes are bytes, durations are milliseconds.
 */

export type SchemeName = 'runflow' | 'github' | 'stripe' | 'standard-webhooks' | 'hmac'

export type HmacAlgorithm = 'sha1' | 'sha256' | 'sha512'
export type HmacPreset = 'shopify' | 'slack' | 'linear'

/** Where a value comes from: a request header (lower-cased name) or a JSON field of the body (dotted path). */
export type ValueSource = { header: string } | { field: string }

/** The `hmac` scheme with its preset (if any) applied: how the sender signs. */
export interface HmacSettings {
  preset: HmacPreset | undefined
  /** Lower-cased name of the signature header. */
  header: string
  /** Text before the signature in the header (`sha256=`, `v0=`), `''` for none. */
  prefix: string
  algorithm: HmacAlgorithm
  encoding: 'hex' | 'base64'
  /** What is signed: a template holding `{body}` once, and maybe `{timestamp}` and `{id}`. */
  signed: string
  /** Lower-cased name of the header holding Unix seconds, checked against `tolerance_ms`. */
  timestamp_header: string | undefined
  /** Lower-cased name of the header `{id}` stands for. */
  id_header: string | undefined
  key: ValueSource
  event: ValueSource
}

export interface VerifyConfig {
  scheme: SchemeName
  /**
   * Secrets (HMAC keys as configured; `whsec_` strings used literally for
   * runflow/stripe/github, base64-decoded after the prefix for
   * standard-webhooks `v1`), empty strings already removed.
   */
  secrets: string[]
  /** Standard Webhooks `v1a` ed25519 public keys (`whpk_<base64>`). */
  public_keys: string[]
  /** Allowed clock skew for timestamped schemes (stripe, standard-webhooks, hmac with a timestamp header). */
  tolerance_ms: number
  /** Set for scheme `hmac` only. */
  hmac?: HmacSettings
}

export interface SourceConfig {
  name: string
  /** URL path the source is served on, e.g. `/webhook/runflow`. */
  path: string
  verify: VerifyConfig
  max_body: number
}

export interface SubscriberConfig {
  name: string
  /** Bearer token; empty strings removed. */
  token: string
  /** Source names the token may read; `*` means every source. */
  sources: string[]
  /** `operator` may also manage: delete durable consumers, pause and replay destinations. */
  role: 'reader' | 'operator'
}

export interface MirrorConfig {
  enabled: boolean
  endpoint: string
  region: string
  access_key: string
  secret_key: string
  bucket: string
  /** When non-empty, only these origin hosts are fetched. */
  allow_hosts: string[]
  /** JSON-path-like selectors under `output`; empty = every http(s) string. */
  selectors: string[]
  concurrency: number
  max_bytes: number
  default_deadline_ms: number
  timeouts: { connect_ms: number; headers_ms: number; total_ms: number }
}

export interface JournalConfig {
  /** Where entries live: LMDB in data_dir (one box), or a NATS JetStream stream (cluster mode). */
  backend: 'lmdb' | 'jetstream'
  map_size: number
  retention: { max_age_ms: number; max_bytes: number }
  min_free: number
  /** Set when `backend` is `jetstream`. */
  jetstream: JetStreamConfig | undefined
}

/** `journal.jetstream`: the NATS cluster the relays share. */
export interface JetStreamConfig {
  /** `nats://host:port` URLs of the cluster's nodes. */
  servers: string[]
  /** The stream's name (created if missing, checked if present); KV buckets are named after it. */
  stream: string
  /** Replicas the stream is created with (and warned about when an existing one has fewer than 3). */
  replicas: number
  /** How long a publish waits for its PubAck, and a request for its answer. */
  timeout_ms: number
  /** JetStream's `Nats-Msg-Id` duplicate window of the stream. */
  duplicate_window_ms: number
  /** At most one of: token, user + password, an nkey seed file, a creds file (JWT + seed). */
  auth:
    | { kind: 'none' }
    | { kind: 'token'; token: string }
    | { kind: 'user'; user: string; password: string }
    | { kind: 'nkey'; seed_file: string }
    | { kind: 'creds'; file: string }
  /** TLS to the servers: a CA to trust, and a client certificate when the servers want one. */
  tls: { ca_file: string; cert_file: string; key_file: string } | undefined
}

export interface StreamConfig {
  max_inflight: number
  high_water: number
  hard_limit: number
  max_connections_per_ip: number
  max_payload: number
}

export interface RateLimitConfig {
  /** Requests per second per source address; 0 disables. */
  ingest_per_second: number
  ingest_burst: number
  /** Rate limits do not apply to loopback unless set. */
  limit_loopback: boolean
  /** Proxies whose X-Forwarded-For is trusted (exact addresses). */
  trusted_proxies: string[]
}

export interface Config {
  /** Absolute path of the file this was loaded from (or `<inline>`). */
  file: string
  listen: { host: string; port: number }
  /** Absolute path. */
  data_dir: string
  sources: Record<string, SourceConfig>
  subscribers: SubscriberConfig[]
  mirror: MirrorConfig
  journal: JournalConfig
  stream: StreamConfig
  rate_limit: RateLimitConfig
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; format: 'auto' | 'json' | 'pretty' }
  shutdown: { drain_ms: number }
  http: HttpConfig
  /** `/metrics` wants `Authorization: Bearer <token>` when set; unset, it answers only on a loopback listener. */
  metrics: { token: string }
  /** The web console (src/console): served on the relay's listener at `path`. */
  console: { enabled: boolean; path: string }
  /** HTTP push delivery, by destination name. */
  destinations: Record<string, DestinationConfig>
}

export interface HttpConfig {
  body_timeout_ms: number
  header_timeout_ms: number
  keepalive_timeout_ms: number
  /** Body bytes held at once across sources; unset = 64 MiB or 4 × the largest max_body. */
  max_body_in_flight: number | undefined
  /** Body bytes one client address may hold at once; unset = 1/8 of the budget, at least the largest max_body. */
  max_body_per_address: number | undefined
  /** Threads serving ingest: `auto` = the cores (at most 8); 1 = the main thread only, no worker. */
  threads: 'auto' | number
}

/** How a destination's requests are signed. */
export type DestinationSigning =
  /** The sender's own signature headers, as received, with the raw body. */
  | { mode: 'original' }
  /** Re-signed as a Standard Webhooks sender: `v1` (HMAC, `secret`), `v1a` (ed25519, `private_key`), or both. */
  | { mode: 'standard-webhooks'; secret: string; private_key: string }

/** One `destinations.<name>` block: where the relay POSTs journaled events. */
export interface DestinationConfig {
  name: string
  url: string
  /** Source names; `*` = every source. */
  sources: string[]
  /** Event-name globs (`run.*`); `*` = every event. */
  events: string[]
  signing: DestinationSigning
  /** Extra request headers, lowercase names. */
  headers: Record<string, string>
  timeout_ms: number
  /** 1 = strictly in journal order. */
  concurrency: number
  retry: {
    /** Waits before the 2nd, 3rd, … attempt; past its end an event is dead-lettered. */
    schedule_ms: number[]
    /** Each wait is scaled by a random factor in [1 − jitter, 1 + jitter]. */
    jitter: number
    /** An event older than this (since it was received) is dead-lettered instead of retried. */
    max_age_ms: number
  }
  /** After `failures` consecutive failed attempts the destination waits `cooldown_ms` (doubling up to `max_cooldown_ms`) and probes. */
  circuit: { failures: number; cooldown_ms: number; max_cooldown_ms: number }
  /** Attempt records kept for this destination (oldest events' first). */
  attempts_kept: number
}
