import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect as netConnect, isIP } from 'node:net'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { connect as tlsConnect } from 'node:tls'
import { RelayError } from '../errors.js'
import { poolKey, type Connector, type OriginPool, type PooledRequest } from './origin-pool.js'
import type { CheckedAddress, HostGuard } from './ssrf.js'

export type { ConnectTarget, Connector } from './origin-pool.js'

/** The default connector: TCP, or TLS with SNI and certificate checks against the host name. */
export const defaultConnector: Connector = (t) =>
  t.tls
    ? tlsConnect({ host: t.address, port: t.port, servername: t.servername, ALPNProtocols: ['http/1.1'] })
    : netConnect({ host: t.address, port: t.port })

export interface FetchTimeouts {
  /** From the start of a request to the (TLS) connection being up. */
  connect_ms: number
  /** From the start of a request to its response headers; also the longest silence while the body streams. */
  headers_ms: number
  /** The whole download, redirects included. */
  total_ms: number
}

export interface DownloadOptions {
  guard: HostGuard
  maxBytes: number
  timeouts: FetchTimeouts
  connect?: Connector
  /** Redirect hops followed at most; each is checked again. */
  maxRedirects?: number
  /** Aborts the download (relay closing); the error has code HOOKRELAY_MIRROR_ABORTED. */
  signal?: AbortSignal
  /** Keep-alive sockets to reuse (same checked address, port, Host and TLS name only); without it every GET opens its own. */
  pool?: OriginPool
  /**
   * Asked with the Content-Length once the response headers are in: true
   * keeps the body in memory (`Downloaded.body`) instead of writing `file`.
   * Not asked when there is no Content-Length. Default: always the file.
   */
  hold?: (declared: number) => boolean
}

export interface Downloaded {
  size: number
  sha256: string
  /** MD5 hex, for files of at most MD5_MAX_BYTES by Content-Length: the store's ETag for them confirms the upload. */
  md5: string | undefined
  contentType: string
  /** The URL the bytes came from, after redirects. */
  finalUrl: string
  /** The bytes, when they were kept in memory (see `hold`); `file` was then not written. */
  body: Buffer | undefined
}

