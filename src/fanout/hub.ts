/**
 * `/v1/stream`: the fan-out hub (README "Live stream"; frames and close codes in src/protocol).
 *
 * Protocol errors, as this hub answers them:
 * - upgrade with a bad `Authorization` header: HTTP 401, never 101; relay
 *   closing: HTTP 503.
 * - connections per address: authenticated ones count against
 *   `stream.max_connections_per_ip` (over it, HTTP 429 on the upgrade, or
 *   close 1013 when an auth frame would pass it); ones still in the auth
 *   window count only against MAX_UNAUTHENTICATED_PER_ADDRESS and
 *   MAX_UNAUTHENTICATED (HTTP 429; see connection-limits.ts), so sockets that never authenticate cannot
 *   lock subscribers with a token out.
 * - no `Authorization` header: the first frame must be `{"type":"auth"}`
 *   within 5 s, else close 4401 (also for a bad token or another frame first).
 * - malformed JSON, a binary frame, an unknown frame type, a field of the
 *   wrong type, a second `subscribe`, an `ack` before `subscribe`, a second
 *   `auth`: close 4400 with the reason as the close message.
 * - a frame over `stream.max_payload`: uWS closes the connection (1006 or 1009).
 * - subscribing to a source the token may not read: close 4403; to a source
 *   that is not configured: close 4400.
 * - `subscribe.events` over MAX_EVENT_GLOBS globs or a glob over
 *   MAX_GLOB_LENGTH characters, a `consumer` name not 1-64 of
 *   `A-Za-z0-9._-`, or a new consumer past MAX_CONSUMERS_PER_SUBSCRIBER for
 *   the token's subscriber: close 4400.
 * - a config reload that removes the connection's subscriber: close 4401;
 *   one that takes away a source the subscription named: close 4403. A
 *   subscription that named no sources (or `*`) follows the subscriber's
 *   sources instead. Replacing a subscriber's token in place keeps its open
 *   connections (README "Reloading the config": connected subscribers stay).
 * - `cursor_ahead` / `cursor_expired` on `subscribe`: an error frame; the
 *   connection stays open and may `subscribe` again (e.g. with `"latest"`).
 * - events pruned under a running subscription: `cursor_expired` and close 4410.
 * - an ack past the last seq sent: an `ack_ahead` error frame; the ack is ignored.
 * - a second connection of the same subscriber (token) with the same
 *   `consumer` takes it over: the older one gets `consumer_replaced` and close
 *   4409. Consumers are namespaced by subscriber name (`<subscriber>/<consumer>`
 *   in memory, in the journal's cursors and in the lag metric's label), so
 *   another token's `consumer: "billing"` is a different consumer.
 * - buffered amount past `stream.hard_limit`: close 4008 (reconnect and resume).
 * - shutdown: close 1001.
 */
import { bearerToken } from '../http/auth.js'
import { sendError } from '../http/respond.js'
import type { HttpRequest, HttpResponse, WebSocket } from '../http/uws.js'
import { CLOSE } from '../protocol/close-codes.js'
import type { ClientFrame, SubscribeFrame } from '../protocol/frames.js'
import { MAX_BODY_CEILING } from '../config/schema.js'
import type { Component, Extension, RelayHost } from '../extension.js'
import { BadFrame, parseClientFrame } from './client-frame-parser.js'
import { ConnectionLimits } from './connection-limits.js'
import { ConsumerCursors } from './consumer-cursors.js'
import { eventMatcher } from './event-glob.js'
import { errorFrame, subscribedFrame, welcomeFrame } from './frame-encoder.js'
import { peerAddress } from './peer-address.js'
import { RecentFrames } from './recent-frames.js'
import { SharedFrames } from './shared-frames.js'
import { StreamMetrics } from './stream-metrics.js'
import { registerConsumersApi } from './consumers-api.js'
import { consumerKey, decideSubscribe, type ConsumerLookup } from './subscribe-decision.js'
import { Subscriber, type PumpContext, type SocketData } from './subscriber.js'

