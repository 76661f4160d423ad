/**
 * One error class for the whole relay and one registry of its codes. Every
 * failure carries a stable `code` (`HOOKRELAY_<AREA>_<WHAT>`) from ERRORS,
 * which says where it surfaces, its HTTP status where it maps to an answer,
 * and what it means; the README's "Error codes" table is checked against it
 * (test/docs.test.ts), row by row.
 *
 * @example
 *   throw new RelayError('HOOKRELAY_INGEST_BODY_TOO_LARGE', 'body over 5 MiB') // status 413, from ERRORS
 */

interface ErrorSpec {
  /** The HTTP status of an answer with this code. */
  readonly status?: number
  /** Where it surfaces, as the README's table says it: the status, `start`, `client`, `mirror`, `exit 78`, … */
  readonly where: string
  /** What it means, as the README's table says it. */
  readonly meaning: string
}

export const ERRORS = {
  HOOKRELAY_INGEST_UNAUTHORIZED: { status: 401, where: '401', meaning: 'signature missing or wrong (the reason is logged, not answered)' },
  HOOKRELAY_INGEST_NOT_JSON: { status: 400, where: '400', meaning: 'the verified body is not a JSON object' },
  HOOKRELAY_INGEST_NO_KEY: { status: 400, where: '400', meaning: 'no idempotency key (`run_id`/`batch_id`, delivery id, …)' },
  HOOKRELAY_INGEST_NO_EVENT: { status: 400, where: '400', meaning: 'the callback names no event' },
  HOOKRELAY_INGEST_BAD_KEY: { status: 400, where: '400', meaning: 'idempotency key over 512 bytes or event name over 256 bytes' },
  HOOKRELAY_INGEST_BAD_LENGTH: { status: 400, where: '400', meaning: '`Content-Length` is not a byte count or does not match the body' },
  HOOKRELAY_INGEST_BODY_TOO_LARGE: { status: 413, where: '413', meaning: 'body over `max_body` (connection closed)' },
  HOOKRELAY_INGEST_BODY_TIMEOUT: { status: 408, where: '408', meaning: 'the body did not arrive within `http.body_timeout`, 30 s by default (connection closed)' },
  HOOKRELAY_HTTP_METHOD_NOT_ALLOWED: { status: 405, where: '405', meaning: 'the path takes other methods (`Allow` lists them; a source path takes POST)' },
  HOOKRELAY_HTTP_NOT_FOUND: { status: 404, where: '404', meaning: 'no route' },
  HOOKRELAY_HTTP_CLOSING: { status: 503, where: '503', meaning: 'the relay is shutting down' },
  HOOKRELAY_HTTP_BUSY: { status: 503, where: '503', meaning: 'too many request bodies in flight at once; retry' },
  HOOKRELAY_HTTP_RATE_LIMITED: { status: 429, where: '429', meaning: 'too many requests from this address (`Retry-After` says when)' },
  HOOKRELAY_HTTP_BAD_REQUEST: { status: 400, where: '400', meaning: 'malformed request line, version, `Host` or `Transfer-Encoding` (connection closed)' },
  HOOKRELAY_HTTP_HEADERS_TOO_LARGE: { status: 431, where: '431', meaning: 'request line and headers over 16 KiB (connection closed)' },
  HOOKRELAY_HTTP_REQUEST_TIMEOUT: { status: 408, where: '408', meaning: 'request line and headers not complete within `http.header_timeout`' },
  HOOKRELAY_JOURNAL_FULL: { status: 503, where: '503', meaning: 'the journal reached `journal.map_size`; retention frees space' },
  HOOKRELAY_JOURNAL_DISK_FULL: { status: 503, where: '503', meaning: 'less than `journal.min_free` free on the disk' },
  HOOKRELAY_JOURNAL_COMMIT_FAILED: { status: 503, where: '503', meaning: 'a commit failed (the relay goes fail-stop)' },
  HOOKRELAY_JOURNAL_ENTRY_REJECTED: { status: 500, where: '500', meaning: 'this one entry could not be stored (rolled back alone; others are unaffected)' },
  HOOKRELAY_JOURNAL_FAILED: { status: 503, where: '503', meaning: 'refused after an earlier I/O error; restart the relay' },
  HOOKRELAY_JOURNAL_CLOSING: { status: 503, where: '503', meaning: 'the journal is closing' },
  HOOKRELAY_JOURNAL_UNAVAILABLE: { status: 503, where: '503', meaning: "cluster mode: the NATS cluster or the journal's stream cannot take the entry now (disconnected, no quorum, no PubAck in `journal.jetstream.timeout`); retry" },
  HOOKRELAY_JOURNAL_STREAM_CHANGED: { status: 503, where: '503', meaning: "cluster mode: the stream was recreated or went backwards under the relay, which stopped acknowledging (the log says what moved); restart it to take the stream's new epoch" },
  HOOKRELAY_NOT_READY: { status: 503, where: '503 on `/readyz`', meaning: 'closing, failed after an I/O error, or disk/map too full for a 64 KiB callback' },
  HOOKRELAY_API_UNAUTHORIZED: { status: 401, where: '401', meaning: 'read API without a valid bearer token' },
  HOOKRELAY_API_NOT_FOUND: { status: 404, where: '404', meaning: 'no such run for this token' },
  HOOKRELAY_API_BAD_QUERY: { status: 400, where: '400', meaning: '`after`/`limit` are not non-negative integers' },
  HOOKRELAY_API_BAD_PATH: { status: 400, where: '400', meaning: 'bad percent-encoding in the path' },
  HOOKRELAY_METRICS_FAILED: { status: 500, where: '500', meaning: '`/metrics` could not be collected' },
  HOOKRELAY_METRICS_UNAUTHORIZED: { status: 401, where: '401', meaning: '`/metrics` without the bearer `metrics.token`' },
  HOOKRELAY_METRICS_DISABLED: { status: 403, where: '403', meaning: '`/metrics` on a relay that listens beyond loopback with no `metrics.token`' },
  HOOKRELAY_STREAM_UNAUTHORIZED: { status: 401, where: '401 on upgrade', meaning: 'bad or missing bearer token (never a `101`)' },
  HOOKRELAY_STREAM_TOO_MANY_CONNECTIONS: { status: 429, where: '429 on upgrade', meaning: 'over `stream.max_connections_per_ip` (authenticated), or over 16 per address / 256 in all waiting for an auth frame' },
  HOOKRELAY_STREAM_CLOSING: { status: 503, where: '503 on upgrade', meaning: 'the relay is shutting down' },
  HOOKRELAY_CLIENT_UNAUTHORIZED: { where: 'client', meaning: 'the relay refused the token (401 / 4401)' },
  HOOKRELAY_CLIENT_FORBIDDEN: { where: 'client', meaning: 'a source the token may not read (4403)' },
  HOOKRELAY_CLIENT_PROTOCOL: { where: 'client', meaning: 'the relay closed with 4400' },
  HOOKRELAY_CLIENT_CURSOR_AHEAD: { where: 'client', meaning: "`after` is past the relay's head" },
  HOOKRELAY_CLIENT_CURSOR_EXPIRED: { where: 'client', meaning: 'the cursor is older than retention' },
  HOOKRELAY_CLIENT_CONSUMER_REPLACED: { where: 'client', meaning: 'another connection took over the consumer (4409)' },
  HOOKRELAY_CLIENT_EPOCH_CHANGED: { where: 'client', meaning: 'the journal was recreated' },
  HOOKRELAY_CLIENT_HANDLER_FAILED: { where: 'client', meaning: 'the handler threw; that event is not acked' },
  HOOKRELAY_CLIENT_USAGE: { where: 'client', meaning: 'wrong options (no url/token, iterating twice, …)' },
  HOOKRELAY_MIRROR_URL_REFUSED: { where: 'mirror', meaning: 'scheme or address refused by the SSRF guard' },
  HOOKRELAY_MIRROR_DNS: { where: 'mirror', meaning: 'the origin name did not resolve' },
  HOOKRELAY_MIRROR_REDIRECTS: { where: 'mirror', meaning: 'more than 5 redirects' },
  HOOKRELAY_MIRROR_DOWNGRADE: { where: 'mirror', meaning: 'a redirect from https to http' },
  HOOKRELAY_MIRROR_TOO_LARGE: { where: 'mirror', meaning: 'over `mirror.max_bytes`' },
  HOOKRELAY_MIRROR_TIMEOUT: { where: 'mirror', meaning: 'connect, headers, idle or total timeout' },
  HOOKRELAY_MIRROR_NETWORK: { where: 'mirror', meaning: 'the connection failed' },
  HOOKRELAY_MIRROR_ABORTED: { where: 'mirror', meaning: 'the transfer was cut short (shutdown, short body)' },
  HOOKRELAY_MIRROR_ORIGIN_STATUS: { where: 'mirror', meaning: 'the origin answered an error status' },
  HOOKRELAY_MIRROR_STORE_STATUS: { where: 'mirror', meaning: 'the store answered an error status' },
  HOOKRELAY_MIRROR_STORE_UNAVAILABLE: { where: 'mirror', meaning: 'the store cannot be reached' },
  HOOKRELAY_MIRROR_STORE_MISMATCH: { where: 'mirror', meaning: "the stored object's size differs from the download" },
  HOOKRELAY_MIRROR_BUCKET: { where: 'mirror', meaning: 'the bucket could not be checked or created' },
  HOOKRELAY_CONFIG_INVALID: { where: 'exit 78', meaning: 'the config has problems (all listed as `file:line:col: path: …`)' },
  HOOKRELAY_CONFIG_UNREADABLE: { where: 'exit 78', meaning: 'the config file cannot be read' },
  HOOKRELAY_CONFIG_GENERATED_INVALID: { where: 'exit 78', meaning: '`data_dir/generated-secrets.json` is malformed (never overwritten)' },
  HOOKRELAY_CONFIG_GENERATED_WRITE: { where: 'exit 78', meaning: '`data_dir/generated-secrets.json` cannot be written' },
  HOOKRELAY_CONFIG_NO_SECRET: { where: 'start', meaning: 'a source has no secret (and none could be generated)' },
  HOOKRELAY_CONFIG_BAD_SECRET: { where: 'start', meaning: 'an empty secret, or a `whsec_` secret that is not base64 (standard-webhooks)' },
  HOOKRELAY_CONFIG_BAD_PUBLIC_KEY: { where: 'start', meaning: 'a `public_keys` entry that is not `whpk_` + base64 of 32 bytes' },
  HOOKRELAY_CONFIG_BAD_SCHEME: { where: 'start', meaning: 'an unknown verify scheme' },
  HOOKRELAY_CONFIG_RESTART_REQUIRED: { where: 'SIGHUP', meaning: 'the new config changes something only a restart applies; the old one keeps running' },
  HOOKRELAY_JOURNAL_DATA_DIR: { where: 'exit 78', meaning: '`data_dir` is unusable: a file, read-only, a missing parent, on `/proc` (also reported by `check-config` at the `data_dir` key)' },
  HOOKRELAY_JOURNAL_LOCKED: { where: 'start (exit 1)', meaning: 'another live relay holds this `data_dir`; the message names its pid' },
  HOOKRELAY_JOURNAL_OPEN: { where: 'start', meaning: 'LMDB cannot open the journal in `data_dir`' },
  HOOKRELAY_JOURNAL_SCHEMA: { where: 'start', meaning: 'the journal was written by an incompatible version' },
  HOOKRELAY_JOURNAL_STREAM_OPEN: { where: 'start', meaning: 'cluster mode: the stream or its KV buckets could not be created or read (no quorum, no room to place the replicas, JetStream not enabled)' },
  HOOKRELAY_JOURNAL_CONNECT: { where: 'start', meaning: 'cluster mode: no NATS server of `journal.jetstream.servers` could be reached (or TLS to it failed), or JetStream is not enabled there; the message says which and what to check' },
  HOOKRELAY_JOURNAL_STREAM_REFUSED: { where: 'start', meaning: "cluster mode: the existing stream would break the journal's contract (subjects, retention, discard, per-subject limits, sealed, no_ack, memory storage, a mirror or sources); the message says which and how to fix it" },
  HOOKRELAY_JOURNAL_BACKUP: { where: '`backup`', meaning: 'the copy failed (e.g. the destination already holds a journal)' },
  HOOKRELAY_UWS_NATIVE: { where: 'start', meaning: 'no uWebSockets.js native binary for this Node/platform' },
  HOOKRELAY_LMDB_NATIVE: { where: 'start', meaning: 'no lmdb native binary for this Node/platform' },
  HOOKRELAY_HTTP_LISTEN: { where: 'start', meaning: 'the address/port cannot be bound: another process serves the port (it is bound exclusively, so two relays never share one; a held port is retried for 15 s first), the address is not on this machine, or a port below 1024' },
  HOOKRELAY_HTTP_ROUTE_TAKEN: { where: 'start', meaning: 'two routes on one path (a source `path` that the relay itself uses)' },
  HOOKRELAY_SEND_NO_SECRET: { where: '`send`', meaning: 'no secret to sign with' },
  HOOKRELAY_API_FORBIDDEN: { status: 403, where: '403', meaning: 'deleting a consumer needs an operator token' },
  HOOKRELAY_API_CONSUMER_CONNECTED: { status: 409, where: '409', meaning: 'the consumer to delete is connected; stop it first' },
  HOOKRELAY_CONSOLE_NOT_BUILT: { status: 503, where: '503', meaning: 'the console page was not built (`npm run build`)' },
  HOOKRELAY_CONSOLE_FAILED: { status: 500, where: '500', meaning: 'a console endpoint could not answer; see the log' },
  HOOKRELAY_DESTINATION_NOT_FOUND: { status: 404, where: '404', meaning: 'no such destination (or one this token may not see)' },
  HOOKRELAY_DESTINATION_FORBIDDEN: { status: 403, where: '403', meaning: 'replay, pause or resume without an operator\'s token' },
  HOOKRELAY_DESTINATION_BAD_REQUEST: { status: 400, where: '400', meaning: 'a replay body that is not `{"from": N}` or `{"dead_letters": true}`, or a bad `seq`/`limit`' },
  HOOKRELAY_DESTINATION_UNAVAILABLE: { status: 503, where: '503', meaning: 'the action could not be stored, or the dead letters read (journal failure); retry' },
  HOOKRELAY_JETSTREAM_AUTH: { where: 'start', meaning: 'cluster mode: the NATS servers refused the credentials of `journal.jetstream`' },
  HOOKRELAY_JETSTREAM_FILE: { where: 'start', meaning: 'cluster mode: an nkey seed, creds or TLS file of `journal.jetstream` cannot be read or is malformed' },
} as const satisfies Record<`HOOKRELAY_${string}`, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

/** Codes that are HTTP answers (they have a status). */
export type HttpErrorCode = { [K in ErrorCode]: (typeof ERRORS)[K] extends { status: number } ? K : never }[ErrorCode]

/** The HTTP status of an answer with `code`. */
export function statusOf(code: HttpErrorCode): number {
  return (ERRORS[code] as { status: number }).status
}

export class RelayError extends Error {
  readonly code: ErrorCode
  /** From ERRORS: the HTTP status where the failure maps to an answer. */
  readonly status: number | undefined

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'RelayError'
    this.code = code
    this.status = (ERRORS[code] as ErrorSpec).status
  }
}

/** Exit code for a configuration error (sysexits EX_CONFIG). */
export const EX_CONFIG = 78
