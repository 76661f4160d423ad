import { canRead, type Principal } from '../http/auth.js'
import type { WebSocket } from '../http/uws.js'
import { CLOSE } from '../protocol/close-codes.js'
import { errorFrame, liveFrame, type EventFrame } from './frame-encoder.js'

/** What uWS keeps per socket (`ws.getUserData()`). */
export interface SocketData {
  sub: Subscriber
}

/** What a subscriber's pump needs from the hub. */
export interface PumpContext {
  head(): number
  /**
   * Up to `limit` consecutive frames from `after + 1` (fewer near the head),
   * or null when `after + 1` is no longer in the journal. A promise when
   * the frames must be read from the journal first.
   */
  page(after: number, limit: number): EventFrame[] | null | Promise<EventFrame[] | null>
  earliest(): number
  highWater: number
  hardLimit: number
  maxInflight: number
  /** Called when the pump stopped with work left (budget spent): run it again soon. */
  reschedule(sub: Subscriber): void
  /** Called when a page it waited for has arrived: run the pump now. */
  resume(sub: Subscriber): void
  /** A journal read for the pump failed. */
  readFailed(sub: Subscriber, err: unknown): void
  /** Counts what one pump run sent. */
  sent(frames: number, bytes: number): void
  /** The pump passed events its filter skips while everything sent is acked. */
  skipped(sub: Subscriber): void
  slowConsumer(sub: Subscriber): void
}

/** Events looked at per pump run before yielding the event loop to others. */
const PUMP_BUDGET = 2048
/** Bytes of frames a page fetched for one subscriber aims at. */
const PAGE_BYTES = 256 * 1024
const PAGE_MAX = 512

export type SubscriberState = 'auth' | 'ready' | 'subscribed' | 'closed'

/** What a `subscribe` set up, as `Subscriber.start` takes it. */
export interface SubscriptionSpec {
  /** The durable consumer's key, namespaced by subscriber: `<subscriber name>/<consumer>`. */
  consumer?: string
  ack: boolean
  /** Sources selected (already within what the token may read); null = all the token may read. */
  sources: ReadonlySet<string> | null
  /** The subscription asked for no sources or `*`: `sources` follows the token's across reloads. */
  followsToken?: boolean
  matchEvent: ((event: string) => boolean) | null
}

/**
 * One connected subscriber: its principal, its subscription and its pump.
 *
 * The pump reads the journal (through the hub's shared frame cache) from the
 * subscriber's cursor and sends while uWS's buffered amount for the socket is
 * under `high_water`; it stops and waits for `drain`, an ack (when
 * `max_inflight` is reached) or a commit (at the head). It never buffers more
 * than one page beyond what uWS holds, so a stalled subscriber costs the
 * server at most `high_water` + one frame + one page.
 */
export class Subscriber {
  readonly id: number
  readonly ip: string
  #ws: WebSocket<SocketData> | undefined
  #principal: Principal | undefined
  /** The token it authenticated with, re-checked on config reload. */
  #token: string | undefined
  #state: SubscriberState
  #authTimer: NodeJS.Timeout | undefined

  #consumer: string | undefined
  #ack = false
  #sources: ReadonlySet<string> | null = null
  #followsToken = false
  #matchEvent: ((event: string) => boolean) | null = null
  /** Last seq the pump looked at (sent or filtered out). */
  #cursor = 0
  /** Last seq sent. */
  #lastSent = 0
  /** Last seq acked (starts at the subscription's `after`). */
  #acked = 0
  #liveSent = false
  #waitingDrain = false
  #scheduled = false
  /** A page is being read from the journal; the pump waits for it. */
  #loading = false

  /** Sent, unacked seqs (only with `ack: true`), oldest first, from index #inflightStart. */
  #inflight: number[] = []
  #inflightStart = 0
  /** Frames fetched but not yet sent (the rest of the last page). */
  #page: EventFrame[] = []
  #pageIdx = 0
  /** Average frame size seen, sizing pages to about PAGE_BYTES; the first page is small (32) in case bodies are big. */
  #avgFrame = PAGE_BYTES / 32