/** uWS's socket context handed to `res.upgrade` (not re-exported by http/uws.ts). */
type UpgradeContext = Parameters<HttpResponse['upgrade']>[4]

export const STREAM_PATH = '/v1/stream'

export interface HubOptions {
  /** How long a connection without an `Authorization` header has to send its auth frame. Default 5000. */
  authTimeoutMs?: number
  /** uWS idle timeout in seconds (pings are sent automatically before it). Default 120. */
  idleTimeoutSec?: number
  /** At most one ack write per this many ms. Default 1000. */
  ackFlushMs?: number
}

/**
 * The relay extension that serves `/v1/stream`.
 *
 * @example
 *   const relay = await Relay.start(config, { extensions: [fanoutExtension()] })
 */
export function fanoutExtension(opts: HubOptions = {}): Extension {
  return (host) => new Hub(host, opts)
}

/** One per relay: owns the subscribers, the shared frame cache and the consumers' acks. */
export class Hub implements Component {
  readonly name = 'hub'
  readonly frames = new RecentFrames()
  readonly cursors: ConsumerCursors
  readonly metrics: StreamMetrics
  #host: RelayHost
  #subs = new Set<Subscriber>()
  #byConsumer = new Map<string, Subscriber>()
  #limits: ConnectionLimits
  #nextId = 1
  #closing = false
  /** Connections whose durable consumer is being looked up before their subscription starts. */
  #subscribing = new WeakSet<Subscriber>()
  #closed: Promise<void> | undefined
  #stopCommits: () => void
  #stopReload: () => void
  #authTimeoutMs: number
  #ctx: PumpContext
  #shared: SharedFrames

  constructor(host: RelayHost, opts: HubOptions = {}) {
    this.#host = host
    const { journal, config } = host
    const stream = config.stream
    this.#authTimeoutMs = opts.authTimeoutMs ?? 5000
    this.#limits = new ConnectionLimits(() => host.config.stream.max_connections_per_ip)
    this.cursors = new ConsumerCursors(journal, host.log, opts.ackFlushMs ?? 1000)
    this.metrics = new StreamMetrics(host.registry, {
      lags: () => this.#lags(),
      buffered: () => {
        let n = 0
        for (const s of this.#subs) if (s.ws && s.state !== 'closed') n += s.ws.getBufferedAmount()
        return n
      },
    })
    const frames = new SharedFrames(journal, this.frames)
    this.#shared = frames
    this.#ctx = {
      head: () => journal.head,
      earliest: () => journal.earliest,
      page: (after, limit) => frames.page(after, limit),
      highWater: stream.high_water,
      hardLimit: stream.hard_limit,
      maxInflight: stream.max_inflight,
      reschedule: (sub) => this.#schedule(sub),
      resume: (sub) => this.#pump(sub),
      readFailed: (sub, err) => this.#pumpFailed(sub, err),
      sent: (n, bytes) => {
        this.metrics.framesSent.inc(n)
        this.metrics.bytesSent.inc(bytes)
      },
      // Only the connection holding the consumer moves its position.
      skipped: (sub) => {
        if (sub.consumer !== undefined && this.#byConsumer.get(sub.consumer) === sub) this.cursors.record(sub.consumer, sub.cursor)
      },
      slowConsumer: (sub) => {
        this.metrics.slowConsumerCloses.inc()
        host.log.info({ subscriber: sub.principal?.name, consumer: sub.consumer, ip: sub.ip }, 'slow subscriber closed (4008)')
        sub.end(CLOSE.SLOW_CONSUMER, 'slow consumer: reconnect and resume')
      },
    }

    this.#stopCommits = journal.onCommit(() => {
      for (const sub of this.#subs) if (sub.runnable) this.#pump(sub)
    })
    this.#stopReload = host.onReload(() => this.#reauthorize())
    registerConsumersApi(host, {
      list: () => this.cursors.list(),
      connected: () => this.#byConsumer.keys(),
      forget: (name) => this.cursors.forget(name),
    })

    host.webSocket<SocketData>(STREAM_PATH, {
      maxPayloadLength: stream.max_payload,
      idleTimeout: opts.idleTimeoutSec ?? 120,
      sendPingsAutomatically: true,
      // The last guard only: the pump stops at high_water and closes with 4008
      // past hard_limit itself; uWS would close without a close frame. uWS
      // takes this once, and max_body is reloadable: allow for the largest
      // body any config may take, so a raised max_body never trips it.
      maxBackpressure: stream.hard_limit + MAX_BODY_CEILING + 64 * 1024,
      closeOnBackpressureLimit: true as unknown as number,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => this.#open(ws),
      message: (ws, message, isBinary) => this.#message(ws, message, isBinary),
      drain: (ws) => {
        const sub = ws.getUserData().sub
        if (sub.drain(stream.high_water)) this.#pump(sub)
      },
      close: (ws) => this.#onClose(ws.getUserData().sub),
    })
  }

