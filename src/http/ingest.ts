import { isUtf8 } from 'node:buffer'
import { hash } from 'node:crypto'
import type { SourceConfig } from '../config/types.js'
import type { Journal } from '../journal/journal.js'
import type { IngestResult } from '../journal/types.js'
import type { Logger, RejectLog } from '../log.js'
import type { Metrics } from '../metrics.js'
import { RelayError } from '../errors.js'
import { createVerifier } from '../verify/index.js'
import type { HeaderBag, Verifier } from '../verify/types.js'
import { sendError, sendJson } from './respond.js'
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js'

/** Seconds a sender is told to wait after a 503. */
export const RETRY_AFTER_S = '5'
/** A body that has not arrived completely by then is answered 408 and its connection closed. */
export const BODY_TIMEOUT_MS = 30_000

/** Longest idempotency key (bytes): LMDB keys are limited, and no sender needs more. */
export const MAX_KEY_BYTES = 512
/** Longest event name (bytes). */
export const MAX_EVENT_BYTES = 256

/**
 * Bytes of request bodies held at once, across all sources, from the first
 * byte read until the answer. Past `max`, new callbacks get 503 + Retry-After
 * instead of growing the heap.
 */
export class BodyBudget {
  inUse = 0
  constructor(public max: number) {}
}

/** Headers kept with every source for logs (sender request ids). */
const REQUEST_ID_HEADERS = ['runflow-request-id', 'x-request-id']

export interface IngestContext {
  journal: Journal
  metrics: Metrics
  log: Logger
  rejects: RejectLog
  /** True while the relay is closing: new callbacks get 503. */
  closing: () => boolean
  /**
   * Rate limiting before any signature work; returns seconds to wait when the
   * request must be refused with 429, else 0.
   */
  admit?: (res: HttpResponse, headers: HeaderBag) => number
  /** Body deadline; BODY_TIMEOUT_MS unless set (tests shorten it). */
  bodyTimeoutMs?: number
  budget: BodyBudget
}

interface SourceRoute {
  source: SourceConfig
  verifier: Verifier
  headerNames: string[]
  ctx: IngestContext
  /** Exchanges still reading their body, swept for BODY_TIMEOUT_MS. */
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
export function registerSource(app: TemplatedApp, source: SourceConfig, ctx: IngestContext): SourceHandle {
  const verifier = createVerifier(source.verify)
  const route: SourceRoute = {
    source,
    verifier,
    headerNames: ['content-length', ...new Set([...verifier.headers, ...REQUEST_ID_HEADERS, 'x-forwarded-for'])],
    ctx,
    reading: new Set(),
    ackLatency: ctx.metrics.ackLatency.labels(source.name),
  }
  app.post(source.path, (res, req) => {
    new Exchange(route, res, req)
  })
  app.any(source.path, (res) => {
    sendError(res, 405, 'HOOKRELAY_HTTP_METHOD_NOT_ALLOWED', `${source.path} takes POST`, { headers: { allow: 'POST' } })
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
      // Path and header names are bound to the route: a new path or scheme needs a restart (Relay.reload refuses it).
      if (next.path !== route.source.path || nextVerifier.scheme !== route.verifier.scheme) {
        throw new RelayError('HOOKRELAY_CONFIG_RESTART_REQUIRED', `sources.${next.name}: path or scheme changed; restart the relay`)
      }
      route.source = next
      route.verifier = nextVerifier
    },
    stop: () => clearInterval(sweeper),
  }
}

/** One ingest request, from headers to answer. */
class Exchange {
  readonly started = performance.now()
  #route: SourceRoute
  #res: HttpResponse
  #headers: HeaderBag = {}
  #done = false
  #aborted = false
  #body: Buffer | undefined
  #chunks: Buffer[] | undefined
  #received = 0
  /** Bytes of the body budget this exchange holds. */
  #reserved = 0

  constructor(route: SourceRoute, res: HttpResponse, req: HttpRequest) {
    this.#route = route
    this.#res = res
    res.onAborted(() => {
      this.#aborted = true
      // A body already handed to the journal stays in the budget until its commit settles.
      if (!this.#done) this.#release()
      this.#done = true
      route.reading.delete(this)
    })
    // The request object dies when this handler returns: copy what we need now.
    const headers = this.#headers
    for (const name of route.headerNames) {
      const v = req.getHeader(name)
      if (v !== '') headers[name] = v
    }
    const max = route.source.max_body
    if (route.ctx.closing()) {
      this.#reject(503, 'HOOKRELAY_HTTP_CLOSING', 'the relay is shutting down; retry', 'closing', { 'retry-after': RETRY_AFTER_S })
      return
    }
    const wait = route.ctx.admit?.(res, headers) ?? 0
    if (wait > 0) {
      this.#reject(429, 'HOOKRELAY_HTTP_RATE_LIMITED', 'too many requests from this address', 'rate limited', {
        'retry-after': String(wait),
      })
      return
    }
    const cl = headers['content-length']
    if (cl !== undefined) {
      const n = Number(cl)
      if (!Number.isSafeInteger(n) || n < 0) {
        this.#reject(400, 'HOOKRELAY_INGEST_BAD_LENGTH', 'content-length is not a byte count', 'bad content-length')
        return
      }
      if (n > max) {
        this.#tooLarge()
        return
      }
      if (!this.#reserve(n)) return
      this.#body = Buffer.allocUnsafe(n)
    }
    route.reading.add(this)
    res.onData((chunk, isLast) => this.#onData(chunk, isLast))
  }

  #onData(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.#done) return
    const len = chunk.byteLength
    const at = this.#received
    this.#received += len
    if (this.#received > this.#route.source.max_body) {
      this.#tooLarge()
      return
    }
    // uWS reuses `chunk` after this callback: copy it.
    if (this.#body !== undefined) {
      if (this.#received > this.#body.length) {
        this.#reject(400, 'HOOKRELAY_INGEST_BAD_LENGTH', 'body longer than content-length', 'body over content-length')
        return
      }
      this.#body.set(new Uint8Array(chunk), at)
    } else if (len > 0) {
      if (!this.#reserve(len)) return
      ;(this.#chunks ??= []).push(Buffer.from(new Uint8Array(chunk)))
    }
    if (isLast) {
      this.#route.reading.delete(this)
      const body = this.#body ?? (this.#chunks ? Buffer.concat(this.#chunks) : Buffer.alloc(0))
      if (this.#body !== undefined && this.#received !== this.#body.length) {
        this.#reject(400, 'HOOKRELAY_INGEST_BAD_LENGTH', 'body shorter than content-length', 'body under content-length')
        return
      }
      this.#finish(body)
    }
  }

  /** Takes n bytes from the body budget, or answers 503 (busy) and returns false. */
  #reserve(n: number): boolean {
    const budget = this.#route.ctx.budget
    if (budget.inUse + n > budget.max) {
      this.#route.reading.delete(this)
      this.#reject(503, 'HOOKRELAY_HTTP_BUSY', 'too many request bodies in flight; retry', 'body budget exhausted', { 'retry-after': '1' }, true)
      return false
    }
    budget.inUse += n
    this.#reserved += n
    return true
  }

  #release(): void {
    this.#route.ctx.budget.inUse -= this.#reserved
    this.#reserved = 0
  }

