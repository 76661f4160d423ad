import { EventEmitter } from 'node:events'
import WebSocket from 'ws'
import type { AckFrame, ServerFrame, SubscribeFrame } from '../protocol/frames.js'
import { Backoff } from './backoff.js'
import { DeliveryQueue } from './delivery-queue.js'
import { fatalClose, fatalErrorFrame } from './fatal.js'
import { ClientError, type StreamEvent, type SubscribeOptions, type SubscriptionEvents } from './types.js'

const noop = (): void => undefined

/**
 * A running subscription to a relay's `/v1/stream`; see `subscribe()`.
 *
 * Delivery: events come in seq order; after a reconnect it resumes after the
 * last *processed* event and drops what it already handed out, so the
 * application sees each event once per process (at-least-once across
 * process restarts, through the consumer's stored acks).
 */
export class Subscription<Body = unknown> extends EventEmitter<SubscriptionEvents> implements AsyncIterable<StreamEvent<Body>> {
  /** Resolves when the subscription is closed; rejects with a `ClientError` when it stopped for good. */
  readonly done: Promise<void>
  #opts: SubscribeOptions<Body>
  #backoff: Backoff
  #ackEnabled: boolean
  #ws: WebSocket | undefined
  #reconnectTimer: NodeJS.Timeout | undefined
  #staleTimer: NodeJS.Timeout | undefined
  #lastSeen = 0
  #connects = 0
  #closing = false
  #finished = false
  #fatal: ClientError | undefined
  #fatalReported = false
  #resolveDone!: () => void
  #rejectDone!: (e: unknown) => void
  #closedWaiters: Array<() => void> = []

  #epoch: string | undefined
  /** Bumped when the epoch restarts, so in-flight work of the old epoch is not counted. */
  #generation = 0
  /** Last seq processed (handler resolved / iterator pulled the next). */
  #processed: number | undefined
  /** Last seq handed to the application. */
  #dispatched = -1
  /** Highest seq queued or handed out on this connection. */
  #highest = -1
  /** Highest seq known to be sent on the current connection (acks must not pass it). */
  #connReceived = 0
  #subscribedNow = false
  #lastAckSent = 0
  #ackScheduled = false

  #queue: DeliveryQueue<StreamEvent<Body>>
  #iterating = false
  #yielded: { event: StreamEvent<Body>; generation: number } | undefined
  #waiter: { resolve: (r: IteratorResult<StreamEvent<Body>>) => void; reject: (e: unknown) => void } | undefined
  #handlerRunning: Promise<void> | undefined