  /** Event frames encoded so far (each event once while subscribers stay near the head). */
  get framesEncoded(): number {
    return this.#shared.encoded
  }

  #upgrade(res: HttpResponse, req: HttpRequest, context: UpgradeContext): void {
    const key = req.getHeader('sec-websocket-key')
    const protocol = req.getHeader('sec-websocket-protocol').split(',')[0]?.trim() ?? ''
    const extensions = req.getHeader('sec-websocket-extensions')
    const authorization = req.getHeader('authorization')
    const ip = peerAddress(res, req)
    if (this.#closing) {
      sendError(res, 'HOOKRELAY_STREAM_CLOSING', 'the relay is shutting down; reconnect later', { headers: { 'retry-after': '5' } })
      return
    }
    if (authorization === '') {
      if (!this.#limits.mayWait(ip)) {
        tooMany(res, 'too many stream connections waiting to authenticate; send Authorization: Bearer <token> on the upgrade')
        return
      }
      const sub = new Subscriber(this.#nextId++, ip, undefined)
      this.#limits.wait(sub)
      res.upgrade<SocketData>({ sub }, key, protocol, extensions, context)
      return
    }
    const token = bearerToken(authorization)
    const principal = this.#host.lookupToken(token)
    if (!principal) {
      sendError(res, 'HOOKRELAY_STREAM_UNAUTHORIZED', 'send Authorization: Bearer <subscriber token>', {
        headers: { 'www-authenticate': 'Bearer' },
      })
      return
    }
    if (!this.#limits.hasRoom(ip)) {
      tooMany(res, 'too many stream connections from this address (stream.max_connections_per_ip)')
      return
    }
    const sub = new Subscriber(this.#nextId++, ip, principal, token)
    this.#limits.admit(sub)
    res.upgrade<SocketData>({ sub }, key, protocol, extensions, context)
  }

  #open(ws: WebSocket<SocketData>): void {
    const sub = ws.getUserData().sub
    sub.attach(ws)
    this.#subs.add(sub)
    this.metrics.subscribers.inc()
    if (sub.state === 'ready') this.#welcome(sub)
    else sub.awaitAuth(this.#authTimeoutMs, 'authenticate within 5 s: send {"type":"auth","token":"..."}')
  }

  #welcome(sub: Subscriber): void {
    sub.ws!.send(welcomeFrame(this.#host.journal.epoch, this.#host.journal.head))
  }

  #message(ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const sub = ws.getUserData().sub
    if (sub.state === 'closed') return
    let frame: ClientFrame
    try {
      if (isBinary) throw new BadFrame('binary frames are not part of protocol v1; send JSON text')
      frame = parseClientFrame(Buffer.from(message).toString('utf8'))
    } catch (e) {
      if (!(e instanceof BadFrame)) throw e
      ws.end(CLOSE.BAD_FRAME, e.message)
      return
    }
    if (sub.state === 'auth') {
      this.#authFrame(sub, frame)
      return
    }
    switch (frame.type) {
      case 'auth':
        ws.end(CLOSE.BAD_FRAME, 'already authenticated')
        return
      case 'subscribe':
        if (sub.state === 'subscribed' || this.#subscribing.has(sub)) {
          ws.end(CLOSE.BAD_FRAME, 'already subscribed: one subscription per connection')
          return
        }
        this.#subscribe(sub, frame)
        return
      case 'ack':
        if (sub.state !== 'subscribed') {
          ws.end(CLOSE.BAD_FRAME, 'ack before subscribe')
          return
        }
        this.#ack(sub, frame.seq)
        return
    }
  }

  #authFrame(sub: Subscriber, frame: ClientFrame): void {
    const ws = sub.ws!
    if (frame.type !== 'auth') {
      ws.end(CLOSE.AUTH, 'authenticate first: send {"type":"auth","token":"..."}')
      return
    }
    const principal = this.#host.lookupToken(frame.token)
    if (!principal) {
      ws.end(CLOSE.AUTH, 'unknown token')
      return
    }
    this.#limits.leaveWaiting(sub)
    if (!this.#limits.hasRoom(sub.ip)) {
      ws.end(CLOSE.TRY_AGAIN_LATER, 'too many stream connections from this address: reconnect later')
      return
    }
    this.#limits.admit(sub)
    sub.authenticate(principal, frame.token)
    this.#welcome(sub)
  }