  timeout(limitMs: number): void {
    this.#route.reading.delete(this)
    this.#reject(408, 'HOOKRELAY_INGEST_BODY_TIMEOUT', `the body did not arrive within ${limitMs / 1000} s`, 'body timeout', undefined, true)
  }

  #tooLarge(): void {
    this.#route.reading.delete(this)
    // Close the connection: the rest of the body is never read nor buffered.
    this.#reject(
      413,
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
      this.#reject(401, 'HOOKRELAY_INGEST_UNAUTHORIZED', 'signature verification failed', outcome.reason)
      return
    }
    // JSON is UTF-8 (RFC 8259); invalid bytes would be replaced by JSON.parse's
    // decoding but spliced raw into subscribers' text frames, breaking them.
    if (!isUtf8(body)) {
      this.#reject(400, 'HOOKRELAY_INGEST_NOT_JSON', 'the body is not UTF-8 JSON', 'not UTF-8')
      return
    }
    let json: unknown
    try {
      json = JSON.parse(body.toString('utf8'))
    } catch {
      this.#reject(400, 'HOOKRELAY_INGEST_NOT_JSON', 'the body is not JSON', 'not JSON')
      return
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      this.#reject(400, 'HOOKRELAY_INGEST_NOT_JSON', 'the body is not a JSON object', 'not a JSON object')
      return
    }
    const d = verifier.describe(this.#headers, json)
    if (d.key === undefined) {
      this.#reject(400, 'HOOKRELAY_INGEST_NO_KEY', idempotencyHint(source), 'no idempotency key')
      return
    }
    if (d.event === undefined) {
      this.#reject(400, 'HOOKRELAY_INGEST_NO_EVENT', 'the callback names no event', 'no event')
      return
    }
    if (Buffer.byteLength(d.key) > MAX_KEY_BYTES || Buffer.byteLength(d.event) > MAX_EVENT_BYTES) {
      this.#reject(400, 'HOOKRELAY_INGEST_BAD_KEY', `idempotency key over ${MAX_KEY_BYTES} or event over ${MAX_EVENT_BYTES} bytes`, 'key or event too long')
      return
    }
    const requestId = this.#headers['runflow-request-id'] ?? this.#headers['x-request-id']
    ctx.journal
      .ingest({
        source: source.name,
        event: d.event,
        key: d.key,
        status: d.status,
        body,
        // One-shot hash (Node >= 20.12): a third of createHash().update().digest()'s cost.
        sha256: hash('sha256', body, 'hex'),
        receivedAt: Date.now(),
        requestId,
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
    this.#res.cork(() => sendJson(this.#res, 200, body))
  }

  #failed(e: unknown): void {
    const err = e instanceof RelayError ? e : new RelayError('HOOKRELAY_JOURNAL_COMMIT_FAILED', 'commit failed', { cause: e })
    // Rate-limited like every rejection: a full disk must not also fill it with log lines.
    this.#route.ctx.rejects.warn({ err, source: this.#route.source.name }, 'journal refused a callback')
    const status = err.status ?? 503
    this.#reject(status, err.code, err.message, err.code, status === 503 ? { 'retry-after': RETRY_AFTER_S } : undefined)
  }

  #reject(
    status: number,
    code: string,
    message: string,
    reason: string,
    headers?: Record<string, string>,
    close = false,
  ): void {
    this.#done = true
    this.#release()
    const { source, ctx } = this.#route
    ctx.metrics.countRequest(source.name, status)
    if (status !== 503 || reason === 'closing') {
      ctx.rejects.warn(
        {
          source: source.name,
          status,
          code,
          reason,
          remote: this.#aborted ? undefined : Buffer.from(this.#res.getRemoteAddressAsText()).toString(),
          request_id: this.#headers['runflow-request-id'] ?? this.#headers['x-request-id'],
        },
        'rejected a callback',
      )
    }
    if (this.#aborted) return
    this.#res.cork(() => sendError(this.#res, status, code, message, { headers, close }))
  }
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
