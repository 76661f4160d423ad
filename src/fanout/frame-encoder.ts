/**
 * Server frames of subscriber protocol v1, encoded as text.
 *
 * Event frames are built by concatenation from the journal record: the
 * stored JSON members (`fragment`) and the raw body are spliced in verbatim,
 * never re-serialized, and each event's frame is built once and shared by
 * every subscriber through `RecentFrames`.
 */
import type { StoredEvent } from '../journal/record.js'
import type { ErrorFrame, StreamErrorCode } from '../protocol/frames.js'

/** One encoded event, with what a subscriber's filter needs to look at. */
export interface EventFrame {
  seq: number
  source: string
  event: string
  /** The complete `{"type":"event",...}` text frame, UTF-8. */
  bytes: Buffer
}

const EVENT_HEAD = Buffer.from('{"type":"event","seq":')
const BODY_HEAD = Buffer.from(',"body":')
const CLOSE_BRACE = Buffer.from('}')
const COMMA = Buffer.from(',')

/**
 * `{"type":"event","seq":N,<fragment>,"body":<body>}` in one allocation.
 *
 * @example
 *   encodeEventFrame(journal.get(42)!).bytes.toString()
 *   // '{"type":"event","seq":42,"source":"runflow",...,"body":{"event":"run.completed",...}}'
 */
export function encodeEventFrame(e: StoredEvent): EventFrame {
  const seq = Buffer.from(String(e.seq))
  const bytes = Buffer.concat(
    [EVENT_HEAD, seq, COMMA, e.fragment, BODY_HEAD, e.body, CLOSE_BRACE],
    EVENT_HEAD.length + seq.length + 1 + e.fragment.length + BODY_HEAD.length + e.body.length + 1,
  )
  return { seq: e.seq, source: e.source, event: e.event, bytes }
}

export function welcomeFrame(epoch: string, head: number): string {
  return `{"type":"welcome","epoch":${JSON.stringify(epoch)},"head":${head}}`
}

export function subscribedFrame(epoch: string, after: number, head: number): string {
  return `{"type":"subscribed","epoch":${JSON.stringify(epoch)},"after":${after},"head":${head}}`
}

export function liveFrame(seq: number): string {
  return `{"type":"live","seq":${seq}}`
}

/** `{"type":"error","code":...}` with `fields` in the order given. */
export function errorFrame(code: StreamErrorCode, fields: Omit<ErrorFrame, 'type' | 'code'> = {}): string {
  let s = `{"type":"error","code":"${code}"`
  for (const [k, v] of Object.entries(fields)) s += `,${JSON.stringify(k)}:${JSON.stringify(v)}`
  return `${s}}`
}

