/**
 * `hookrelay forward`: a destination run from another machine. It follows a
 * relay's `/v1/stream` as a durable consumer (the client library reconnects
 * and resumes after the last acked event, so a laptop that slept or lost its
 * network goes on where it stopped) and POSTs each event to `--to`, retrying
 * until it answers 2xx; only then is the event acked.
 *
 * Stream frames carry the body as parsed JSON, not the sender's bytes or
 * headers, so the body sent is its compact JSON serialization and the
 * sender's signature cannot be forwarded; `--sign SCHEME --secret S` signs
 * what is sent, the way that scheme's sender would (a handler that checks
 * `Runflow-Signature` with the same secret keeps working).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Backoff } from '../client/backoff.js'
import { subscribe } from '../client/index.js'
import { ClientError, type StreamEvent } from '../client/types.js'
import { parseDuration } from '../config/units.js'
import type { SchemeName } from '../config/types.js'
import { signFor } from '../verify/sign.js'
import { deliver, DeliveryAgents } from './deliver.js'

const SCHEMES: readonly SchemeName[] = ['runflow', 'github', 'stripe', 'standard-webhooks']

export interface ForwardIo {
  out: (line: string) => void
  err: (line: string) => void
  /** Stops forwarding (default: SIGINT / SIGTERM). */
  signal?: AbortSignal
}

/** Exit status: 0 after a clean stop, 1 when the relay or the handler refused for good, 64 on usage errors. */
export async function runForward(
  args: string[],
  io: ForwardIo,
  defaults: (configFile: string | undefined) => { url?: string; token?: string },
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      to: { type: 'string' },
      consumer: { type: 'string', default: 'forward' },
      sources: { type: 'string' },
      events: { type: 'string' },
      sign: { type: 'string' },
      secret: { type: 'string' },
      timeout: { type: 'string', default: '10s' },
    },
  })
  const usage = (s: string): number => {
    io.err(`hookrelay: ${s} (see hookrelay forward --help)`)
    return 64
  }
  if (values.to === undefined) return usage('--to http://HOST:PORT/path is required')
  try {
    const to = new URL(values.to)
    if (to.protocol !== 'http:' && to.protocol !== 'https:') throw new Error('not http')
  } catch {
    return usage(`--to ${values.to} is not an http(s) URL`)
  }
  const fallback = values.url === undefined || values.token === undefined ? defaults(values.config) : {}
  const url = streamUrl(values.url ?? fallback.url)
  const token = values.token ?? fallback.token
  if (url === undefined) return usage('--url ws://HOST:PORT is required')
  if (token === undefined) return usage('--token is required (a subscriber token of the relay)')
  let timeoutMs: number
  try {
    timeoutMs = parseDuration(values.timeout)
  } catch (e) {
    return usage(`--timeout: ${(e as Error).message}`)
  }
  const scheme = values.sign as SchemeName | undefined
  if (scheme !== undefined && !SCHEMES.includes(scheme)) return usage(`--sign takes one of ${SCHEMES.join(', ')}`)
  if (scheme !== undefined && (values.secret === undefined || values.secret === '')) return usage('--sign needs --secret')

  const stop = new AbortController()
  const onSignal = (): void => stop.abort()
  if (io.signal) io.signal.addEventListener('abort', onSignal, { once: true })
  else {
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  const agents = new DeliveryAgents(1)
  let gone: string | undefined
  const to = values.to
  const handler = async (e: StreamEvent): Promise<void> => {
    const body = Buffer.from(JSON.stringify(e.body))
    const backoff = new Backoff({ initialMs: 250, maxMs: 30_000 })
    for (;;) {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'hookrelay-forward', 'hookrelay-seq': String(e.seq) }
      if (scheme !== undefined) {
        Object.assign(headers, signFor({ scheme, secrets: [values.secret!], public_keys: [], tolerance_ms: 300_000 }, body, Date.now(), { id: `msg_forward_${e.seq}`, event: e.event }))
      }
      const { result, latencyMs } = await deliver({ url: to, headers, body, timeoutMs }, agents)
      const what = `${e.seq} ${e.source} ${e.event} ${e.key}`
      if (result.kind === 'delivered') {
        io.out(`${what} -> ${result.status} (${latencyMs} ms)`)
        return
      }
      if (result.kind === 'gone') {
        gone = `${to} answered 410 Gone for seq ${e.seq}; stopping (it stays unacked)`
        throw new Error(gone)
      }
      const wait = result.retryAfterMs ?? backoff.next()
      io.err(`hookrelay: ${what} -> ${result.error}; retrying in ${wait} ms`)
      await sleep(wait, undefined, { signal: stop.signal })
    }
  }
  const sub = subscribe({
    url,
    token,
    consumer: values.consumer,
    sources: list(values.sources),
    events: list(values.events),
    signal: stop.signal,
    handler,
  })
  sub.on('subscribed', (s) => io.err(`hookrelay: forwarding ${url} (consumer ${values.consumer}, after seq ${s.after}) to ${to}`))
  sub.on('disconnected', (d) => io.err(`hookrelay: disconnected (${d.code}${d.reason ? ` ${d.reason}` : ''}); reconnecting in ${d.retryInMs} ms`))
  try {
    await sub.done
    return 0
  } catch (e) {
    if (stop.signal.aborted) return 0
    io.err(`hookrelay: ${gone ?? (e instanceof ClientError ? `${e.message} [${e.code}]` : String(e))}`)
    return 1
  } finally {
    agents.destroy()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}

/** `ws://host:port` or `http://host:port` → `ws://host:port/v1/stream`. */
function streamUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    return raw
  }
  if (u.protocol === 'http:') u.protocol = 'ws:'
  if (u.protocol === 'https:') u.protocol = 'wss:'
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/stream'
  return u.toString()
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  return items.length > 0 ? items : undefined
}
