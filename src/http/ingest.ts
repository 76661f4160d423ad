import { isUtf8 } from 'node:buffer'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { hash } from 'node:crypto'
import type { SourceConfig } from '../config/types.js'
import type { IngestResult, JournalPort } from '../journal/port.js'
import type { RejectLog } from '../log.js'
import { RelayError, statusOf, type HttpErrorCode } from '../errors.js'
import { createVerifier } from '../verify/index.js'
import type { HeaderBag, Verifier } from '../verify/types.js'
import { sendError, sendJson } from './respond.js'
import type { Router } from './front.js'

/** Seconds a sender is told to wait after a 503. */
export const RETRY_AFTER_S = '5'
/** A body that has not arrived completely by then is answered 408 and its connection closed (`http.body_timeout`). */
export const BODY_TIMEOUT_MS = 30_000

/** Longest idempotency key (bytes): LMDB keys are limited, and no sender needs more. */
export const MAX_KEY_BYTES = 512
/** Longest event name (bytes). */
export const MAX_EVENT_BYTES = 256

/**
 * Bytes of request bodies held at once, from the first byte received until
 * the answer: across all sources (`max`) and per client address
 * (`perAddress`). Reserved as bytes arrive, never from a declared
 * Content-Length, so sockets that declare large bodies and send nothing
 * cannot starve callbacks that do arrive. Past a bound, the callback gets
 * 503 + Retry-After instead of growing the heap.
 */
export class BodyBudget implements BytesBudget {
  inUse = 0
  #byAddress = new Map<string, number>()
  constructor(
    public max: number,
    public perAddress: number,
  ) {}

  /** Takes n bytes for `address`; false when either bound would be passed (nothing is taken then). */
  take(address: string, n: number): boolean {
    const held = this.#byAddress.get(address) ?? 0
    if (this.inUse + n > this.max || held + n > this.perAddress) return false
    this.inUse += n
    this.#byAddress.set(address, held + n)
    return true
  }

