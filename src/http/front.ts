/**
 * The relay's HTTP front: the public listener, on node:http.
 *
 * Why not uWS here: the pinned uWebSockets.js (the newest build that loads on
 * glibc 2.36) never answers HTTP/1.0 (nginx's default upstream protocol),
 * drops requests with more than 48 header lines or a malformed request line
 * without a word, closes on a bad Content-Length without a status, accepts two
 * differing Content-Length headers and `Transfer-Encoding: xchunked` (request
 * smuggling behind a lenient proxy), and closes idle bodies at a fixed ~10 s.
 * Node's llhttp parser answers every one of those as RFC 9112 says. uWS keeps
 * serving the WebSocket stream behind this front (see stream-bridge.ts).
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { RelayError, statusOf, type HttpErrorCode } from '../errors.js'
import type { RejectLog } from '../log.js'
import { errorBody, sendError } from './respond.js'

/** Longest request path echoed back in a 404 (the rest is cut). */
export const MAX_ECHOED_PATH = 128
/** Bytes of request line and headers together; past it the answer is 431. */
export const MAX_HEADER_BYTES = 16 * 1024

/** A request handler: `path` is the request path without the query, `query` what follows `?` ('' when none). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, path: string, query: string) => void
/** Takes over an upgraded connection (the WebSocket stream). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

export interface FrontOptions {
  log: { warn(fields: Record<string, unknown>, msg: string): void }
  rejects: Pick<RejectLog, 'warn'>
  /** How long the request line and headers may take to arrive (slowloris). */
  headersTimeoutMs: number
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number
  /** Backstop for a whole request (ingest answers its own 408 earlier). */
  requestTimeoutMs: number
  /** Runs before each request is routed (an ingest thread takes a pending reload there). */
  beforeRequest?: () => void
  /** The relay is closing (shared by the ingest threads): answers say `connection: close` from then on. */
  stopping?: () => boolean
  /** Told of each connection opened (+1) and closed (-1) (ingest threads count theirs together). */
  onConnection?: (delta: 1 | -1) => void
  /** What `connections` reports, when the public connections are another thread's (the main thread behind ingest threads). */
  connections?: () => number
}

/** Answers for requests the parser refuses, by llhttp's error code. */
const PARSE_ERRORS: Record<string, [HttpErrorCode, string]> = {
  HPE_HEADER_OVERFLOW: ['HOOKRELAY_HTTP_HEADERS_TOO_LARGE', `request line and headers over ${MAX_HEADER_BYTES / 1024} KiB`],
  HPE_INVALID_CONTENT_LENGTH: ['HOOKRELAY_INGEST_BAD_LENGTH', 'content-length is not a byte count'],
  HPE_UNEXPECTED_CONTENT_LENGTH: ['HOOKRELAY_INGEST_BAD_LENGTH', 'content-length together with transfer-encoding, or given twice'],
  HPE_INVALID_TRANSFER_ENCODING: ['HOOKRELAY_HTTP_BAD_REQUEST', 'transfer-encoding must end in chunked'],
  HPE_INVALID_VERSION: ['HOOKRELAY_HTTP_BAD_REQUEST', 'the HTTP version is not 1.0 or 1.1'],
  ERR_HTTP_REQUEST_TIMEOUT: ['HOOKRELAY_HTTP_REQUEST_TIMEOUT', 'the request did not arrive in time'],
}

/**
 * Routes by exact path and method (`HEAD` falls back to `GET`; a known path
 * with another method gets 405 with `Allow`), then by path prefix.
 */
export class Router {
  #exact = new Map<string, Map<string, RouteHandler>>()
  #prefixes: Array<{ prefix: string; method: string; handler: RouteHandler }> = []
  /** Takes what no route matched instead of the 404 (an ingest thread hands it to the main thread). */
  fallback: RouteHandler | undefined

  /** `method` '*' answers every method not registered by name on that path. */
  add(method: string, path: string, handler: RouteHandler): void {
    let byMethod = this.#exact.get(path)
    if (!byMethod) this.#exact.set(path, (byMethod = new Map()))
    if (byMethod.has(method)) throw new RelayError('HOOKRELAY_HTTP_ROUTE_TAKEN', `${method} ${path} is registered twice`)
    byMethod.set(method, handler)
  }

  /** Paths starting with `prefix` that no exact route took. */
  addPrefix(method: string, prefix: string, handler: RouteHandler): void {
    this.#prefixes.push({ prefix, method, handler })
  }