/** The origin answered with a status that is not a success or a redirect. */
export class OriginStatusError extends RelayError {
  readonly originStatus: number
  constructor(status: number, url: URL) {
    super('HOOKRELAY_MIRROR_ORIGIN_STATUS', `${url.host} answered ${status}`)
    this.originStatus = status
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * Up to this size a download is also MD5-hashed, so that the PUT's ETag can
 * stand in for a stat round trip; above it the second hash would cost more
 * than the stat it saves.
 */
export const MD5_MAX_BYTES = 4 * 1024 * 1024

/**
 * Downloads `url` into `file` (created or truncated; not fsynced), or into
 * memory when `hold` says so, hashing sha256 as it streams.
 *
 * The SSRF guard admits every hop before any connection is made; the request
 * goes to the checked address with the URL's host as `Host` and SNI.
 * Redirects are followed by hand (at most `maxRedirects`); https → http is
 * refused. Over `maxBytes` (by Content-Length, or counted) the download stops.
 *
 * @throws RelayError HOOKRELAY_MIRROR_URL_REFUSED, _DNS, _REDIRECTS, _DOWNGRADE,
 *   _TOO_LARGE, _TIMEOUT, _NETWORK, _ABORTED, or OriginStatusError.
 */
export async function downloadToFile(url: string, file: string, opts: DownloadOptions): Promise<Downloaded> {
  const total = AbortSignal.timeout(opts.timeouts.total_ms)
  const signal = opts.signal ? AbortSignal.any([opts.signal, total]) : total
  const maxRedirects = opts.maxRedirects ?? 5
  const why = (err: unknown): unknown => {
    if (opts.signal?.aborted) return new RelayError('HOOKRELAY_MIRROR_ABORTED', 'download aborted', { cause: err })
    if (total.aborted) {
      return new RelayError('HOOKRELAY_MIRROR_TIMEOUT', `download took over ${opts.timeouts.total_ms} ms`, { cause: err })
    }
    return err instanceof RelayError
      ? err
      : new RelayError('HOOKRELAY_MIRROR_NETWORK', `download failed: ${(err as Error).message}`, { cause: err })
  }
  let current: URL
  try {
    current = new URL(url)
  } catch (cause) {
    throw new RelayError('HOOKRELAY_MIRROR_URL_REFUSED', 'not a valid URL', { cause })
  }
  try {
    for (let hop = 0; ; hop++) {
      const address = await opts.guard.admit(current)
      signal.throwIfAborted()
      const res = await get(current, address, opts, signal)
      const status = res.statusCode ?? 0
      const location = res.headers.location
      if (REDIRECTS.has(status) && location !== undefined) {
        res.destroy()
        if (hop >= maxRedirects) {
          throw new RelayError('HOOKRELAY_MIRROR_REDIRECTS', `more than ${maxRedirects} redirects`)
        }
        let next: URL
        try {
          next = new URL(location, current)
        } catch (cause) {
          throw new RelayError('HOOKRELAY_MIRROR_URL_REFUSED', 'redirect to an invalid URL', { cause })
        }
        if (current.protocol === 'https:' && next.protocol === 'http:') {
          throw new RelayError('HOOKRELAY_MIRROR_DOWNGRADE', `redirect from https to http (${next.host}) refused`)
        }
        current = next
        continue
      }
      if (status < 200 || status > 299 || status === 204 || status === 206) {
        res.destroy()
        throw new OriginStatusError(status, current)
      }
      const declared = res.headers['content-length']
      const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined
      if (length !== undefined && length > opts.maxBytes) {
        res.destroy()
        throw tooLarge(opts.maxBytes)
      }
      const inMemory = length !== undefined && length <= opts.maxBytes && opts.hold !== undefined && opts.hold(length)
      const got = await spool(res, inMemory ? length : file, opts.maxBytes, signal, opts.timeouts.headers_ms, length !== undefined && length <= MD5_MAX_BYTES)
      if (length !== undefined && got.size !== length) {
        throw new RelayError('HOOKRELAY_MIRROR_NETWORK', `got ${got.size} of ${length} bytes`)
      }
      return {
        ...got,
        contentType: res.headers['content-type'] ?? 'application/octet-stream',
        finalUrl: current.href,
      }
    }
  } catch (err) {
    throw why(err)
  }
}

/** Errors of a reused socket before any response: most likely the server closed it while idle. */
const STALE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])

function tooLarge(max: number): RelayError {
  return new RelayError('HOOKRELAY_MIRROR_TOO_LARGE', `the file is larger than mirror.max_bytes (${max} bytes)`)
}

function timeout(what: string, ms: number): RelayError {
  return new RelayError('HOOKRELAY_MIRROR_TIMEOUT', `${what} took over ${ms} ms`)
}

/**
 * One GET to a checked address; resolves with the response once its headers
 * are in. A pooled socket the server had closed while idle fails before any
 * response: that GET is sent once more on a fresh connection (a GET is safe
 * to repeat).
 */
async function get(url: URL, address: CheckedAddress, opts: DownloadOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const tls = url.protocol === 'https:'
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const r: PooledRequest = {
    target: {
      address: address.address,
      family: address.family,
      port: url.port !== '' ? Number(url.port) : tls ? 443 : 80,
      tls,
      // SNI must be a name, never an IP literal (RFC 6066).
      servername: isIP(host) === 0 ? host : undefined,
    },
    hostHeader: url.host,
    connect: opts.connect ?? defaultConnector,
    connectMs: opts.timeouts.connect_ms,
  }
  try {
    return await getOnce(url, r, opts, signal)
  } catch (err) {
    const stale = err instanceof StaleSocket
    if (!stale) throw err
    opts.pool?.evict(poolKey(r))
    signal.throwIfAborted()
    try {
      return await getOnce(url, r, opts, signal)
    } catch (again) {
      throw again instanceof StaleSocket ? again.cause : again
    }
  }
}