  give(address: string, n: number): void {
    if (n === 0) return
    this.inUse -= n
    const left = (this.#byAddress.get(address) ?? 0) - n
    if (left > 0) this.#byAddress.set(address, left)
    else this.#byAddress.delete(address)
  }

  /** Addresses holding bytes (tests check it drains to 0). */
  get addresses(): number {
    return this.#byAddress.size
  }
}

/** The body budget ingest takes bytes from: `BodyBudget` on one thread, `SharedBodyBudget` across ingest threads. */
export interface BytesBudget {
  readonly inUse: number
  readonly addresses: number
  max: number
  perAddress: number
  take(address: string, n: number): boolean
  give(address: string, n: number): void
}

/** The metrics ingest writes: `Metrics` on the main thread; an ingest thread's stand-in forwards them to it. */
export interface IngestMetrics {
  countRequest(source: string, status: number): void
  ackLatency: { labels(source: string): { observe(v: number): void } }
}

export interface IngestContext {
  /** Only `append` is used: an ingest thread hands it to the main thread's journal. */
  journal: Pick<JournalPort, 'append'>
  metrics: IngestMetrics
  log: { isLevelEnabled(level: string): boolean; debug(fields: Record<string, unknown>, msg: string): void }
  rejects: Pick<RejectLog, 'warn'>
  /** True while the relay is closing: new callbacks get 503. */
  closing: () => boolean
  /**
   * Rate limiting before any signature work; returns seconds to wait when the
   * request must be refused with 429, else 0. An ingest thread asks the main
   * thread's limiter and gets a promise; the body is not read until it settles.
   */
  admit?: (address: string) => number | Promise<number>
  /** The address a request is accounted to (the peer, or the client behind a trusted proxy). */
  clientAddress: (peer: string, headers: HeaderBag) => string
  /** Body deadline; BODY_TIMEOUT_MS unless set. */
  bodyTimeoutMs?: number
  budget: BytesBudget
}

interface SourceRoute {
  source: SourceConfig
  verifier: Verifier
  /** Request headers kept with each entry: the scheme's own, content-type, request ids. */
  kept: string[]
  ctx: IngestContext
  /** Exchanges still reading their body, swept for the body timeout. */
  reading: Set<Exchange>
  /** The source's ack-latency child, resolved once (labels() hashes on every call). */
  ackLatency: { observe(v: number): void }
}

/** A registered source: reload swaps its settings in place; stop ends its sweeper. */
export interface SourceHandle {
  readonly source: SourceConfig
  /**
   * Takes new settings for the same path and scheme (config reload): secrets,
   * public keys, tolerance, max_body. A request whose body is still arriving
   * is checked with the new ones.
   */
  replace(source: SourceConfig, verifier: Verifier): void
  /** Stops the slow-body sweeper. */
  stop(): void
}

/**
 * Registers `POST <source.path>` (and 405 for other methods on it).
 */
export function registerSource(router: Router, source: SourceConfig, ctx: IngestContext): SourceHandle {
  const verifier = createVerifier(source.verify)
  const route: SourceRoute = {
    source,
    verifier,
    kept: keptHeaders(verifier),
    ctx,
    reading: new Set(),
    ackLatency: ctx.metrics.ackLatency.labels(source.name),
  }
  router.add('POST', source.path, (req, res) => {
    new Exchange(route, req, res)
  })
  const limit = ctx.bodyTimeoutMs ?? BODY_TIMEOUT_MS
  const sweeper = setInterval(() => {
    const cutoff = performance.now() - limit
    for (const ex of route.reading) if (ex.started < cutoff) ex.timeout(limit)
  }, Math.min(1000, limit / 4))
  sweeper.unref()
  return {
    get source() {
      return route.source
    },
    replace(next, nextVerifier) {
      // Path and scheme are bound to the route: a new path or scheme needs a restart (Relay.reload refuses it).
      if (next.path !== route.source.path || nextVerifier.scheme !== route.verifier.scheme) {
        throw new RelayError('HOOKRELAY_CONFIG_RESTART_REQUIRED', `sources.${next.name}: path or scheme changed; restart the relay`)
      }
      route.source = next
      route.verifier = nextVerifier
      route.kept = keptHeaders(nextVerifier)
    },
    stop: () => clearInterval(sweeper),
  }
}

/** One ingest request, from headers to answer. */
class Exchange {
  readonly started = performance.now()
  #route: SourceRoute
  #req: IncomingMessage
  #res: ServerResponse
  #headers: HeaderBag
  #address: string
  #done = false
  #aborted = false
  #chunks: Buffer[] = []
  #received = 0
  /** Bytes of the body budget this exchange holds. */
  #reserved = 0

