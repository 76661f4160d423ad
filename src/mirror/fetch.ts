import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { pipeline } from 'node:stream/promises'
import { connect as tlsConnect } from 'node:tls'
import { RelayError } from '../errors.js'
import type { CheckedAddress, HostGuard } from './ssrf.js'

/** Where to open a connection: the checked address, never a name. */
export interface ConnectTarget {
  address: string
  family: 4 | 6
  port: number
  tls: boolean
  /** Host name for TLS SNI and certificate checks; undefined for literal IPs. */
  servername: string | undefined
}

/**
 * Opens the socket for one request. Injectable so that tests can count
 * connection attempts (and so prove a refused URL never reached one).
 */
export type Connector = (target: ConnectTarget) => Socket

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
}

export interface Downloaded {
  size: number
  sha256: string
  /** MD5 hex, for files of at most MD5_MAX_BYTES by Content-Length: the store's ETag for them confirms the upload. */
  md5: string | undefined
  contentType: string
  /** The URL the bytes came from, after redirects. */
  finalUrl: string
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
 * Downloads `url` into `file` (created or truncated; not fsynced), hashing
 * sha256 as it streams.
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
      const got = await spool(res, file, opts.maxBytes, signal, opts.timeouts.headers_ms, length !== undefined && length <= MD5_MAX_BYTES)
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

function tooLarge(max: number): RelayError {
  return new RelayError('HOOKRELAY_MIRROR_TOO_LARGE', `the file is larger than mirror.max_bytes (${max} bytes)`)
}

function timeout(what: string, ms: number): RelayError {
  return new RelayError('HOOKRELAY_MIRROR_TIMEOUT', `${what} took over ${ms} ms`)
}

/** One GET to a checked address; resolves with the response once its headers are in. */
function get(url: URL, address: CheckedAddress, opts: DownloadOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const tls = url.protocol === 'https:'
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const target: ConnectTarget = {
    address: address.address,
    family: address.family,
    port: url.port !== '' ? Number(url.port) : tls ? 443 : 80,
    tls,
    // SNI must be a name, never an IP literal (RFC 6066).
    servername: isIP(host) === 0 ? host : undefined,
  }
  const connect = opts.connect ?? defaultConnector
  const { connect_ms, headers_ms } = opts.timeouts
  return new Promise((resolve, reject) => {
    let connectTimer: NodeJS.Timeout | undefined
    const clear = (): void => {
      clearTimeout(connectTimer)
      clearTimeout(headersTimer)
    }
    const req = httpRequest({
      method: 'GET',
      host: target.address,
      port: target.port,
      path: `${url.pathname}${url.search}`,
      headers: { host: url.host, accept: '*/*', 'accept-encoding': 'identity', 'user-agent': 'hookrelay-mirror' },
      signal,
      // No agent: every request gets its own socket from the connector, to the checked address.
      createConnection: () => {
        const socket = connect(target)
        connectTimer = setTimeout(() => req.destroy(timeout('connecting', connect_ms)), connect_ms)
        socket.once(tls ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer))
        return socket
      },
    })
    const headersTimer = setTimeout(() => req.destroy(timeout('waiting for response headers', headers_ms)), headers_ms)
    req.once('response', (res) => {
      clear()
      resolve(res)
    })
    // `on`, not `once`: a socket error after the response must not be an uncaught 'error'.
    req.on('error', (err) => {
      clear()
      reject(err)
    })
    req.once('close', clear)
    req.end()
  })
}

/** Streams a response body into `file`, counting, capping and hashing; fsyncs before resolving. */
async function spool(
  res: IncomingMessage,
  file: string,
  maxBytes: number,
  signal: AbortSignal,
  idleMs: number,
  withMd5: boolean,
): Promise<{ size: number; sha256: string; md5: string | undefined }> {
  const hash = createHash('sha256')
  const md5 = withMd5 ? createHash('md5') : undefined
  let size = 0
  // A body that stalls for idleMs is given up on (the total timeout is much longer).
  res.socket.setTimeout(idleMs, () => res.destroy(timeout('waiting for body bytes', idleMs)))
  await pipeline(
    res,
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        size += chunk.length
        if (size > maxBytes) throw tooLarge(maxBytes)
        hash.update(chunk)
        md5?.update(chunk)
        yield chunk
      }
    },
    // No fsync here: most files are uploaded at once and deleted. The worker
    // fsyncs a file before it records it as spooled (when an upload fails).
    createWriteStream(file),
    { signal },
  )
  return { size, sha256: hash.digest('hex'), md5: md5?.digest('hex') }
}