  dispatch(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const query = q < 0 ? '' : url.slice(q + 1)
    const method = req.method ?? 'GET'
    const byMethod = this.#exact.get(path)
    if (byMethod) {
      const h = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined) ?? byMethod.get('*')
      if (h) return h(req, res, path, query)
      const allow = [...byMethod.keys()].filter((m) => m !== '*')
      if (allow.includes('GET')) allow.push('HEAD')
      sendError(res, 'HOOKRELAY_HTTP_METHOD_NOT_ALLOWED', `${path} takes ${allow.join(', ')}`, { headers: { allow: allow.join(', ') } })
      return
    }
    for (const p of this.#prefixes) {
      if (path.startsWith(p.prefix) && (p.method === method || (method === 'HEAD' && p.method === 'GET'))) return p.handler(req, res, path, query)
    }
    if (this.fallback) return this.fallback(req, res, path, query)
    const shown = path.length > MAX_ECHOED_PATH ? `${path.slice(0, MAX_ECHOED_PATH)}…` : path
    sendError(res, 'HOOKRELAY_HTTP_NOT_FOUND', `nothing at ${shown}`)
  }
}

/**
 * The listener. Every request gets an answer or a deliberate close: parse
 * errors are answered with a status and a JSON body (and one rate-limited log
 * line), HTTP/1.1 without `Host` gets 400, pipelined requests are answered in
 * order, HTTP/1.0 is answered and closed.
 */
export class HttpFront {
  readonly router = new Router()
  #server: Server
  #opts: FrontOptions
  #upgrades = new Map<string, UpgradeHandler>()
  #port = 0
  #closed: Promise<void> | undefined
  #open = new Set<Socket>()
  #stopping = false