  /** A durable consumer's stored position is read first (the journal's reads may be async); a plain subscription starts at once. */
  #subscribe(sub: Subscriber, f: SubscribeFrame): void {
    if (f.consumer === undefined) {
      this.#start(sub, f, undefined)
      return
    }
    this.#subscribing.add(sub)
    this.#lookupConsumer(sub.principal!.name, f.consumer).then(
      (lookup) => {
        this.#subscribing.delete(sub)
        if (sub.state !== 'closed' && sub.ws !== undefined && !this.#closing) this.#start(sub, f, lookup)
      },
      (err: unknown) => {
        this.#subscribing.delete(sub)
        this.#pumpFailed(sub, err)
      },
    )
  }

  #start(sub: Subscriber, f: SubscribeFrame, lookup: ConsumerLookup | undefined): void {
    const ws = sub.ws!
    const principal = sub.principal!
    const journal = this.#host.journal
    const head = journal.head
    const sources = this.#host.config.sources
    const d = decideSubscribe({
      frame: f,
      principal,
      isSource: (s) => Object.hasOwn(sources, s),
      journal: { head, earliest: journal.earliest },
      consumer: lookup,
    })
    switch (d.kind) {
      case 'close':
        ws.end(d.code, d.reason)
        return
      case 'error':
        ws.send(d.code === 'cursor_ahead' ? errorFrame(d.code, { head: d.head, after: d.after }) : errorFrame(d.code, { earliest: d.earliest, after: d.after }))
        return
      case 'start':
        break
    }
    const consumer = d.consumer
    if (consumer !== undefined) {
      const older = this.#byConsumer.get(consumer)
      if (older && older !== sub && older.state !== 'closed') {
        this.#byConsumer.delete(consumer)
        older.ws!.send(errorFrame('consumer_replaced'))
        older.end(CLOSE.CONSUMER_REPLACED, 'another connection took over this consumer')
      }
      this.#byConsumer.set(consumer, sub)
    }
    sub.start(d.after, {
      consumer,
      ack: d.ack,
      sources: d.sources,
      followsToken: d.followsToken,
      matchEvent: eventMatcher(d.events),
    })
    ws.send(subscribedFrame(journal.epoch, d.after, head))
    this.#pump(sub)
  }

  async #lookupConsumer(subscriber: string, name: string): Promise<ConsumerLookup> {
    const key = consumerKey(subscriber, name)
    const position = await this.cursors.position(key, name)
    if (this.#byConsumer.has(key) || (await this.cursors.has(key))) return { position, known: true }
    return { position, known: false, subscriberConsumers: await this.#consumerCount(subscriber) }
  }

  #ack(sub: Subscriber, seq: number): void {
    const blocked = sub.ack && sub.inflight >= this.#ctx.maxInflight
    const r = sub.applyAck(seq)
    if (r === 'ahead') {
      sub.ws!.send(errorFrame('ack_ahead', { seq, delivered: sub.lastSent }))
      return
    }
    if (r === 'stale') return
    if (sub.consumer !== undefined && this.#byConsumer.get(sub.consumer) === sub) this.cursors.record(sub.consumer, seq)
    if (blocked && sub.runnable) this.#pump(sub)
  }

  #schedule(sub: Subscriber): void {
    if (sub.schedule()) setImmediate(() => this.#pump(sub))
  }

  /**
   * Runs a pump; a failure (e.g. a journal read error) ends that subscriber
   * with 1011 instead of escaping into the journal's commit callback.
   */
  #pump(sub: Subscriber): void {
    try {
      sub.pump(this.#ctx)
    } catch (err) {
      this.#pumpFailed(sub, err)
    }
  }

  #pumpFailed(sub: Subscriber, err: unknown): void {
    this.#host.log.error({ err, subscriber: sub.principal?.name, consumer: sub.consumer }, 'subscriber pump failed')
    sub.end(CLOSE.INTERNAL, 'internal error: reconnect and resume')
  }

  #onClose(sub: Subscriber): void {
    sub.detach()
    this.#subs.delete(sub)
    this.metrics.subscribers.dec()
    this.#limits.release(sub)
    if (sub.consumer !== undefined && this.#byConsumer.get(sub.consumer) === sub) {
      this.#byConsumer.delete(sub.consumer)
      // "Always on close": a consumer that disconnects has its acks stored now.
      if (!this.#closing) void this.cursors.flush()
    }
  }

  /** Durable consumers of one subscriber: stored or pending acks, and connected ones that have not acked yet. */
  async #consumerCount(subscriber: string): Promise<number> {
    const prefix = `${subscriber}/`
    const names = new Set<string>()
    for (const name of (await this.cursors.list()).keys()) if (name.startsWith(prefix)) names.add(name)
    for (const name of this.#byConsumer.keys()) if (name.startsWith(prefix)) names.add(name)
    return names.size
  }

  /**
   * After a config reload: each authenticated connection's token is looked
   * up again. A token no longer configured (the subscriber removed, or its
   * token rotated: the point of rotating a leaked token) closes the
   * connection with 4401, and the client reconnects with the new token. A
   * subscription that named sources the subscriber may no longer read closes
   * with 4403; one that named none (or `*`) keeps going with the new sources
   * (narrower or wider), as a reconnect would get.
   */
  #reauthorize(): void {
    for (const sub of [...this.#subs]) {
      if (sub.state === 'auth' || sub.state === 'closed' || sub.ws === undefined) continue
      const p = this.#host.lookupToken(sub.token)
      if (!p || p.name !== sub.principal!.name) {
        this.#host.log.info({ subscriber: sub.principal?.name, consumer: sub.consumer, ip: sub.ip }, 'token revoked by reload: connection closed (4401)')
        sub.end(CLOSE.AUTH, 'token revoked: reconnect with a configured token')
        continue
      }
      const lost = sub.reauthorize(p)
      if (lost !== undefined) {
        this.#host.log.info({ subscriber: p.name, consumer: sub.consumer, ip: sub.ip, source: lost }, 'source revoked by reload: subscriber closed (4403)')
        sub.end(CLOSE.FORBIDDEN, `this token may no longer read source ${lost.slice(0, 64)}`)
      }
    }
  }

  async #lags(): Promise<Array<[string, number]>> {
    const cursors = await this.cursors.list()
    const head = this.#host.journal.head
    return [...cursors].map(([name, seq]) => [name, Math.max(0, head - seq)])
  }

  /** Closes every subscriber with 1001 and stores pending acks. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close(): Promise<void> {
    this.#closing = true
    this.#stopCommits()
    this.#stopReload()
    for (const sub of [...this.#subs]) sub.end(CLOSE.SHUTDOWN, 'server shutting down')
    await this.cursors.close()
    this.frames.clear()
  }
}

function tooMany(res: HttpResponse, message: string): void {
  sendError(res, 'HOOKRELAY_STREAM_TOO_MANY_CONNECTIONS', message, { headers: { 'retry-after': '5' } })
}
