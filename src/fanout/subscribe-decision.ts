import { canRead, type Principal } from '../http/auth.js'
import { CLOSE } from '../protocol/close-codes.js'
import type { SubscribeFrame } from '../protocol/frames.js'

/**
 * Durable consumers one subscriber (token) may create. Each keeps its acked
 * position in the journal, and the lowest one holds retention back, so an
 * unbounded number is a way to pin the journal.
 */
export const MAX_CONSUMERS_PER_SUBSCRIBER = 100

/** What the hub knows about the consumer a `subscribe` names. */
export type ConsumerLookup =
  | {
      /** Where it resumes when `after` is omitted: its latest ack, else 0. */
      position: number
      /** Connected, or with an ack in memory or stored. */
      known: true
    }
  | {
      position: number
      known: false
      /** Durable consumers its subscriber already has (stored, pending or connected). */
      subscriberConsumers: number
    }

export interface SubscribeInput {
  frame: SubscribeFrame
  principal: Principal
  /** Whether a source of that name is configured. */
  isSource: (source: string) => boolean
  journal: { head: number; earliest: number }
  /** Present when the frame names a consumer. */
  consumer?: ConsumerLookup
}

export type SubscribeDecision =
  /** Refused for good: close with this code and reason (≤ 123 bytes). */
  | { kind: 'close'; code: typeof CLOSE.BAD_FRAME | typeof CLOSE.FORBIDDEN; reason: string }
  /** Refused, the connection stays open for another `subscribe`. */
  | { kind: 'error'; code: 'cursor_ahead'; head: number; after: number }
  | { kind: 'error'; code: 'cursor_expired'; earliest: number; after: number }
  | {
      kind: 'start'
      /** Deliver `seq > after`. */
      after: number
      /** The consumer's key, `<subscriber>/<consumer>`. */
      consumer: string | undefined
      ack: boolean
      /** Within what the token may read; null: whatever the token may read. */
      sources: ReadonlySet<string> | null
      /** No sources or `*` asked for: the sources follow the token's across reloads. */
      followsToken: boolean
      events: readonly string[] | undefined
    }

/** Consumers are namespaced by subscriber, so two tokens' `billing` are two consumers. */
export function consumerKey(subscriber: string, consumer: string): string {
  return `${subscriber}/${consumer}`
}

/**
 * What a `subscribe` frame gets, decided from what the hub knows at that
 * moment; the hub carries it out. Checked in this order: sources the token
 * may not read (4403, before existence, so a token does not learn which
 * sources it cannot see exist), sources not configured (4400), a new consumer
 * past MAX_CONSUMERS_PER_SUBSCRIBER (4400), then the cursor: `after: N`,
 * `"latest"`, or omitted (the consumer's position, else latest), against the
 * journal's head and earliest.
 *
 * @example
 *   decideSubscribe({ frame: { type: 'subscribe', after: 'latest' }, principal, isSource, journal: { head: 9, earliest: 1 } })
 *   // { kind: 'start', after: 9, consumer: undefined, ack: false, sources: principal.sources, followsToken: true, events: undefined }
 */
export function decideSubscribe(input: SubscribeInput): SubscribeDecision {
  const { frame: f, principal, journal } = input
  let sources: ReadonlySet<string> | null = principal.sources
  const followsToken = f.sources === undefined || f.sources.includes('*')
  if (f.sources !== undefined) {
    if (!followsToken) {
      const forbidden = f.sources.find((s) => !canRead(principal, s))
      if (forbidden !== undefined) return { kind: 'close', code: CLOSE.FORBIDDEN, reason: `this token may not read source ${forbidden.slice(0, 64)}` }
      sources = new Set(f.sources)
    }
    const unknown = f.sources.find((s) => s !== '*' && !input.isSource(s))
    if (unknown !== undefined) return { kind: 'close', code: CLOSE.BAD_FRAME, reason: `no source named ${unknown.slice(0, 64)} is configured` }
  }
  const c = input.consumer
  if (f.consumer !== undefined && c !== undefined && !c.known && c.subscriberConsumers >= MAX_CONSUMERS_PER_SUBSCRIBER) {
    return { kind: 'close', code: CLOSE.BAD_FRAME, reason: `subscriber ${principal.name} has ${MAX_CONSUMERS_PER_SUBSCRIBER} durable consumers: reuse one` }
  }
  const head = journal.head
  let after: number
  if (f.after === 'latest') after = head
  else if (f.after !== undefined) after = f.after
  else if (f.consumer !== undefined && c !== undefined) after = c.position
  else after = head
  if (after > head) return { kind: 'error', code: 'cursor_ahead', head, after }
  if (after < journal.earliest - 1) return { kind: 'error', code: 'cursor_expired', earliest: journal.earliest, after }
  return {
    kind: 'start',
    after,
    consumer: f.consumer === undefined ? undefined : consumerKey(principal.name, f.consumer),
    ack: f.ack === true,
    sources,
    followsToken,
    events: f.events,
  }
}
