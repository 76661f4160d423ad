// A raw-socket HTTP client for tests of the front: writes exact bytes, reads
// every response the server sends back, and notes whether it closed.
import { connect, type Socket } from 'node:net'
import { signRunflow } from '../../src/verify/sign.js'

export interface RawResponse {
  version: string
  status: number
  headers: Record<string, string>
  body: string
}

export interface RawResult {
  responses: RawResponse[]
  /** The server closed the connection (FIN or reset) before the client did. */
  closed: boolean
  /** Bytes that did not parse as a response. */
  rest: string
}

export interface RawOptions {
  /** Stop once this many responses arrived (else wait for the server to close). */
  responses?: number
  /** Written one after another, with this pause between (ms). */
  gapMs?: number
  /** Fails the exchange (never passes it) when nothing settles it by then. */
  guardMs?: number
  /** Requests sent with HEAD: their responses carry no body whatever Content-Length says. */
  headRequests?: number[]
}

/** Parses complete responses off the front of `text` (Content-Length framed, as every relay answer is). */
export function parseResponses(text: string, headIndexes: number[] = []): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = []
  let rest = text
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) break
    const lines = rest.slice(0, end).split('\r\n')
    const m = /^(HTTP\/\d\.\d) (\d{3})/.exec(lines[0] ?? '')
    if (!m) break
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
    }
    const noBody = headIndexes.includes(responses.length)
    const len = noBody ? 0 : Number(headers['content-length'] ?? 0)
    const bodyStart = end + 4
    if (Buffer.byteLength(rest.slice(bodyStart)) < len) break
    const body = Buffer.from(rest.slice(bodyStart)).subarray(0, len).toString()
    responses.push({ version: m[1]!, status: Number(m[2]), headers, body })
    rest = Buffer.from(rest.slice(bodyStart)).subarray(len).toString()
  }
  return { responses, rest }
}

/** Connects to 127.0.0.1:port, writes `chunks`, and collects what comes back. */
export function rawExchange(port: number, chunks: Array<string | Buffer>, opts: RawOptions = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(port, '127.0.0.1')
    let text = ''
    let settled = false
    const finish = (closed: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(guard)
      sock.destroy()
      resolve({ ...parseResponses(text, opts.headRequests), closed })
    }
    sock.on('data', (d) => {
      text += d.toString('latin1')
      if (opts.responses !== undefined && parseResponses(text, opts.headRequests).responses.length >= opts.responses) finish(false)
    })
    sock.on('error', () => finish(true))
    sock.on('close', () => finish(true))
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) return
        sock.write(c)
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs))
      }
    })
    const guard = setTimeout(() => {
      if (settled) return
      settled = true
      sock.destroy()
      reject(new Error(`no answer and no close; got ${JSON.stringify(text.slice(0, 300))}`))
    }, opts.guardMs ?? 20_000)
    guard.unref()
  })
}

/** A complete signed Runflow POST as bytes on the wire. */
export function signedPost(secret: string, body: string, opts: { version?: string; path?: string; extra?: string } = {}): string {
  const headers = Object.entries({ ...signRunflow(secret, body), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  return `POST ${opts.path ?? '/webhook/runflow'} ${opts.version ?? 'HTTP/1.1'}\r\nhost: relay\r\n${headers}${opts.extra ?? ''}\r\n${body}`
}