  constructor(opts: FrontOptions) {
    this.#opts = opts
    this.#server = createServer(
      {
        headersTimeout: opts.headersTimeoutMs,
        requestTimeout: opts.requestTimeoutMs,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        // Timeouts are checked on this interval: Node's 30 s default would let a slow header run far past headersTimeout.
        connectionsCheckingInterval: 1000,
        maxHeaderSize: MAX_HEADER_BYTES,
        // Checked in #request, to answer with the relay's JSON error body like every other refusal.
        requireHostHeader: false,
        noDelay: true,
      },
      (req, res) => this.#request(req, res),
    )
    this.#server.on('connection', (socket: Socket) => {
      this.#open.add(socket)
      opts.onConnection?.(1)
      socket.once('close', () => {
        this.#open.delete(socket)
        opts.onConnection?.(-1)
      })
    })
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(err, socket))
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head))
  }

  /** Connections open now (tests wait on it). */
  get connections(): number {
    return this.#opts.connections?.() ?? this.#open.size
  }

  /** The port bound (after `listen`). */
  get port(): number {
    return this.#port
  }

  /** The listening socket's file descriptor (after `listen`), for other ingest threads to accept on. */
  get fd(): number {
    const fd = (this.#server as unknown as { _handle?: { fd?: number } })._handle?.fd
    if (typeof fd !== 'number' || fd < 0) throw new RelayError('HOOKRELAY_HTTP_LISTEN', 'the listener has no file descriptor')
    return fd
  }

  /**
   * Accepts on a socket another thread bound (`fd`): the kernel hands each
   * new connection to whichever thread accepts first.
   */
  listenFd(fd: number): Promise<number> {
    return this.#listenOn({ fd }, `fd ${fd}`)
  }

  /** Listens on a Unix socket (the main thread's private listener behind the ingest threads). */
  async listenPath(path: string): Promise<void> {
    await this.#listenOn({ path }, path)
  }

  #listenOn(what: { fd: number } | { path: string }, shown: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void =>
        reject(new RelayError('HOOKRELAY_HTTP_LISTEN', `cannot listen on ${shown}: ${e.message}`, { cause: e }))
      this.#server.once('error', onError)
      this.#server.listen(what, () => {
        this.#server.off('error', onError)
        const addr = this.#server.address()
        this.#port = typeof addr === 'object' && addr !== null ? addr.port : 0
        resolve(this.#port)
      })
    })
  }

  /** Hands upgrade requests on `path` to `handler`; others get 404. */
  upgrade(path: string, handler: UpgradeHandler): void {
    this.#upgrades.set(path, handler)
  }

  /**
   * Binds `host:port` exclusively (no SO_REUSEPORT: a second relay on a served
   * port fails instead of splitting callbacks between two journals). A port
   * still held is retried until `retryMs` has passed.
   */
  async listen(host: string, port: number, retryMs: number): Promise<number> {
    const deadline = Date.now() + (port === 0 ? 0 : retryMs)
    for (let attempt = 0; ; attempt++) {
      const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        const onError = (e: NodeJS.ErrnoException): void => resolve(e)
        this.#server.once('error', onError)
        this.#server.listen({ host, port, exclusive: true }, () => {
          this.#server.off('error', onError)
          resolve(undefined)
        })
      })
      if (err === undefined) {
        this.#port = (this.#server.address() as { port: number }).port
        return this.#port
      }
      if (err.code !== 'EADDRINUSE' || Date.now() >= deadline) {
        const why =
          err.code === 'EADDRINUSE'
            ? 'the port is already served by another process (another hookrelay?); stop it or choose another listen.port'
            : err.code === 'EADDRNOTAVAIL'
              ? 'the address is not on this machine; check listen.host'
              : err.code === 'EACCES'
                ? 'a port below 1024 needs CAP_NET_BIND_SERVICE; use a higher port or a proxy'
                : (err.message ?? String(err))
        throw new RelayError('HOOKRELAY_HTTP_LISTEN', `cannot listen on ${host}:${port}: ${why}`, { cause: err })
      }
      if (attempt === 0) this.#opts.log.warn({ host, port }, `cannot listen yet (port in use); retrying for up to ${retryMs / 1000} s`)
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  /**
   * Stops accepting connections and closes idle keep-alive ones; requests in
   * flight, and requests still arriving on open connections, go on and are
   * answered with `connection: close`.
   */
  stopListening(): void {
    this.#stopping = true
    if (this.#server.listening) this.#server.close()
    this.#server.closeIdleConnections()
  }

  /**
   * Waits up to `graceMs` for the connections still open to finish their
   * request (each closes after its answer), then closes what is left.
   * Idempotent.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closed ??= (async () => {
      this.stopListening()
      const deadline = Date.now() + graceMs
      while (this.#open.size > 0 && Date.now() < deadline) {
        this.#server.closeIdleConnections()
        await new Promise((r) => setTimeout(r, 20))
      }
      this.#server.closeAllConnections()
      for (const s of this.#open) s.destroy()
    })()
    return this.#closed
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    if (this.#stopping || this.#opts.stopping?.() === true) res.shouldKeepAlive = false
    this.#opts.beforeRequest?.()
    if (req.httpVersionMinor === 1 && req.headers.host === undefined) {
      this.#refused(req.socket, 'HOOKRELAY_HTTP_BAD_REQUEST', 'HTTP/1.1 requires a Host header', 'no host')
      sendError(res, 'HOOKRELAY_HTTP_BAD_REQUEST', 'HTTP/1.1 requires a Host header', { close: true })
      return
    }
    this.router.dispatch(req, res)
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const handler = this.#upgrades.get(q < 0 ? url : url.slice(0, q))
    if (handler && req.method === 'GET') return handler(req, socket, head)
    writeRaw(socket, 'HOOKRELAY_HTTP_NOT_FOUND', 'no WebSocket endpoint here; the stream is at /v1/stream')
  }

  #clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // Nothing can be answered on a reset or half-written socket.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const [code, message] = PARSE_ERRORS[err.code ?? ''] ?? ['HOOKRELAY_HTTP_BAD_REQUEST', 'malformed HTTP request']
    this.#refused(socket as Socket, code, message, err.code ?? 'parse error')
    writeRaw(socket, code, message)
  }

  #refused(socket: Socket, code: HttpErrorCode, message: string, reason: string): void {
    this.#opts.rejects.warn({ status: statusOf(code), code, reason, message, remote: socket.remoteAddress }, 'refused a malformed request')
  }
}

/** A whole error answer written to a socket outside node:http's response machinery, then the connection closed. */
function writeRaw(socket: Duplex, code: HttpErrorCode, message: string): void {
  const status = statusOf(code)
  const body = errorBody(code, message)
  const text = STATUS_CODES[status] ?? 'Error'
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
  // A client that never reads or closes must not hold the socket.
  setTimeout(() => socket.destroy(), 2000).unref()
}
