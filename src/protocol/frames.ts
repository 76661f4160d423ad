/**
 * The frames of subscriber protocol v1 (JSON text frames over `/v1/stream`),
 * as the hub sends and parses them and as the client reads and writes them.
 */

/** One journaled event as a subscriber receives it (the `event` frame without its `type`). */
export interface StreamEvent<Body = unknown> {
  /** Journal position: gapless, increasing, unique within an epoch. */
  seq: number
  /** Source name from the relay's config, e.g. `runflow`. */
  source: string
  /** Event name, e.g. `run.completed`. */
  event: string
  /** Idempotency key (Runflow: `run_id` / `batch_id`). */
  key: string
  /** 1 for the first body seen for this key, +1 for each different body after. */
  revision: number
  /** ISO 8601 time the relay received it. */
  received_at: string
  /** The sender's JSON body, as sent. */
  body: Body
}

/** Codes carried by `{"type":"error"}` frames. */
export type StreamErrorCode = 'cursor_ahead' | 'cursor_expired' | 'ack_ahead' | 'consumer_replaced'

export interface WelcomeFrame {
  type: 'welcome'
  epoch: string
  head: number
}

export interface SubscribedFrame {
  type: 'subscribed'
  epoch: string
  after: number
  head: number
}

export type EventFrameMessage<Body = unknown> = { type: 'event' } & StreamEvent<Body>

export interface LiveFrame {
  type: 'live'
  seq: number
}

/**
 * `cursor_ahead`: `head`, `after`; `cursor_expired`: `earliest` (and `after`
 * on subscribe); `ack_ahead`: `seq`, `delivered`; `consumer_replaced`: none.
 */
export interface ErrorFrame {
  type: 'error'
  code: StreamErrorCode
  head?: number
  after?: number
  earliest?: number
  seq?: number
  delivered?: number
}

/** Server → client. */
export type ServerFrame<Body = unknown> = WelcomeFrame | SubscribedFrame | EventFrameMessage<Body> | LiveFrame | ErrorFrame

export interface AuthFrame {
  type: 'auth'
  token: string
}

export interface SubscribeFrame {
  type: 'subscribe'
  /** Deliver `seq > after`; `"latest"`: new events only; omitted: the consumer's ack, else latest. */
  after?: number | 'latest'
  sources?: string[]
  events?: string[]
  consumer?: string
  ack?: boolean
}

export interface AckFrame {
  type: 'ack'
  seq: number
}

/** Client → server. */
export type ClientFrame = AuthFrame | SubscribeFrame | AckFrame
