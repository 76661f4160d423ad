/**
 * `hookrelay/client`: subscribe to a relay's `/v1/stream` from Node.
 *
 * Reconnects with exponential backoff and full jitter, resumes after the last
 * processed event, acks after processing (for durable consumers), and
 * surfaces a journal epoch change.
 *
 * @example
 *   import { subscribe } from 'hookrelay/client'
 *
 *   // Async iterator: an event counts as processed when the loop asks for the next one.
 *   const sub = subscribe({ url: 'ws://127.0.0.1:8080/v1/stream', token, consumer: 'billing', events: ['run.*'] })
 *   for await (const e of sub) {
 *     await saveRun(e.key, e.body)
 *   }
 *
 *   // Or a handler: an event counts as processed (and is acked) when it resolves.
 *   const sub2 = subscribe({ url, token, consumer: 'mailer', handler: async (e) => sendMail(e.body) })
 *   process.on('SIGTERM', () => void sub2.close())
 *   await sub2.done
 */
import { Subscription } from './subscription.js'
import type { SubscribeOptions } from './types.js'

export { Subscription } from './subscription.js'
export { Backoff } from './backoff.js'
export {
  ClientError,
  type BackoffOptions,
  type ClientErrorCode,
  type StreamEvent,
  type SubscribeOptions,
  type SubscriptionEvents,
} from './types.js'

/** Starts a subscription; see `SubscribeOptions` and the module example. */
export function subscribe<Body = unknown>(opts: SubscribeOptions<Body>): Subscription<Body> {
  return new Subscription<Body>(opts)
}
