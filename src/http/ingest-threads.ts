/**
 * The main thread's side of `http.threads` > 1: starts the ingest threads
 * (worker.ts), has the first bind the public port (exclusively, as one thread
 * would) and the others accept on the same socket, journals the records they
 * hand over (the journal's own group commit: one writer) and answers each
 * once it is durable, and applies their rate-limit questions, metrics and log
 * lines here, so that each is decided, counted and rate-limited once.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type { Config, HttpConfig } from '../config/types.js'
import { RelayError, type ErrorCode } from '../errors.js'
import type { IngestInput, IngestResult, JournalPort } from '../journal/port.js'
import type { Logger, RejectLog } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { IngestRateLimiter } from './rate-limit.js'
import type { SharedBodyBudget } from './shared-budget.js'
import {
  CONTROL_CLOSING,
  CONTROL_CONNECTIONS,
  CONTROL_GENERATION,
  CONTROL_SLOTS,
  type AppendMsg,
  type BatchMsg,
  type MainMsg,
  type ThreadSettings,
  type WorkerInit,
  type WorkerMsg,
} from './worker-protocol.js'

/** `http.threads: auto` uses the cores, at most this many. */
export const MAX_AUTO_THREADS = 8

/** How long a closing ingest thread may take to exit before it is terminated. */
const EXIT_WAIT_MS = 5000

/**
 * The worker's entry next to this module: worker.js in dist/. Run from the
 * TypeScript sources (the tests, under tap's loader), a worker would load the
 * TypeScript compiler again, seconds per thread on a busy machine: it runs
 * the built dist/http/worker.js instead when dist/ is at least as new as every
 * file in src/, and worker.ts through the inherited loader otherwise.
 */
function workerEntry(): { file: URL; execArgv: string[] | undefined } {
  const here = fileURLToPath(import.meta.url)
  if (!here.endsWith('.ts')) return { file: new URL('./worker.js', import.meta.url), execArgv: undefined }
  const src = join(dirname(here), '..')
  const built = join(src, '..', 'dist', 'http', 'worker.js')
  if (existsSync(built) && newestMtime(src) <= statSync(built).mtimeMs) return { file: pathToFileURL(built), execArgv: [] }
  return { file: new URL('./worker.ts', import.meta.url), execArgv: undefined }
}

