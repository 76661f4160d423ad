/**
 * Subscriber protocol v1 frames (DESIGN.md "Subscriber protocol v1").
 *
 * Event frames are built by concatenation from the journal record: the
 * stored JSON members (`fragment`) and the raw body are spliced in verbatim,
 * never re-serialized, and each event's frame is built once and shared by
 * every subscriber through `RecentFrames`.
 */
import type { StoredEvent } from '../journal/record.js'

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

/** Error codes carried by `{"type":"error"}` frames; see `docs` in the README. */
export type StreamErrorCode = 'cursor_ahead' | 'cursor_expired' | 'ack_ahead' | 'consumer_replaced'

export function errorFrame(code: StreamErrorCode, fields: Record<string, string | number> = {}): string {
  let s = `{"type":"error","code":"${code}"`
  for (const k in fields) s += `,${JSON.stringify(k)}:${JSON.stringify(fields[k])}`
  return `${s}}`
}

/**
 * Recently encoded event frames keyed by seq, bounded by count and bytes, so
 * that a live burst to N subscribers reads and encodes each event once.
 * Eviction is insertion order (FIFO): pumps read forward, so the oldest
 * frame is the one least likely to be asked for again.
 */
export class RecentFrames {
  #frames = new Map<number, EventFrame>()
  #bytes = 0
  readonly maxFrames: number
  readonly maxBytes: number

  constructor(maxFrames = 4096, maxBytes = 16 * 1024 * 1024) {
    this.maxFrames = maxFrames
    this.maxBytes = maxBytes
  }

  get(seq: number): EventFrame | undefined {
    return this.#frames.get(seq)
  }

  get size(): number {
    return this.#frames.size
  }

  get bytes(): number {
    return this.#bytes
  }

  add(f: EventFrame): void {
    if (this.#frames.has(f.seq)) return
    this.#frames.set(f.seq, f)
    this.#bytes += f.bytes.length
    while (this.#frames.size > this.maxFrames || (this.#bytes > this.maxBytes && this.#frames.size > 1)) {
      const oldest = this.#frames.keys().next().value as number
      this.#bytes -= this.#frames.get(oldest)!.bytes.length
      this.#frames.delete(oldest)
    }
  }

  clear(): void {
    this.#frames.clear()
    this.#bytes = 0
  }
}

/** At most this many globs in one `subscribe.events` (4400 past it). */
export const MAX_EVENT_GLOBS = 32
/** At most this many characters in one glob (4400 past it). */
export const MAX_GLOB_LENGTH = 128
/** Distinct event names whose answer a matcher remembers (a relay sees few). */
const MATCH_CACHE = 256

/**
 * Compiles event-name globs (`run.*`, `batch.?ailed`, `*`) into one test.
 * `*` matches any run of characters, `?` exactly one; everything else is
 * literal. Returns null for "every event".
 *
 * No regex: a glob like `*?*?*?…#` made a backtracking regex take seconds per
 * event name. Each glob is matched by `globMatch` (at most |glob|·|name|
 * steps), and each matcher remembers its answer for the last few hundred
 * distinct event names, so the cost is paid once per name per subscriber.
 *
 * @example
 *   eventMatcher(['run.*'])!('run.completed') // true
 */
export function eventMatcher(globs: readonly string[] | undefined): ((event: string) => boolean) | null {
  if (!globs || globs.length === 0 || globs.includes('*')) return null
  const exact = new Set<string>()
  const wild = new Set<string>()
  for (const g of globs) {
    if (g.includes('*') || g.includes('?')) wild.add(g.replace(/\*+/g, '*'))
    else exact.add(g)
  }
  const patterns = [...wild]
  const cache = new Map<string, boolean>()
  return (event) => {
    if (exact.has(event)) return true
    if (patterns.length === 0) return false
    let hit = cache.get(event)
    if (hit === undefined) {
      hit = patterns.some((p) => globMatch(p, event))
      if (cache.size >= MATCH_CACHE) cache.clear()
      cache.set(event, hit)
    }
    return hit
  }
}

/**
 * Whether `name` matches `glob` (`*` any run, `?` one UTF-16 unit, the rest
 * literal). Greedy with a single backtrack point, the last `*` seen: a later
 * `*` can absorb whatever an earlier one would have, so retrying earlier
 * stars is never needed and the work is at most |glob|·|name|.
 */
export function globMatch(glob: string, name: string): boolean {
  let g = 0
  let n = 0
  let star = -1
  let resume = 0
  while (n < name.length) {
    const c = glob.charCodeAt(g)
    if (c === 42 /* * */) {
      star = g++
      resume = n
    } else if (g < glob.length && (c === 63 /* ? */ || c === name.charCodeAt(n))) {
      g++
      n++
    } else if (star >= 0) {
      g = star + 1
      n = ++resume
    } else {
      return false
    }
  }
  while (glob.charCodeAt(g) === 42) g++
  return g === glob.length
}

/** A client frame, as parsed; validated field by field in the hub. */
export type ClientFrame =
  | { type: 'auth'; token: string }
  | {
      type: 'subscribe'
      after?: number | 'latest'
      sources?: string[]
      events?: string[]
      consumer?: string
      ack?: boolean
    }
  | { type: 'ack'; seq: number }

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
      const f: ClientFrame & { type: 'subscribe' } = { type: 'subscribe' }
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
