/**
 * WebSocket close codes of subscriber protocol v1, shared by the hub that
 * sends them and the client that decides from them whether to reconnect.
 */
export const CLOSE = {
  /** The relay is shutting down: reconnect with backoff and resume. */
  SHUTDOWN: 1001,
  /** A server error (e.g. a journal read failed): reconnect and resume. */
  INTERNAL: 1011,
  /** Accepted, but the address holds its share of authenticated connections: reconnect later. */
  TRY_AGAIN_LATER: 1013,
  /** Buffered amount past `stream.hard_limit`: reconnect and resume. */
  SLOW_CONSUMER: 4008,
  /** A frame the relay refuses (malformed, a wrong field, over a cap, an unknown source). */
  BAD_FRAME: 4400,
  /** No, a bad or a late auth; or the token was removed or replaced by a reload. */
  AUTH: 4401,
  /** A source the token may not read. */
  FORBIDDEN: 4403,
  /** Another connection of the same subscriber took over this consumer. */
  CONSUMER_REPLACED: 4409,
  /** Events after the cursor were pruned under a running subscription. */
  CURSOR_EXPIRED: 4410,
} as const

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE]
