/**
 * The messages between the main thread and the ingest threads
 * (`http.threads` > 1). Ingest threads read bodies, verify, parse and hash;
 * the main thread owns the journal (one writer, group commit) and answers
 * each record once it is durable; the ingest thread then writes the `200`.
 *
 * Everything that must hold across threads exactly as on one lives in shared
 * memory, read synchronously by the ingest threads: the closing flag and the
 * reload generation (CONTROL_*), the body budget (shared-budget.ts). A reload
 * is posted on its own port before the generation is bumped, so an ingest
 * thread that sees a new generation takes the new config synchronously
 * (`receiveMessageOnPort`) before it routes the request: no request that
 * starts after `Relay.reload` returned is checked with the old secrets.
 */
import type { MessagePort } from 'node:worker_threads'
import type { HttpConfig, RateLimitConfig, SourceConfig } from '../config/types.js'

/** Int32 slots of the control memory. */
export const CONTROL_CLOSING = 0
export const CONTROL_GENERATION = 1
/** Public connections open on all ingest threads together. */
export const CONTROL_CONNECTIONS = 2
export const CONTROL_SLOTS = 3

/** What an ingest thread may be reloaded with. */
export interface ThreadSettings {
  sources: SourceConfig[]
  rateLimit: RateLimitConfig
  logLevel: string
}

export interface WorkerInit extends ThreadSettings {
  index: number
  http: HttpConfig
  control: SharedArrayBuffer
  budget: SharedArrayBuffer
  /** Reloads arrive here (read synchronously, see above). */
  reloads: MessagePort
  /** The main thread's private listener for every route that is not ingest. */
  mainPath: string
  /** uWS's private socket for WebSocket upgrades, when a WebSocket route exists. */
  streamPath: string | undefined
  wsPaths: string[]
}

/** One verified record for the journal; its body is `len` bytes at `off` of the batch's `bodies`. */
export interface AppendMsg {
  id: number
  source: string
  event: string
  key: string
  status: string | undefined
  sha256: string
  receivedAt: number
  requestId: string | undefined
  headers: Record<string, string>
  off: number
  len: number
}

/** Worker → main, one per event-loop turn with anything to say. */
export interface BatchMsg {
  t: 'batch'
  appends: AppendMsg[]
  bodies: ArrayBuffer | undefined
  /** Rate-limit questions: [id, address]. */
  admits: Array<[number, string]>
  /** Answers counted: [source, status, count]. */
  counts: Array<[string, number, number]>
  /** Ack latencies observed: [source, seconds]. */
  latencies: Array<[string, number]>
  /** Log lines: [level, fields, message]; `rejects` lines go through the main thread's rate-limited RejectLog. */
  logs: Array<['rejects' | 'debug' | 'info' | 'warn' | 'error', Record<string, unknown>, string]>
}

export type WorkerMsg =
  | BatchMsg
  | { t: 'listening'; port: number; fd: number }
  | { t: 'failed'; code: string; message: string }
  | { t: 'done'; id: number }

/** Main → worker. */
export type MainMsg =
  | {
      t: 'results'
      /** [id, seq, revision, duplicate] */
      ok: Array<[number, number, number, boolean]>
      /** [id, code, message]; code '' for a failure that is not a RelayError. */
      err: Array<[number, string, string]>
      /** [id, seconds to wait] */
      admits: Array<[number, number]>
    }
  | { t: 'listen'; host: string; port: number; retryMs: number }
  | { t: 'listen-fd'; fd: number }
  /** Stop accepting, close idle connections (answered with 'done'). */
  | { t: 'stop'; id: number }
  /** Wait up to graceMs for open connections, then close them (answered with 'done'). */
  | { t: 'close'; id: number; graceMs: number }
  /** Send what is pending now (answered with 'done' after the batch). */
  | { t: 'flush'; id: number }
