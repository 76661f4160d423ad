/**
 * One POST to a destination over a keep-alive agent: the body byte-exact,
 * no redirect followed (a 3xx is a failed attempt like any other non-2xx),
 * a deadline on the whole exchange, and the answer's body read and dropped
 * so the connection goes back to the pool.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { urlToHttpOptions } from 'node:url'
import { parseRetryAfter, type AttemptResult } from './retry.js'

/** Bytes of an answer's body read before the connection is dropped instead of reused. */
const MAX_ANSWER_BYTES = 64 * 1024

export interface Delivery {
  url: string
  /** The request's headers (a fresh object: `content-length` is set on it). */
  headers: Record<string, string>
  body: Buffer
  timeoutMs: number
}

export interface DeliveryAnswer {
  result: AttemptResult
  latencyMs: number
}

/** Where a URL's requests go: parsed once per URL, not per delivery. */
interface Target {
  https: boolean
  options: RequestOptions
}

/** Keep-alive agents of one destination (http and https), sized to its concurrency. */
export class DeliveryAgents {
  readonly http: HttpAgent
  readonly https: HttpsAgent
  #url: string | undefined
  #target: Target | undefined

  constructor(concurrency: number) {
    const opts = { keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, scheduling: 'lifo' as const }
    this.http = new HttpAgent(opts)
    this.https = new HttpsAgent(opts)
  }

  /** The parsed `url` (the last one asked for is kept: a reload may change it), undefined when it does not parse. */
  target(url: string): Target | undefined {
    if (url !== this.#url) {
      this.#url = url
      try {
        const u = new URL(url)
        const https = u.protocol === 'https:'
        const { protocol, hostname, port, path, auth } = urlToHttpOptions(u)
        this.#target = { https, options: { protocol, hostname, port, path, auth, method: 'POST', agent: https ? this.https : this.http } }
      } catch {
        this.#target = undefined
      }
    }
    return this.#target
  }

  destroy(): void {
    this.http.destroy()
    this.https.destroy()
  }
}

/** Sends one delivery; never rejects (every failure is an `AttemptResult`). */
export function deliver(d: Delivery, agents: DeliveryAgents): Promise<DeliveryAnswer> {
  const started = performance.now()
  const elapsed = (): number => Math.round((performance.now() - started) * 10) / 10
  return new Promise((resolve) => {
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const finish = (result: AttemptResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ result, latencyMs: elapsed() })
    }
    const target = agents.target(d.url)
    if (target === undefined) {
      finish({ kind: 'failed', status: null, error: 'invalid url' })
      return
    }
    d.headers['content-length'] = String(d.body.length)
    const req = (target.https ? httpsRequest : httpRequest)({ ...target.options, headers: d.headers })
    timer = setTimeout(() => {
      finish({ kind: 'failed', status: null, error: 'timeout' })
      req.destroy()
    }, d.timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'failed', status: null, error: err.code ?? err.message }))
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      let read = 0
      res.on('data', (chunk: Buffer) => {
        read += chunk.length
        if (read > MAX_ANSWER_BYTES) res.destroy()
      })
      res.on('error', () => undefined)
      // The status is what counts; the attempt ends once the answer is read (or dropped).
      const done = (): void => finish(classify(status, res.headers['retry-after']))
      res.on('end', done)
      res.on('close', done)
    })
    req.end(d.body)
  })
}

function classify(status: number, retryAfter: string | undefined): AttemptResult {
  if (status >= 200 && status < 300) return { kind: 'delivered', status }
  if (status === 410) return { kind: 'gone', status }
  const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfter, Date.now()) : undefined
  return { kind: 'failed', status, error: `status ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }
}
