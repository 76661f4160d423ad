/**
 * Shared fixtures for test/destinations*.test.ts and test/forward*.test.ts
 * (not a test file itself): a real node:http handler on a loopback port that
 * answers as each test scripts it and records what it got, and a relay
 * started with the destinations extension and a log that tests can read.
 */
import { once } from 'node:events'
import { EventEmitter } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { loadConfigText } from '../src/config/load.js'
import type { DestinationsComponent } from '../src/destinations/index.js'
import { destinationsExtension } from '../src/destinations/index.js'
import type { AttemptRecord } from '../src/destinations/store.js'
import type { DestinationWorker } from '../src/destinations/worker.js'
import type { Extension } from '../src/extension.js'
import { Relay } from '../src/relay.js'
import { testConfigYaml, TOKEN } from './helpers/relay.js'

export const OPERATOR_TOKEN = 'hr_test_token_operator'
export { TOKEN as READER_TOKEN }

interface TestLike {
  teardown(fn: () => unknown): void
  testdir(): string
}

export interface Received {
  n: number
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer
  /** The client's port: the same for requests over one kept-alive connection. */
  remotePort: number | undefined
}

/** What the handler does with a request: answer, hang (never answer), or drop the connection. */
export type Script = (r: Received) => { status: number; headers?: Record<string, string> } | 'hang' | 'drop'

export interface Handler {
  url: string
  port: number
  received: Received[]
  events: EventEmitter<{ request: [Received] }>
  /** Replaces the script. */
  script: Script
  /** Resolves with the first request (from now on) that `pred` accepts. */
  next(pred?: (r: Received) => boolean): Promise<Received>
}

/** A destination handler on 127.0.0.1:0, closed (hanging requests dropped) at teardown. */
export async function startHandler(t: TestLike, script: Script = () => ({ status: 200 }), port = 0): Promise<Handler> {
  const sockets = new Set<Socket>()
  const events = new EventEmitter<{ request: [Received] }>()
  const received: Received[] = []
  const h: Handler = {
    url: '',
    port: 0,
    received,
    events,
    script,
    next(pred = () => true) {
      return new Promise((resolve) => {
        const on = (r: Received): void => {
          if (!pred(r)) return
          events.off('request', on)
          resolve(r)
        }
        events.on('request', on)
      })
    },
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r: Received = { n: received.length + 1, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), remotePort: req.socket.remotePort }
      received.push(r)
      const action = h.script(r)
      events.emit('request', r)
      if (action === 'hang') return
      if (action === 'drop') {
        req.socket.destroy()
        return
      }
      res.writeHead(action.status, { 'content-type': 'text/plain', ...action.headers })
      res.end('ok')
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  h.port = (server.address() as AddressInfo).port
  h.url = `http://127.0.0.1:${h.port}/webhook/runflow`
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((r) => server.close(r))
  })
  return h
}

/** The test config with an operator subscriber beside the reader `app`, and `destinations` YAML appended. */
export function destinationConfigYaml(dir: string, destinations: string, extra = ''): string {
  return testConfigYaml(dir, `${extra}\n${destinations}`).replace(
    'subscribers:\n',
    `subscribers:\n  - name: ops\n    token: ${OPERATOR_TOKEN}\n    role: operator\n`,
  )
}

/** Log lines the relay wrote (pino JSON, parsed). */
export type LogLines = Array<{ level: number; msg: string; destination?: string; [k: string]: unknown }>

export interface DestinationRelay {
  relay: Relay
  base: string
  dir: string
  logs: LogLines
  worker(name?: string): DestinationWorker
}

/** Starts a relay with the destinations extension (and any others) on `dir`, closed at teardown. */
export async function startDestinationRelay(
  t: TestLike,
  destinations: string,
  opts: { dir?: string; extensions?: Extension[]; port?: number } = {},
): Promise<DestinationRelay> {
  const dir = opts.dir ?? t.testdir()
  let yaml = destinationConfigYaml(dir, destinations)
  if (opts.port !== undefined) yaml = yaml.replace('port: 0', `port: ${opts.port}`)
  const config = loadConfigText(yaml, '<test>', { env: {} })
  const logs: LogLines = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLines[number])
      cb()
    },
  })
  const relay = await Relay.start(config, {
    logger: pino({ level: 'info' }, sink),
    processMetrics: false,
    extensions: [...(opts.extensions ?? []), destinationsExtension()],
  })
  t.teardown(() => relay.close())
  return {
    relay,
    base: `http://127.0.0.1:${relay.port}`,
    dir,
    logs,
    worker(name = 'app') {
      const w = relay.component<DestinationsComponent>('destinations')?.workers.get(name)
      if (w === undefined) throw new Error(`no destination ${name}`)
      return w
    },
  }
}

/** Resolves with the first attempt record (from now on) that `pred` accepts. */
export function nextAttempt(w: DestinationWorker, pred: (a: AttemptRecord) => boolean = () => true): Promise<AttemptRecord> {
  return new Promise((resolve) => {
    const on = (a: AttemptRecord): void => {
      if (!pred(a)) return
      w.off('attempt', on)
      resolve(a)
    }
    w.on('attempt', on)
  })
}

/** Resolves once `count` attempts with outcome `delivered` were recorded (from now on). */
export function deliveredCount(w: DestinationWorker, count: number): Promise<void> {
  let n = 0
  return new Promise((resolve) => {
    const on = (a: AttemptRecord): void => {
      if (a.outcome === 'delivered' && ++n === count) {
        w.off('attempt', on)
        resolve()
      }
    }
    w.on('attempt', on)
  })
}

export async function api(base: string, path: string, token: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
}
