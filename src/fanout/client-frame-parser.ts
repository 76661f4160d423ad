import type { ClientFrame, SubscribeFrame } from '../protocol/frames.js'
import { MAX_EVENT_GLOBS, MAX_GLOB_LENGTH } from './event-glob.js'

/** Why a client frame was refused; the hub closes with 4400 and this as the reason. */
export class BadFrame extends Error {
  override name = 'BadFrame'
}

/** Durable consumer names: short and plain, since they become stored keys and metric labels. */
const CONSUMER_RE = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * Parses and validates one client text frame.
 * @throws BadFrame with a short reason (it goes into the close frame, ≤ 123 bytes).
 */
export function parseClientFrame(text: string): ClientFrame {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw new BadFrame('malformed JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadFrame('a frame must be a JSON object')
  const o = v as Record<string, unknown>
  switch (o.type) {
    case 'auth':
      if (typeof o.token !== 'string') throw new BadFrame('auth.token must be a string')
      return { type: 'auth', token: o.token }
    case 'ack':
      if (!isSeq(o.seq)) throw new BadFrame('ack.seq must be a non-negative integer')
      return { type: 'ack', seq: o.seq }
    case 'subscribe': {
      const f: SubscribeFrame = { type: 'subscribe' }
      if (o.after !== undefined && o.after !== null) {
        if (o.after !== 'latest' && !isSeq(o.after)) throw new BadFrame('subscribe.after must be a non-negative integer or "latest"')
        f.after = o.after
      }
      if (o.sources !== undefined && o.sources !== null) f.sources = stringList(o.sources, 'subscribe.sources')
      if (o.events !== undefined && o.events !== null) {
        f.events = stringList(o.events, 'subscribe.events')
        if (f.events.length > MAX_EVENT_GLOBS) throw new BadFrame(`subscribe.events: at most ${MAX_EVENT_GLOBS} globs`)
        if (f.events.some((g) => g.length > MAX_GLOB_LENGTH)) throw new BadFrame(`subscribe.events: a glob is at most ${MAX_GLOB_LENGTH} characters`)
      }
      if (o.consumer !== undefined && o.consumer !== null) {
        if (typeof o.consumer !== 'string' || !CONSUMER_RE.test(o.consumer)) {
          throw new BadFrame('subscribe.consumer must be 1-64 of A-Z a-z 0-9 _ . -')
        }
        f.consumer = o.consumer
      }
      if (o.ack !== undefined && o.ack !== null) {
        if (typeof o.ack !== 'boolean') throw new BadFrame('subscribe.ack must be a boolean')
        f.ack = o.ack
      }
      return f
    }
    default:
      throw new BadFrame(`unknown frame type ${JSON.stringify(o.type)?.slice(0, 40) ?? 'undefined'}`)
  }
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function stringList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length > 256 || !v.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 256)) {
    throw new BadFrame(`${what} must be a list of non-empty strings`)
  }
  return v as string[]
}