/** A reused socket failed before the response: see `get`. */
class StaleSocket extends Error {}

function getOnce(url: URL, r: PooledRequest, opts: DownloadOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const { headers_ms } = opts.timeouts
  const pool = opts.pool
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method: 'GET',
      host: r.target.address,
      port: r.target.port,
      path: `${url.pathname}${url.search}`,
      headers: { host: url.host, accept: '*/*', 'accept-encoding': 'identity', 'user-agent': 'hookrelay-mirror' },
      signal,
      ...(pool
        ? // The pool's agent opens sockets through the connector to r.target, and reuses them only for the same key.
          { agent: pool.agent, hookrelay: r }
        : {
            // No agent: this request gets its own socket from the connector, to the checked address, closed after it.
            createConnection: () => {
              const socket = r.connect(r.target)
              const timer = setTimeout(() => req.destroy(timeout('connecting', r.connectMs)), r.connectMs)
              socket.once(r.target.tls ? 'secureConnect' : 'connect', () => clearTimeout(timer))
              socket.once('close', () => clearTimeout(timer))
              return socket
            },
          }),
    })
    const headersTimer = setTimeout(() => req.destroy(timeout('waiting for response headers', headers_ms)), headers_ms)
    let answered = false
    req.once('response', (res) => {
      answered = true
      clearTimeout(headersTimer)
      resolve(res)
    })
    // `on`, not `once`: a socket error after the response must not be an uncaught 'error'.
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(headersTimer)
      if (!answered && req.reusedSocket && !signal.aborted && (STALE.has(err.code ?? '') || err.message === 'socket hang up')) {
        reject(new StaleSocket('pooled socket closed by the server', { cause: err }))
      } else reject(err)
    })
    req.once('close', () => clearTimeout(headersTimer))
    req.end()
  })
}

/**
 * Streams a response body into `sink` (a file path, or a byte count to hold
 * in memory), counting, capping and hashing. A body silent for idleMs is
 * given up on (the total timeout is much longer).
 */
async function spool(
  res: IncomingMessage,
  sink: string | number,
  maxBytes: number,
  signal: AbortSignal,
  idleMs: number,
  withMd5: boolean,
): Promise<{ size: number; sha256: string; md5: string | undefined; body: Buffer | undefined }> {
  const hash = createHash('sha256')
  const md5 = withMd5 ? createHash('md5') : undefined
  let size = 0
  // A timer, not the socket's timeout: a pooled socket must not keep a listener of this response.
  const idle = setTimeout(() => res.destroy(timeout('waiting for body bytes', idleMs)), idleMs)
  const body = typeof sink === 'number' ? Buffer.allocUnsafe(sink) : undefined
  try {
    await pipeline(
      res,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          idle.refresh()
          if (size + chunk.length > maxBytes) throw tooLarge(maxBytes)
          if (body !== undefined) {
            if (size + chunk.length > body.length) throw new RelayError('HOOKRELAY_MIRROR_NETWORK', `more than the ${body.length} bytes declared`)
            chunk.copy(body, size)
          }
          size += chunk.length
          hash.update(chunk)
          md5?.update(chunk)
          if (body === undefined) yield chunk
        }
      },
      // No fsync here: most files are uploaded at once and deleted. The worker
      // fsyncs a file before it records it as spooled (when an upload fails).
      typeof sink === 'string' ? createWriteStream(sink) : discard(),
      { signal },
    )
  } finally {
    clearTimeout(idle)
  }
  return { size, sha256: hash.digest('hex'), md5: md5?.digest('hex'), body: body?.subarray(0, size) }
}

/** The end of a pipeline whose bytes were kept on the way. */
function discard(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() })
}