  constructor(opts: SubscribeOptions<Body>) {
    super()
    if (!opts.url || !opts.token) throw new ClientError('HOOKRELAY_CLIENT_USAGE', 'subscribe() needs url and token')
    this.#opts = opts
    this.#backoff = new Backoff(opts.backoff)
    this.#ackEnabled = opts.ack ?? opts.consumer !== undefined
    this.#queue = new DeliveryQueue(opts.highWater ?? 1000, { pause: () => this.#ws?.pause(), resume: () => this.#ws?.resume() })
    this.#epoch = opts.epoch
    if (typeof opts.after === 'number') {
      this.#processed = opts.after
      this.#dispatched = opts.after
      this.#highest = opts.after
    }
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve
      this.#rejectDone = reject
    })
    // `done` is for those who want it; an unobserved failure must not crash the process.
    this.done.catch(noop)
    if (opts.signal?.aborted) {
      queueMicrotask(() => void this.close())
      return
    }
    opts.signal?.addEventListener('abort', () => void this.close(), { once: true })
    this.#connect()
  }

  /** The last processed seq (persist it with `epoch` to resume without a consumer). */
  get lastProcessed(): number | undefined {
    return this.#processed
  }

  /** The journal epoch of the relay, once known. */
  get epoch(): string | undefined {
    return this.#epoch
  }

  /** True while a connection is open and subscribed. */
  get connected(): boolean {
    return this.#subscribedNow
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent<Body>> {
    if (this.#opts.handler) throw new ClientError('HOOKRELAY_CLIENT_USAGE', 'a subscription with a handler cannot also be iterated')
    if (this.#iterating) throw new ClientError('HOOKRELAY_CLIENT_USAGE', 'a subscription can be iterated once')
    this.#iterating = true
    return {
      next: () => this.#next(),
      return: async () => {
        await this.close()
        return { done: true, value: undefined }
      },
    }
  }

  /**
   * Stops: waits for a running handler, sends the last ack, closes the
   * socket with 1000. Idempotent; resolves when the socket is closed.
   */
  async close(): Promise<void> {
    if (this.#finished) return
    if (!this.#closing) {
      this.#closing = true
      clearTimeout(this.#reconnectTimer)
      if (this.#handlerRunning) await this.#handlerRunning
      this.#sendAck()
      const ws = this.#ws
      if (!ws) {
        this.#finish()
      } else if (ws.readyState === WebSocket.CONNECTING) {
        ws.terminate()
      } else {
        ws.close(1000, 'client closing')
        // A relay that no longer answers must not hold close() for ws's 30 s close timeout.
        setTimeout(() => ws.terminate(), 2000).unref()
      }
    }
    if (!this.#finished) await new Promise<void>((r) => this.#closedWaiters.push(r))
  }

  #connect(): void {
    if (this.#closing) return
    this.#connects++
    const ws = new WebSocket(this.#opts.url, {
      headers: { authorization: `Bearer ${this.#opts.token}` },
      handshakeTimeout: this.#opts.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false,
    })
    this.#ws = ws
    this.#subscribedNow = false
    let httpStatus: number | undefined
    let lastError: Error | undefined
    ws.on('open', () => this.#watchStale(ws))
    ws.on('message', (data) => {
      this.#lastSeen = Date.now()
      if (ws === this.#ws) this.#onFrame(ws, data as Buffer)
    })
    ws.on('ping', () => (this.#lastSeen = Date.now()))
    // A refused upgrade: its status decides whether reconnecting can help.
    ws.on('unexpected-response', (_req, res) => {
      httpStatus = res.statusCode
      lastError = new Error(`Unexpected server response: ${res.statusCode}`)
      res.resume()
      ws.terminate()
    })
    ws.on('error', (err) => {
      // After a refused upgrade, the error is only that of the terminate above.
      if (httpStatus === undefined) lastError = err
    })
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString(), httpStatus, lastError))
  }

  #watchStale(ws: WebSocket): void {
    const staleMs = this.#opts.staleAfterMs ?? 180_000
    this.#lastSeen = Date.now()
    if (staleMs <= 0) return
    clearInterval(this.#staleTimer)
    this.#staleTimer = setInterval(() => {
      if (Date.now() - this.#lastSeen > staleMs) ws.terminate()
    }, Math.max(50, staleMs / 4))
    this.#staleTimer.unref()
  }

  #onFrame(ws: WebSocket, data: Buffer): void {
    let v: unknown
    try {
      v = JSON.parse(data.toString('utf8'))
    } catch (cause) {
      this.#fail(new ClientError('HOOKRELAY_CLIENT_PROTOCOL', 'the relay sent a frame that is not JSON', { cause }))
      return
    }
    if (typeof v !== 'object' || v === null) {
      this.#fail(new ClientError('HOOKRELAY_CLIENT_PROTOCOL', 'the relay sent a frame that is not a JSON object'))
      return
    }
    // The relay speaks protocol v1; a frame type this client does not know is ignored below.
    const f = v as ServerFrame<Body>
    switch (f.type) {
      case 'event':
        this.#onEvent(f)
        return
      case 'welcome':
        this.#onWelcome(ws, f.epoch)
        return
      case 'subscribed': {
        const after = f.after
        this.#backoff.reset()
        this.#subscribedNow = true
        this.#connReceived = after
        this.#lastAckSent = after
        this.#processed ??= after
        this.#dispatched = Math.max(this.#dispatched, after)
        this.#highest = Math.max(this.#highest, this.#dispatched)
        this.emit('subscribed', { epoch: f.epoch, after, head: f.head, reconnects: this.#connects - 1 })
        this.#scheduleAck()
        return
      }
      case 'live':
        this.emit('live', f.seq)
        return
      case 'error':
        {
          const err = fatalErrorFrame(f)
          if (err) this.#fail(err)
        }
        return
      default:
        // Frames of later protocol versions are ignored.
        return
    }
  }

  #onWelcome(ws: WebSocket, epoch: string): void {
    if (this.#epoch !== undefined && this.#epoch !== epoch) {
      const previous = this.#epoch
      if ((this.#opts.onEpochChange ?? 'error') === 'error') {
        this.#fail(
          new ClientError(
            'HOOKRELAY_CLIENT_EPOCH_CHANGED',
            `the relay's journal was recreated (epoch ${previous} → ${epoch}): seqs start over; resubscribe from a known point or set onEpochChange: 'restart'`,
            { details: { previous, current: epoch } },
          ),
        )
        return
      }
      this.#generation++
      this.#processed = 0
      this.#dispatched = 0
      this.#highest = 0
      this.#dropQueue()
      this.#yielded = undefined
      this.#epoch = epoch
      this.emit('epoch', { previous, current: epoch })
    }
    this.#epoch = epoch
    const o = this.#opts
    const frame: SubscribeFrame = { type: 'subscribe' }
    if (this.#processed !== undefined) frame.after = this.#processed
    else if (o.after !== undefined) frame.after = o.after
    if (o.consumer !== undefined) frame.consumer = o.consumer
    if (o.sources !== undefined) frame.sources = o.sources
    if (o.events !== undefined) frame.events = o.events
    if (this.#ackEnabled) frame.ack = true
    ws.send(JSON.stringify(frame))
  }

  #onEvent(e: StreamEvent<Body>): void {
    if (e.seq > this.#connReceived) this.#connReceived = e.seq
    if (e.seq <= this.#highest) {
      // Already handed out before a reconnect: skip, but let the ack move.
      this.#scheduleAck()
      return
    }
    this.#highest = e.seq
    this.#queue.push(e)
    this.#deliver()
  }

  #shift(): StreamEvent<Body> | undefined {
    const e = this.#queue.shift()
    if (e !== undefined) this.#dispatched = e.seq
    return e
  }

  #dropQueue(): void {
    this.#queue.clear()
    this.#highest = this.#dispatched
  }

  #deliver(): void {
    if (this.#opts.handler) {
      if (!this.#handlerRunning) this.#handlerRunning = this.#runHandler().finally(() => (this.#handlerRunning = undefined))
      return
    }
    if (this.#waiter) {
      const e = this.#shift()
      if (e === undefined) return
      const w = this.#waiter
      this.#waiter = undefined
      this.#yielded = { event: e, generation: this.#generation }
      w.resolve({ value: e, done: false })
    }
  }

  async #runHandler(): Promise<void> {
    const handler = this.#opts.handler!
    for (;;) {
      if (this.#closing) return
      const e = this.#shift()
      if (e === undefined) return
      const generation = this.#generation
      try {
        await handler(e)
      } catch (cause) {
        this.#fail(
          new ClientError('HOOKRELAY_CLIENT_HANDLER_FAILED', `the handler failed on seq ${e.seq}; it was not acked`, {
            cause,
            details: { seq: e.seq },
          }),
        )
        return
      }
      if (generation === this.#generation) {
        this.#processed = e.seq
        this.#scheduleAck()
      }
    }
  }

  #next(): Promise<IteratorResult<StreamEvent<Body>>> {
    if (this.#yielded) {
      if (this.#yielded.generation === this.#generation) {
        this.#processed = this.#yielded.event.seq
        this.#scheduleAck()
      }
      this.#yielded = undefined
    }
    if (this.#fatal && !this.#fatalReported) {
      this.#fatalReported = true
      return Promise.reject(this.#fatal)
    }
    if (this.#closing) return Promise.resolve({ done: true, value: undefined })
    const e = this.#shift()
    if (e !== undefined) {
      this.#yielded = { event: e, generation: this.#generation }
      return Promise.resolve({ value: e, done: false })
    }
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }))
  }

  #scheduleAck(): void {
    if (!this.#ackEnabled || this.#ackScheduled) return
    this.#ackScheduled = true
    // One ack per event-loop turn, covering everything processed in it.
    setImmediate(() => {
      this.#ackScheduled = false
      this.#sendAck()
    })
  }

  #sendAck(): void {
    const ws = this.#ws
    if (!this.#ackEnabled || !ws || !this.#subscribedNow || ws.readyState !== WebSocket.OPEN) return
    const seq = Math.min(this.#processed ?? 0, this.#connReceived)
    if (seq <= this.#lastAckSent) return
    this.#lastAckSent = seq
    const ack: AckFrame = { type: 'ack', seq }
    ws.send(JSON.stringify(ack))
  }

  #onClose(ws: WebSocket, code: number, reason: string, httpStatus: number | undefined, lastError: Error | undefined): void {
    if (ws !== this.#ws) return
    this.#ws = undefined
    this.#subscribedNow = false
    clearInterval(this.#staleTimer)
    this.#dropQueue()
    if (this.#closing) {
      this.#finish()
      return
    }
    const fatal = fatalClose(code, reason, httpStatus, lastError)
    if (fatal) {
      this.#fail(fatal)
      return
    }
    const retryInMs = this.#backoff.next()
    this.emit('disconnected', { code, reason: reason || lastError?.message || '', retryInMs })
    this.#reconnectTimer = setTimeout(() => this.#connect(), retryInMs)
  }

  #fail(err: ClientError): void {
    if (this.#fatal || this.#finished) return
    this.#fatal = err
    this.#closing = true
    clearTimeout(this.#reconnectTimer)
    this.#rejectDone(err)
    if (this.#waiter) {
      this.#fatalReported = true
      this.#waiter.reject(err)
      this.#waiter = undefined
    }
    // What was processed stays processed: ack it on the way out.
    this.#sendAck()
    const ws = this.#ws
    if (ws) {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'client stopping')
      else ws.terminate()
      setTimeout(() => ws.terminate(), 2000).unref()
    } else {
      this.#finish()
    }
  }

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    clearTimeout(this.#reconnectTimer)
    clearInterval(this.#staleTimer)
    this.#resolveDone()
    if (this.#waiter) {
      this.#waiter.resolve({ done: true, value: undefined })
      this.#waiter = undefined
    }
    for (const w of this.#closedWaiters.splice(0)) w()
  }
}
