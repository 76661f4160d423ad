import { CLOSE } from '../protocol/close-codes.js'
import type { ErrorFrame } from '../protocol/frames.js'
import { ClientError } from './types.js'

/**
 * Which endings of a connection are final: reconnecting cannot help, so the
 * subscription stops with a `ClientError` instead of retrying forever.
 */

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE: Record<number, [ClientError['code'], string]> = {
  [CLOSE.BAD_FRAME]: ['HOOKRELAY_CLIENT_PROTOCOL', 'the relay refused a frame of this client'],
  [CLOSE.AUTH]: ['HOOKRELAY_CLIENT_UNAUTHORIZED', 'the relay refused the token'],
  [CLOSE.FORBIDDEN]: ['HOOKRELAY_CLIENT_FORBIDDEN', 'the token may not read a requested source'],
  [CLOSE.CONSUMER_REPLACED]: ['HOOKRELAY_CLIENT_CONSUMER_REPLACED', 'another connection took over this consumer'],
  [CLOSE.CURSOR_EXPIRED]: ['HOOKRELAY_CLIENT_CURSOR_EXPIRED', 'events after the cursor were pruned from the journal'],
}

/**
 * The error a connection's end means, or undefined when it is worth a
 * reconnect (1001, 1011, 1013, 4008, 1006, refused connections, 5xx, 408, 429).
 */
export function fatalClose(code: number, reason: string, httpStatus: number | undefined, cause: Error | undefined): ClientError | undefined {
  const fatal = FATAL_CLOSE[code]
  if (fatal) return new ClientError(fatal[0], `${fatal[1]} (close ${code}${reason ? `: ${reason}` : ''})`, { details: { code, reason } })
  if (httpStatus !== undefined && httpStatus >= 400 && httpStatus < 500 && httpStatus !== 408 && httpStatus !== 429) {
    const c = httpStatus === 401 ? 'HOOKRELAY_CLIENT_UNAUTHORIZED' : httpStatus === 403 ? 'HOOKRELAY_CLIENT_FORBIDDEN' : 'HOOKRELAY_CLIENT_PROTOCOL'
    return new ClientError(c, `the relay refused the connection with HTTP ${httpStatus}`, { cause, details: { status: httpStatus } })
  }
  return undefined
}

/** The error an `error` frame means, or undefined when it is informational. */
export function fatalErrorFrame(f: ErrorFrame): ClientError | undefined {
  switch (f.code) {
    case 'cursor_ahead':
      return new ClientError(
        'HOOKRELAY_CLIENT_CURSOR_AHEAD',
        `the cursor is ahead of the relay's head ${String(f.head)}: is this the right relay (or was its journal replaced)?`,
        { details: { ...f } },
      )
    case 'cursor_expired':
      return new ClientError(
        'HOOKRELAY_CLIENT_CURSOR_EXPIRED',
        `events after the cursor were pruned; the earliest kept is ${String(f.earliest)}: resubscribe with after: ${Number(f.earliest) - 1} to continue (events in between are lost)`,
        { details: { ...f } },
      )
    case 'consumer_replaced':
      return new ClientError('HOOKRELAY_CLIENT_CONSUMER_REPLACED', 'another connection took over this consumer', { details: { ...f } })
    default:
      // ack_ahead cannot happen with this client (acks are clamped to what the connection sent).
      return undefined
  }
}