  /** `principal` and `token` when the upgrade carried a valid `Authorization` header. */
  constructor(id: number, ip: string, principal: Principal | undefined, token?: string) {
    this.id = id
    this.ip = ip
    this.#principal = principal
    this.#token = token
    this.#state = principal ? 'ready' : 'auth'
  }

  get ws(): WebSocket<SocketData> | undefined {
    return this.#ws
  }

  get principal(): Principal | undefined {
    return this.#principal
  }

  get token(): string | undefined {
    return this.#token
  }

  get state(): SubscriberState {
    return this.#state
  }

  get consumer(): string | undefined {
    return this.#consumer
  }

  get ack(): boolean {
    return this.#ack
  }

  get sources(): ReadonlySet<string> | null {
    return this.#sources
  }

  get followsToken(): boolean {
    return this.#followsToken
  }

  get cursor(): number {
    return this.#cursor
  }

  get lastSent(): number {
    return this.#lastSent
  }

  get acked(): number {
    return this.#acked
  }

  /** Stopped at `high_water`, waiting for uWS's `drain`. */
  get waitingDrain(): boolean {
    return this.#waitingDrain
  }

  /** The socket opened (uWS `open`). */
  attach(ws: WebSocket<SocketData>): void {
    this.#ws = ws
  }

  /** Without a header token: close 4401 unless `authenticate` comes within `ms`. */
  awaitAuth(ms: number, reason: string): void {
    this.#authTimer = setTimeout(() => {
      if (this.#state === 'auth') this.#ws?.end(CLOSE.AUTH, reason)
    }, ms)
    this.#authTimer.unref()
  }

  /** Authenticated (header or auth frame): ready for `subscribe`. */
  authenticate(principal: Principal, token: string | undefined): void {
    clearTimeout(this.#authTimer)
    this.#principal = principal
    this.#token = token
    this.#state = 'ready'
  }

  /**
   * After a config reload found the token still configured for `principal`:
   * a subscription that follows the token takes its new sources; one that
   * named sources returns the first it may no longer read.
   */
  reauthorize(principal: Principal): string | undefined {
    this.#principal = principal
    if (this.#state !== 'subscribed') return undefined
    if (this.#followsToken) {
      this.#sources = principal.sources
      return undefined
    }
    return [...(this.#sources ?? [])].find((s) => !canRead(principal, s))
  }

  /** The socket closed (uWS `close`). */
  detach(): void {
    this.#state = 'closed'
    this.#ws = undefined
    clearTimeout(this.#authTimer)
  }

  /** Ends the connection unless it is already closed. */
  end(code: number, reason: string): void {
    if (this.#state !== 'closed') this.#ws?.end(code, reason)
  }

  /** uWS drained the socket: true when a pump stopped at `high_water` can run again. */
  drain(highWater: number): boolean {
    const ws = this.#ws
    if (!this.#waitingDrain || ws === undefined || ws.getBufferedAmount() >= highWater) return false
    this.#waitingDrain = false
    return true
  }

  /** Marks a pump run as queued; false when one already is. */
  schedule(): boolean {
    if (this.#scheduled) return false
    this.#scheduled = true
    return true
  }

  get inflight(): number {
    return this.#inflight.length - this.#inflightStart
  }

  /** Sets up a subscription starting after `after`. */
  start(after: number, spec: SubscriptionSpec): void {
    this.#state = 'subscribed'
    this.#cursor = after
    this.#lastSent = after
    this.#acked = after
    this.#consumer = spec.consumer
    this.#ack = spec.ack
    this.#sources = spec.sources
    this.#followsToken = spec.followsToken ?? spec.sources === null
    this.#matchEvent = spec.matchEvent
  }

  matches(f: EventFrame): boolean {
    return (this.#sources === null || this.#sources.has(f.source)) && (this.#matchEvent === null || this.#matchEvent(f.event))
  }

  /**
   * Applies a cumulative ack.
   * @returns 'ahead' when it acks past what was sent, 'stale' when it adds nothing, else 'ok'.
   */
  applyAck(seq: number): 'ok' | 'ahead' | 'stale' {
    if (seq > this.#lastSent) return 'ahead'
    if (seq <= this.#acked) return 'stale'
    this.#acked = seq
    const q = this.#inflight
    let i = this.#inflightStart
    while (i < q.length && q[i]! <= seq) i++
    if (i === q.length) {
      this.#inflight = []
      this.#inflightStart = 0
    } else if (i > 1024 && i > q.length / 2) {
      this.#inflight = q.slice(i)
      this.#inflightStart = 0
    } else {
      this.#inflightStart = i
    }
    return 'ok'
  }

  /** True when the pump can make progress if run now. */
  get runnable(): boolean {
    return this.#state === 'subscribed' && !this.#waitingDrain && !this.#scheduled && !this.#loading
  }

  /** Sends what it can; see the class doc. */
  pump(ctx: PumpContext): void {
    this.#scheduled = false
    const ws = this.#ws
    if (this.#state !== 'subscribed' || ws === undefined || this.#loading) return
    let budget = PUMP_BUDGET
    let frames = 0
    let bytes = 0
    let expired = false
    let slow = false
    ws.cork(() => {
      for (;;) {
        if (ws.getBufferedAmount() >= ctx.highWater) {
          this.#waitingDrain = true
          return
        }
        if (this.#ack && this.inflight >= ctx.maxInflight) return
        if (this.#pageIdx >= this.#page.length) {
          if (this.#cursor >= ctx.head()) {
            if (!this.#liveSent) {
              this.#liveSent = true
              ws.send(liveFrame(this.#cursor))
            }
            return
          }
          if (budget <= 0) {
            ctx.reschedule(this)
            return
          }
          const limit = Math.max(1, Math.min(PAGE_MAX, Math.floor(PAGE_BYTES / this.#avgFrame)))
          const page = ctx.page(this.#cursor, limit)
          if (page instanceof Promise) {
            this.#load(page, ctx)
            return
          }
          if (page === null) {
            expired = true
            return
          }
          this.#setPage(page)
        }
        const f = this.#page[this.#pageIdx++]!
        budget--
        this.#cursor = f.seq
        if (!this.matches(f)) continue
        const before = ws.getBufferedAmount()
        const status = ws.send(f.bytes, false, false)
        frames++
        bytes += f.bytes.length
        this.#lastSent = f.seq
        if (this.#ack) this.#inflight.push(f.seq)
        // 2 = uWS dropped the frame (maxBackpressure): the stream has a hole, so it must end here.
        // A single frame larger than the limit into an empty buffer is let through.
        if (status === 2 || (before > 0 && ws.getBufferedAmount() > ctx.hardLimit)) {
          slow = true
          return
        }
      }
    })
    if (this.#pageIdx >= this.#page.length && this.#page.length > 0) {
      this.#page = []
      this.#pageIdx = 0
    }
    if (frames > 0) ctx.sent(frames, bytes)
    if (this.#consumer !== undefined && this.#acked >= this.#lastSent && this.#cursor > this.#acked) ctx.skipped(this)
    if (expired) {
      this.#expire(ctx)
    } else if (slow) {
      ctx.slowConsumer(this)
    }
  }

  #setPage(page: EventFrame[]): void {
    this.#page = page
    this.#pageIdx = 0
    let total = 0
    for (const f of page) total += f.bytes.length
    if (page.length > 0) this.#avgFrame = Math.max(64, Math.ceil(total / page.length))
  }

  /** Waits for a page read from the journal; the cursor stays where it was meanwhile. */
  #load(pending: Promise<EventFrame[] | null>, ctx: PumpContext): void {
    this.#loading = true
    pending.then(
      (page) => {
        this.#loading = false
        if (this.#state !== 'subscribed' || this.#ws === undefined) return
        if (page === null) {
          this.#expire(ctx)
          return
        }
        this.#setPage(page)
        ctx.resume(this)
      },
      (err: unknown) => {
        this.#loading = false
        if (this.#state === 'subscribed') ctx.readFailed(this, err)
      },
    )
  }

  #expire(ctx: PumpContext): void {
    const ws = this.#ws!
    ws.send(errorFrame('cursor_expired', { earliest: ctx.earliest() }))
    ws.end(CLOSE.CURSOR_EXPIRED, 'cursor expired: events were pruned')
  }
}
