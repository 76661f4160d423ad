/**
 * An ingest thread (`http.threads` > 1): its own node:http front accepting on
 * the listening socket all ingest threads share, the ingest routes (body
 * read, budget, verify, parse, hash), and a stand-in journal that hands each
 * verified record to the main thread and answers when the main thread says
 * it is durable. Every other route is passed to the main thread
 * (forward.ts); WebSocket upgrades go straight to uWS's private socket.
 * See worker-protocol.ts for the messages and what is shared.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads'
import { RelayError, type ErrorCode } from '../errors.js'
import type { IngestInput, IngestResult } from '../journal/port.js'
import { createVerifier } from '../verify/index.js'
import { HttpFront } from './front.js'
import { Forwarder } from './forward.js'
import { registerSource, type IngestMetrics, type SourceHandle } from './ingest.js'
import { canonicalIp, IngestRateLimiter, isLoopback } from './rate-limit.js'
import { SharedBodyBudget } from './shared-budget.js'
import { carryUpgrade } from './upgrade-carry.js'
import {
  CONTROL_CLOSING,
  CONTROL_CONNECTIONS,
  CONTROL_GENERATION,
  type AppendMsg,
  type BatchMsg,
  type MainMsg,
  type ThreadSettings,
  type WorkerInit,
  type WorkerMsg,
} from './worker-protocol.js'

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal']

const port = parentPort!
const init = workerData as WorkerInit
const control = new Int32Array(init.control)
let applied = Atomics.load(control, CONTROL_GENERATION)
let logLevel = init.logLevel

// What goes to the main thread at the end of this turn.
let batch = emptyBatch()
let bodies: Buffer[] = []
let bodyBytes = 0
let scheduled = false
const counts = new Map<string, [string, number, number]>()

function emptyBatch(): BatchMsg {
  return { t: 'batch', appends: [], bodies: undefined, admits: [], counts: [], latencies: [], logs: [] }
}

function schedule(): void {
  if (scheduled) return
  scheduled = true
  setImmediate(flush)
}

function flush(): void {
  scheduled = false
  const b = batch
  for (const c of counts.values()) b.counts.push(c)
  counts.clear()
  if (b.appends.length + b.admits.length + b.counts.length + b.latencies.length + b.logs.length === 0) return
  let transfer: ArrayBuffer[] = []
  if (bodyBytes > 0) {
    const all = new Uint8Array(bodyBytes)
    let off = 0
    for (const body of bodies) {
      all.set(body, off)
      off += body.length
    }
    b.bodies = all.buffer
    transfer = [all.buffer]
  }
  batch = emptyBatch()
  bodies = []
  bodyBytes = 0
  port.postMessage(b, transfer)
}

function send(msg: WorkerMsg): void {
  port.postMessage(msg)
}

/** Log fields as plain data (an Error's class and extra fields do not survive postMessage). */
function plain(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { type: v.name, message: v.message, code: (v as { code?: unknown }).code, stack: v.stack } : v
  }
  return out
}

function log(level: BatchMsg['logs'][number][0], fields: Record<string, unknown>, msg: string): void {
  batch.logs.push([level, plain(fields), msg])
  schedule()
}

const logger = {
  isLevelEnabled: (level: string) => LEVELS.indexOf(level) >= LEVELS.indexOf(logLevel),
  debug: (fields: Record<string, unknown>, msg: string) => log('debug', fields, msg),
  warn: (fields: Record<string, unknown>, msg: string) => log('warn', fields, msg),
}
const rejects = { warn: (fields: Record<string, unknown>, msg: string) => log('rejects', fields, msg) }

const metrics: IngestMetrics = {
  countRequest(source, status) {
    const k = `${source}\0${status}`
    const c = counts.get(k)
    if (c) c[2]++
    else counts.set(k, [source, status, 1])
    schedule()
  },
  ackLatency: {
    labels: (source) => ({
      observe(v) {
        batch.latencies.push([source, v])
        schedule()
      },
    }),
  },
}

// Answers the main thread owes, by id.
let nextId = 1
const appends = new Map<number, { resolve: (r: IngestResult) => void; reject: (e: unknown) => void }>()
const admits = new Map<number, (wait: number) => void>()

const journal = {
  append(input: IngestInput): Promise<IngestResult> {
    const id = nextId++
    const msg: AppendMsg = {
      id,
      source: input.source,
      event: input.event,
      key: input.key,
      status: input.status,
      sha256: input.sha256,
      receivedAt: input.receivedAt,
      requestId: input.requestId,
      headers: input.headers ?? {},
      off: bodyBytes,
      len: input.body.length,
    }
    batch.appends.push(msg)
    bodies.push(input.body)
    bodyBytes += input.body.length
    schedule()
    return new Promise((resolve, reject) => appends.set(id, { resolve, reject }))
  },
}

