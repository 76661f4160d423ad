import type { StreamEvent } from '../protocol/frames.js'

export type { StreamEvent }

/** Backoff between reconnects: full jitter, `random(0, min(maxMs, initialMs * 2^attempt))`. */
export interface BackoffOptions {
  /** Default 250. */
  initialMs?: number
  /** Default 30000. */
  maxMs?: number
}

export interface SubscribeOptions<Body = unknown> {
  /** `ws://host:port/v1/stream` (or `wss://`). */
  url: string
  /** A subscriber token from the relay's config. */
  token: string
  /**
   * Deliver events with seq > after; `"latest"` for new events only. Omitted:
   * after the consumer's last ack when `consumer` is set, else latest.
   */
  after?: number | 'latest'
  /** The journal epoch `after` belongs to; a different epoch on connect is an epoch change. */
  epoch?: string
  /** Durable consumer name: the relay stores its acks and resumes it after them. */
  consumer?: string
  /** Only these sources (within what the token may read). */
  sources?: string[]
  /** Only events matching these globs, e.g. `run.*`. */
  events?: string[]
  /** Ack each event after it is processed; default true when `consumer` is set. */
  ack?: boolean
  /**
   * Handler mode: called for each event in order, one at a time; the event
   * counts as processed (and is acked) when the returned promise resolves.
   * A throw stops the subscription (`done` rejects); the event is not acked.
   */
  handler?: (event: StreamEvent<Body>) => unknown
  /** Aborting closes the subscription, like `close()`. */
  signal?: AbortSignal
  backoff?: BackoffOptions
  /**
   * What to do when the relay's journal epoch differs from the one this
   * subscription started in (the journal was recreated, seqs start over):
   * `error` (default) stops with `HOOKRELAY_CLIENT_EPOCH_CHANGED`; `restart`
   * emits `epoch` and continues from seq 0 of the new journal.
   */
  onEpochChange?: 'error' | 'restart'
  /** Events buffered client-side before the socket is paused (iterator mode). Default 1000. */
  highWater?: number
  /** Reconnect when nothing (not even a ping) arrived for this long. Default 180000; 0 disables. */
  staleAfterMs?: number
  /** Opening handshake timeout. Default 10000. */
  handshakeTimeoutMs?: number
}

/** Events a `Subscription` emits. */
export interface SubscriptionEvents {
  /** Subscribed (again): where this connection starts. */
  subscribed: [info: { epoch: string; after: number; head: number; reconnects: number }]
  /** Caught up with the relay's head (once per connection). */
  live: [seq: number]
  /** The connection ended; a reconnect follows after `retryInMs`. */
  disconnected: [info: { code: number; reason: string; retryInMs: number }]
  /** The journal was recreated (with `onEpochChange: 'restart'`). */
  epoch: [info: { previous: string; current: string }]
}

/** Error codes of `ClientError`. */
export type ClientErrorCode =
  | 'HOOKRELAY_CLIENT_UNAUTHORIZED'
  | 'HOOKRELAY_CLIENT_FORBIDDEN'
  | 'HOOKRELAY_CLIENT_PROTOCOL'
  | 'HOOKRELAY_CLIENT_CURSOR_AHEAD'
  | 'HOOKRELAY_CLIENT_CURSOR_EXPIRED'
  | 'HOOKRELAY_CLIENT_EPOCH_CHANGED'
  | 'HOOKRELAY_CLIENT_CONSUMER_REPLACED'
  | 'HOOKRELAY_CLIENT_HANDLER_FAILED'
  | 'HOOKRELAY_CLIENT_USAGE'

/** Why a subscription stopped for good (it reconnects on anything else). */
export class ClientError extends Error {
  readonly code: ClientErrorCode
  /** Extra facts, e.g. `{ earliest }` for a cursor_expired. */
  readonly details: Record<string, unknown>

  constructor(code: ClientErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'ClientError'
    this.code = code
    this.details = opts.details ?? {}
  }
}