  constructor(route: SourceRoute, req: IncomingMessage, res: ServerResponse) {
    this.#route = route
    this.#req = req
    this.#res = res
    // node:http joins repeated headers (and refuses repeated Content-Length); set-cookie is the only array and no scheme reads it.
    const headers = (this.#headers = req.headers as HeaderBag)
    this.#address = route.ctx.clientAddress(req.socket.remoteAddress ?? '', headers)
    res.on('close', () => this.#closed())
    if (route.ctx.closing()) {
      this.#reject('HOOKRELAY_HTTP_CLOSING', 'the relay is shutting down; retry', 'closing', { 'retry-after': RETRY_AFTER_S })
      return
    }
    const wait = route.ctx.admit?.(this.#address) ?? 0
    if (typeof wait !== 'number') {
      // Decided on another thread: hold the body back until the answer is in.
      req.pause()
      wait.then(
        (w) => {
          if (this.#done) return
          if (this.#admitted(w)) req.resume()
        },
        (e: unknown) => this.#failed(e),
      )
      return
    }
    this.#admitted(wait)
  }

  /** Goes on after the rate limit's answer; false when the request was refused. */
  #admitted(wait: number): boolean {
    if (wait > 0) {
      this.#reject('HOOKRELAY_HTTP_RATE_LIMITED', 'too many requests from this address', 'rate limited', {
        'retry-after': String(wait),
      })
      return false
    }
    // The parser has checked the value's syntax; only its size is ours to judge.
    const cl = this.#headers['content-length']
    if (cl !== undefined && Number(cl) > this.#route.source.max_body) {
      this.#tooLarge()
      return false
    }
    this.#route.reading.add(this)
    const req = this.#req
    req.on('data', (chunk: Buffer) => this.#onData(chunk))
    req.on('end', () => this.#onEnd())
    return true
  }

  #closed(): void {
    // The answer was written, or the client went away first.
    if (this.#res.writableFinished) return
    this.#aborted = true
    // A body already handed to the journal stays in the budget until its commit settles.
    if (!this.#done) this.#release()
    this.#done = true
    this.#route.reading.delete(this)
  }

  #onData(chunk: Buffer): void {
    if (this.#done) return
    this.#received += chunk.length
    if (this.#received > this.#route.source.max_body) {
      this.#tooLarge()
      return
    }
    if (!this.#route.ctx.budget.take(this.#address, chunk.length)) {
      this.#route.reading.delete(this)
      this.#reject('HOOKRELAY_HTTP_BUSY', 'too many request bodies in flight; retry', 'body budget exhausted', { 'retry-after': '1' }, true)
      return
    }
    this.#reserved += chunk.length
    this.#chunks.push(chunk)
  }

  #onEnd(): void {
    if (this.#done) return
    this.#route.reading.delete(this)
    const c = this.#chunks
    this.#finish(c.length === 1 ? c[0]! : Buffer.concat(c, this.#received))
  }

  #release(): void {
    this.#route.ctx.budget.give(this.#address, this.#reserved)
    this.#reserved = 0
  }

  timeout(limitMs: number): void {
    this.#route.reading.delete(this)
    this.#reject('HOOKRELAY_INGEST_BODY_TIMEOUT', `the body did not arrive within ${limitMs / 1000} s`, 'body timeout', undefined, true)
  }

  #tooLarge(): void {
    this.#route.reading.delete(this)
    // Close the connection: the rest of the body is never read nor buffered.
    this.#reject(
      'HOOKRELAY_INGEST_BODY_TOO_LARGE',
      `body over max_body (${this.#route.source.max_body} bytes)`,
      'body too large',
      undefined,
      true,
    )
  }

  #finish(body: Buffer): void {
    const { verifier, source, ctx } = this.#route
    this.#done = true
    const outcome = verifier.verify(this.#headers, body, Date.now())
    if (!outcome.ok) {
      this.#reject('HOOKRELAY_INGEST_UNAUTHORIZED', 'signature verification failed', outcome.reason)
      return
    }
    // JSON is UTF-8 (RFC 8259); invalid bytes would be replaced by JSON.parse's
    // decoding but spliced raw into subscribers' text frames, breaking them.
    if (!isUtf8(body)) {
      this.#reject('HOOKRELAY_INGEST_NOT_JSON', 'the body is not UTF-8 JSON', 'not UTF-8')
      return
    }
    let json: unknown
    try {
      json = JSON.parse(body.toString('utf8'))
    } catch {
      this.#reject('HOOKRELAY_INGEST_NOT_JSON', 'the body is not JSON', 'not JSON')
      return
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      this.#reject('HOOKRELAY_INGEST_NOT_JSON', 'the body is not a JSON object', 'not a JSON object')
      return
    }
    const d = verifier.describe(this.#headers, json)
    if (d.key === undefined) {
      this.#reject('HOOKRELAY_INGEST_NO_KEY', idempotencyHint(source), 'no idempotency key')
      return
    }
    if (d.event === undefined) {
      this.#reject('HOOKRELAY_INGEST_NO_EVENT', 'the callback names no event', 'no event')
      return
    }
    if (Buffer.byteLength(d.key) > MAX_KEY_BYTES || Buffer.byteLength(d.event) > MAX_EVENT_BYTES) {
      this.#reject('HOOKRELAY_INGEST_BAD_KEY', `idempotency key over ${MAX_KEY_BYTES} or event over ${MAX_EVENT_BYTES} bytes`, 'key or event too long')
      return
    }
    const requestId = this.#headers['runflow-request-id'] ?? this.#headers['x-request-id']
    const kept: Record<string, string> = {}
    for (const name of this.#route.kept) {
      const v = this.#headers[name]
      if (v !== undefined) kept[name] = v
    }
    ctx.journal
      .append({
        source: source.name,
        event: d.event,
        key: d.key,
        status: d.status,
        body,
        // One-shot hash (Node >= 20.12): a third of createHash().update().digest()'s cost.
        sha256: hash('sha256', body, 'hex'),
        receivedAt: Date.now(),
        requestId,
        headers: kept,
        json,
      })
      .then(
        (r) => this.#accepted(r, requestId),
        (e: unknown) => this.#failed(e),
      )
  }

  #accepted(r: IngestResult, requestId: string | undefined): void {
    this.#release()
    const { source, ctx } = this.#route
    ctx.metrics.countRequest(source.name, 200)
    this.#route.ackLatency.observe((performance.now() - this.started) / 1000)
    if (ctx.log.isLevelEnabled('debug')) {
      ctx.log.debug({ source: source.name, seq: r.seq, revision: r.revision, duplicate: r.duplicate, request_id: requestId }, 'journaled')
    }
    if (this.#aborted) return
    const body = r.duplicate
      ? `{"ok":true,"seq":${r.seq},"revision":${r.revision},"duplicate":true}`
      : `{"ok":true,"seq":${r.seq},"revision":${r.revision}}`
    sendJson(this.#res, 200, body)
  }

  #failed(e: unknown): void {
    const err = e instanceof RelayError ? e : new RelayError('HOOKRELAY_JOURNAL_COMMIT_FAILED', 'commit failed', { cause: e })
    // Rate-limited like every rejection: a full disk must not also fill it with log lines.
    this.#route.ctx.rejects.warn({ err, source: this.#route.source.name }, 'journal refused a callback')
    // The journal's refusals are answers (503 full/closing/failed, 500 one entry rejected); anything else is a failed commit.
    const code: HttpErrorCode = err.status !== undefined ? (err.code as HttpErrorCode) : 'HOOKRELAY_JOURNAL_COMMIT_FAILED'
    this.#reject(code, err.message, code, statusOf(code) === 503 ? { 'retry-after': RETRY_AFTER_S } : undefined)
  }

  #reject(
    code: HttpErrorCode,
    message: string,
    reason: string,
    headers?: Record<string, string>,
    close = false,
  ): void {
    this.#done = true
    this.#release()
    const { source, ctx } = this.#route
    const status = statusOf(code)
    ctx.metrics.countRequest(source.name, status)
    if (status !== 503 || reason === 'closing') {
      ctx.rejects.warn(
        {
          source: source.name,
          status,
          code,
          reason,
          remote: this.#address,
          request_id: this.#headers['runflow-request-id'] ?? this.#headers['x-request-id'],
        },
        'rejected a callback',
      )
    }
    if (this.#aborted) return
    sendError(this.#res, code, message, { headers, close })
    // Unread body bytes are not wanted: stop reading them (the connection closes after the answer).
    if (close) this.#req.pause()
  }
}

function keptHeaders(verifier: Verifier): string[] {
  return [...new Set(['content-type', ...verifier.headers, 'runflow-request-id', 'x-request-id'])]
}

function idempotencyHint(source: SourceConfig): string {
  switch (source.verify.scheme) {
    case 'runflow':
      return 'the callback has no run_id or batch_id'
    case 'github':
      return 'the request has no X-GitHub-Delivery header'
    case 'stripe':
      return 'the event has no id'
    case 'standard-webhooks':
      return 'the request has no webhook-id (or svix-id) header'
    case 'hmac': {
      const key = source.verify.hmac?.key
      return key !== undefined && 'header' in key ? `the request has no ${key.header} header` : `the body has no ${key?.field ?? 'key'} field`
    }
  }
}