let settings: ThreadSettings = init
const limiter = new IngestRateLimiter(init.rateLimit)
const budget = new SharedBodyBudget(init.budget)

function admit(address: string): number | Promise<number> {
  const rl = settings.rateLimit
  if (rl.ingest_per_second <= 0 || (!rl.limit_loopback && isLoopback(address))) return 0
  const id = nextId++
  batch.admits.push([id, address])
  schedule()
  return new Promise((resolve) => admits.set(id, resolve))
}

/** Takes every reload posted so far, when the shared generation says there is one. */
function takeReloads(): void {
  const gen = Atomics.load(control, CONTROL_GENERATION)
  if (gen === applied) return
  for (let m = receiveMessageOnPort(init.reloads); m !== undefined; m = receiveMessageOnPort(init.reloads)) {
    const next = m.message as ThreadSettings
    for (const handle of handles) {
      const source = next.sources.find((s) => s.name === handle.source.name)
      if (source) handle.replace(source, createVerifier(source.verify))
    }
    limiter.update(next.rateLimit)
    logLevel = next.logLevel
    settings = next
  }
  applied = gen
}

const front = new HttpFront({
  log: logger,
  rejects,
  headersTimeoutMs: init.http.header_timeout_ms,
  keepAliveTimeoutMs: init.http.keepalive_timeout_ms,
  requestTimeoutMs: init.http.header_timeout_ms + init.http.body_timeout_ms + 5000,
  beforeRequest: takeReloads,
  stopping: () => Atomics.load(control, CONTROL_CLOSING) === 1,
  onConnection: (delta) => Atomics.add(control, CONTROL_CONNECTIONS, delta),
})
const forwarder = new Forwarder(init.mainPath, init.http.keepalive_timeout_ms)
const peerOf = (req: IncomingMessage): string => canonicalIp(req.socket.remoteAddress ?? '')
front.router.fallback = (req, res) => forwarder.forward(req, res, peerOf(req))
const pairs = new Set<Duplex>()
if (init.streamPath !== undefined) {
  const streamPath = init.streamPath
  for (const path of init.wsPaths) front.upgrade(path, (req, socket, head) => carryUpgrade(streamPath, pairs, req, socket, head, peerOf(req)))
}
const handles: SourceHandle[] = init.sources.map((source) =>
  registerSource(front.router, source, {
    journal,
    metrics,
    log: logger,
    rejects,
    closing: () => Atomics.load(control, CONTROL_CLOSING) === 1,
    admit,
    clientAddress: (peer, headers) => limiter.clientAddress(peer, headers['x-forwarded-for']),
    bodyTimeoutMs: init.http.body_timeout_ms,
    budget,
  }),
)

port.on('message', (msg: MainMsg) => {
  switch (msg.t) {
    case 'results':
      for (const [id, seq, revision, duplicate] of msg.ok) {
        appends.get(id)?.resolve({ seq, revision, duplicate })
        appends.delete(id)
      }
      for (const [id, code, message] of msg.err) {
        appends.get(id)?.reject(code === '' ? new Error(message) : new RelayError(code as ErrorCode, message))
        appends.delete(id)
      }
      for (const [id, wait] of msg.admits) {
        admits.get(id)?.(wait)
        admits.delete(id)
      }
      return
    case 'listen':
      front.listen(msg.host, msg.port, msg.retryMs).then(
        (p) => send({ t: 'listening', port: p, fd: front.fd }),
        (e: unknown) => send({ t: 'failed', code: (e as RelayError).code ?? '', message: (e as Error).message }),
      )
      return
    case 'listen-fd':
      front.listenFd(msg.fd).then(
        (p) => send({ t: 'listening', port: p, fd: msg.fd }),
        (e: unknown) => send({ t: 'failed', code: (e as RelayError).code ?? '', message: (e as Error).message }),
      )
      return
    case 'stop':
      front.stopListening()
      flush()
      send({ t: 'done', id: msg.id })
      return
    case 'close':
      void front.close(msg.graceMs).then(() => {
        for (const h of handles) h.stop()
        limiter.close()
        forwarder.close()
        for (const c of pairs) c.destroy()
        flush()
        send({ t: 'done', id: msg.id })
        init.reloads.close()
        port.close()
      })
      return
    case 'flush':
      flush()
      send({ t: 'done', id: msg.id })
      return
  }
})