function newestMtime(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** The number of ingest threads a config asks for (1 = the main thread alone, no worker). */
export function ingestThreadCount(config: Pick<Config, 'http'>): number {
  const t = config.http.threads
  return t === 'auto' ? Math.max(1, Math.min(availableParallelism(), MAX_AUTO_THREADS)) : t
}

/** What the ingest threads may be reloaded with, from a config. */
export function threadSettings(config: Config): ThreadSettings {
  return { sources: Object.values(config.sources), rateLimit: config.rate_limit, logLevel: config.log.level }
}

export interface IngestThreadsOptions {
  count: number
  journal: Pick<JournalPort, 'append'>
  metrics: Metrics
  log: Logger
  rejects: RejectLog
  rateLimiter: IngestRateLimiter
  budget: SharedBodyBudget
  settings: ThreadSettings
  http: HttpConfig
  /** The main thread's private listener for every other route. */
  mainPath: string
  streamPath: string | undefined
  wsPaths: string[]
  /** An ingest thread died: the shared listening socket is gone with it. */
  onFatal: (err: Error) => void
}

/** A record handed over by an ingest thread; its body is a view of the batch's transferred buffer. */
class HandedInput implements IngestInput {
  source: string
  event: string
  key: string
  status: string | undefined
  body: Buffer
  sha256: string
  receivedAt: number
  requestId: string | undefined
  headers: Record<string, string>
  #json: unknown

  constructor(a: AppendMsg, bodies: ArrayBuffer) {
    this.source = a.source
    this.event = a.event
    this.key = a.key
    this.status = a.status
    this.body = Buffer.from(bodies, a.off, a.len)
    this.sha256 = a.sha256
    this.receivedAt = a.receivedAt
    this.requestId = a.requestId
    this.headers = a.headers
  }

  /** Parsed again only when an append hook asks (the ingest thread has checked it is a JSON object). */
  get json(): unknown {
    this.#json ??= JSON.parse(this.body.toString('utf8'))
    return this.#json
  }
}

interface Thread {
  worker: Worker
  reloads: MessagePort
  reply: Extract<MainMsg, { t: 'results' }>
  scheduled: boolean
  exited: Promise<void>
  gone: boolean
  /** The waiter of the listen asked of this thread ('listening' and 'failed' carry no id: one listen at a time). */
  listenWaiter?: number
}

export class IngestThreads {
  #opts: IngestThreadsOptions
  #threads: Thread[] = []
  #control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4))
  #waiters = new Map<number, (m: WorkerMsg) => void>()
  #nextId = 1
  #port = 0
  #closing = false
  #latency = new Map<string, { observe(v: number): void }>()

  constructor(opts: IngestThreadsOptions) {
    this.#opts = opts
    const { file, execArgv } = workerEntry()
    for (let index = 0; index < opts.count; index++) {
      const { port1, port2 } = new MessageChannel()
      const init: WorkerInit = {
        ...opts.settings,
        index,
        http: opts.http,
        control: this.#control.buffer as SharedArrayBuffer,
        budget: opts.budget.memory,
        reloads: port2,
        mainPath: opts.mainPath,
        streamPath: opts.streamPath,
        wsPaths: opts.wsPaths,
      }
      const worker = new Worker(file, { workerData: init, transferList: [port2], name: `hookrelay-ingest-${index}`, ...(execArgv ? { execArgv } : {}) })
      const t: Thread = {
        worker,
        reloads: port1,
        reply: { t: 'results', ok: [], err: [], admits: [] },
        scheduled: false,
        gone: false,
        exited: new Promise((resolve) => worker.once('exit', () => resolve())),
      }
      worker.on('message', (m: WorkerMsg) => this.#message(t, m))
      worker.on('error', (err) => {
        opts.log.error({ err, thread: index }, 'ingest thread failed')
        t.gone = true
        if (!this.#closing) opts.onFatal(err)
      })
      worker.once('exit', (code) => {
        t.gone = true
        if (!this.#closing) opts.onFatal(new Error(`ingest thread ${index} exited (${code})`))
      })
      this.#threads.push(t)
    }
  }

  get port(): number {
    return this.#port
  }

  /** Public connections open on all ingest threads. */
  get connections(): number {
    return Atomics.load(this.#control, CONTROL_CONNECTIONS)
  }

  get count(): number {
    return this.#threads.length
  }

  /** The first thread binds `host:port` exclusively (retrying a held port); the others accept on its socket. */
  async listen(host: string, port: number, retryMs: number): Promise<number> {
    const [first, ...rest] = this.#threads
    const bound = await this.#ask(first!, () => ({ t: 'listen', host, port, retryMs }), true)
    if (bound.t !== 'listening') throw new RelayError((bound as { code: ErrorCode }).code || 'HOOKRELAY_HTTP_LISTEN', (bound as { message: string }).message)
    await Promise.all(
      rest.map(async (t) => {
        const m = await this.#ask(t, () => ({ t: 'listen-fd', fd: bound.fd }), true)
        if (m.t !== 'listening') throw new RelayError('HOOKRELAY_HTTP_LISTEN', (m as { message: string }).message)
      }),
    )
    this.#port = bound.port
    return bound.port
  }

  /** Posts the new settings, then bumps the generation: a request that starts after this returns is checked with them. */
  reload(settings: ThreadSettings): void {
    for (const t of this.#threads) t.reloads.postMessage(settings)
    Atomics.add(this.#control, CONTROL_GENERATION, 1)
  }

  /** New callbacks are answered 503 from now on, on every thread. */
  setClosing(): void {
    this.#closing = true
    Atomics.store(this.#control, CONTROL_CLOSING, 1)
  }

  /** Every thread stops accepting and closes its idle connections. */
  async stopListening(): Promise<void> {
    await Promise.all(this.#threads.map((t) => this.#done(t, (id) => ({ t: 'stop', id }))))
  }

  /** Every thread waits up to `graceMs` for its open connections, closes them and exits. */
  async close(graceMs: number): Promise<void> {
    this.setClosing()
    await Promise.all(this.#threads.map((t) => this.#done(t, (id) => ({ t: 'close', id, graceMs }))))
    await Promise.all(
      this.#threads.map(async (t) => {
        const timer = setTimeout(() => void t.worker.terminate(), EXIT_WAIT_MS)
        await t.exited
        clearTimeout(timer)
        t.reloads.close()
      }),
    )
  }

  /** Has every thread send the answers it counted so far (before a metrics scrape). */
  async flushMetrics(): Promise<void> {
    await Promise.all(this.#threads.map((t) => this.#done(t, (id) => ({ t: 'flush', id }))))
  }

  #done(t: Thread, msg: (id: number) => MainMsg): Promise<unknown> {
    return t.gone ? Promise.resolve() : this.#ask(t, msg)
  }

  /** Posts `msg(id)` and resolves with the thread's answer to it ('done' with that id, or 'listening'/'failed' for a listen). */
  #ask(t: Thread, msg: (id: number) => MainMsg, listen = false): Promise<WorkerMsg> {
    const id = this.#nextId++
    return new Promise((resolve) => {
      if (t.gone) return resolve({ t: 'failed', code: '', message: 'the ingest thread is gone' })
      this.#waiters.set(id, resolve)
      if (listen) t.listenWaiter = id
      const onExit = (): void => {
        if (this.#waiters.delete(id)) resolve({ t: 'failed', code: '', message: 'the ingest thread exited' })
      }
      void t.exited.then(onExit)
      t.worker.postMessage(msg(id))
    })
  }

  #message(t: Thread, m: WorkerMsg): void {
    switch (m.t) {
      case 'batch':
        return this.#batch(t, m)
      case 'done': {
        const w = this.#waiters.get(m.id)
        this.#waiters.delete(m.id)
        return w?.(m)
      }
      case 'listening':
      case 'failed': {
        const id = t.listenWaiter
        t.listenWaiter = undefined
        if (id === undefined) return
        const w = this.#waiters.get(id)
        this.#waiters.delete(id)
        return w?.(m)
      }
    }
  }

  #batch(t: Thread, m: BatchMsg): void {
    const { journal, metrics, log, rejects, rateLimiter } = this.#opts
    for (const a of m.appends) {
      journal.append(new HandedInput(a, m.bodies!)).then(
        (r: IngestResult) => this.#answer(t, () => t.reply.ok.push([a.id, r.seq, r.revision, r.duplicate])),
        (e: unknown) =>
          this.#answer(t, () => t.reply.err.push([a.id, e instanceof RelayError ? e.code : '', e instanceof Error ? e.message : String(e)])),
      )
    }
    if (m.admits.length > 0) this.#answer(t, () => { for (const [id, address] of m.admits) t.reply.admits.push([id, rateLimiter.admit(address)]) })
    for (const [source, status, n] of m.counts) metrics.requests.labels(source, String(status)).inc(n)
    for (const [source, v] of m.latencies) {
      let h = this.#latency.get(source)
      if (h === undefined) this.#latency.set(source, (h = metrics.ackLatency.labels(source)))
      h.observe(v)
    }
    for (const [level, fields, msg] of m.logs) {
      if (level === 'rejects') rejects.warn(fields, msg)
      else log[level](fields, msg)
    }
  }

  /** Queues an answer for `t`; everything queued in this turn goes in one message. */
  #answer(t: Thread, add: () => void): void {
    add()
    if (t.scheduled) return
    t.scheduled = true
    setImmediate(() => {
      t.scheduled = false
      const reply = t.reply
      t.reply = { t: 'results', ok: [], err: [], admits: [] }
      if (!t.gone) t.worker.postMessage(reply)
    })
  }
}
