/**
 * Shared fixtures for test/mirror-*.test.ts (not a test file itself): an
 * in-process s3rver on a loopback port, a local "presigned" origin server,
 * and a relay wired with the mirror extension.
 *
 * s3rver stands in for MinIO (no MinIO server is installable here). It lacks
 * ListMultipartUploads and accepts any key and signature-less requests, so the
 * tests prove transfer, idempotence and bookkeeping, not S3 authorization.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Client } from 'minio'
import { pino } from 'pino'
// s3rver ships no types.
// @ts-expect-error no declaration file
import S3rver from 's3rver'
import { loadConfigText } from '../src/config/load.js'
import { testThreads } from './helpers/relay.js'
import type { Config } from '../src/config/types.js'
import type { RunRow } from '../src/journal/port.js'
import { mirrorOf, type MirrorState } from '../src/mirror/run-part.js'
import { mirrorExtension, type MirrorOptions } from '../src/mirror/worker.js'
import { Relay } from '../src/relay.js'
import { signRunflow } from '../src/verify/sign.js'

export const SECRET = 'whsec_mirror_test_secret'
export const TOKEN = 'tok_mirror_test_token_0123456789'
export const BUCKET = 'runflow-outputs'

/** What tap's `t` offers that the fixtures use. */
interface TestLike {
  teardown(fn: () => unknown): void
  testdir(): string
}

const roots = new WeakMap<object, string>()

/**
 * A fresh subdirectory `name` of the test's `t.testdir()`. (Each `t.testdir()`
 * call returns the same directory and empties it, so the S3 store and the
 * relay's data_dir must not each call it.)
 */
export function testDir(t: TestLike, name: string): string {
  let root = roots.get(t)
  if (root === undefined) {
    root = t.testdir()
    roots.set(t, root)
  }
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  return dir
}

// ---------------------------------------------------------------- S3 (s3rver)

export interface S3Fixture {
  port: number
  endpoint: string
  client: Client
  /** Stops the server (an outage); `start()` brings it back on the same port and directory. */
  stop(): Promise<void>
  start(): Promise<void>
  /** Answers the next `n` PUTs with `status` and an S3 error document, without storing anything. */
  rejectPuts(n: number, status: number, code: string): void
  /** Stops the server once the next PUT has sent some of its body: an outage mid-upload. Resolves when stopped. */
  failNextPut(): Promise<void>
  /** Leaves the next object PUT unanswered for good (its body is read and dropped). Resolves once it arrived. */
  holdNextPut(): Promise<void>
  /** HEAD requests for objects (statObject) so far. */
  heads(): number
  /** sha256 and size of a stored object, read back through the S3 API. */
  objectDigest(key: string): Promise<{ sha256: string; size: number; contentType: string | undefined }>
}

export async function startS3(t: TestLike): Promise<S3Fixture> {
  const directory = testDir(t, 's3')
  let port = 0
  let server: { run(): Promise<AddressInfo>; close(): Promise<void> } | undefined
  const sockets = new Set<Socket>()
  let onPut: ((req: IncomingMessage) => void) | undefined
  let reject: { n: number; status: number; code: string } | undefined
  let hold: (() => void) | undefined
  let heads = 0
  const start = async (): Promise<void> => {
    const s = new S3rver({ port, address: '127.0.0.1', directory, silent: true })
    const addr = await s.run()
    port = addr.port
    server = s
    const http = (s as unknown as { httpServer: Server }).httpServer
    http.on('connection', (sock: Socket) => {
      sockets.add(sock)
      sock.on('close', () => sockets.delete(sock))
    })
    http.on('request', (req: IncomingMessage) => {
      // Object PUTs only (`/<bucket>/<key>`), not bucket creation.
      if (req.method === 'PUT' && onPut && /^\/[^/?]+\/[^?]/.test(req.url ?? '')) onPut(req)
      if (req.method === 'HEAD' && /^\/[^/?]+\/[^?]/.test(req.url ?? '')) heads++
    })
    // Put a gate in front of s3rver's own handler.
    const [handler] = http.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>
    http.removeListener('request', handler!)
    http.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'PUT' && hold && /^\/[^/?]+\/[^?]/.test(req.url ?? '')) {
        const arrived = hold
        hold = undefined
        req.resume()
        arrived()
        return
      }
      if (req.method === 'PUT' && reject && reject.n > 0 && /^\/[^/?]+\/[^?]/.test(req.url ?? '')) {
        reject.n--
        req.resume()
        res.writeHead(reject.status, { 'content-type': 'application/xml' })
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${reject.code}</Code><Message>test</Message></Error>`)
        return
      }
      handler!(req, res)
    })
  }
  const stop = async (): Promise<void> => {
    const s = server
    server = undefined
    if (!s) return
    const closed = s.close()
    // An outage drops open connections too (keep-alive and uploads in progress).
    for (const sock of sockets) sock.destroy()
    await closed
  }
  await start()
  t.teardown(stop)
  const client = new Client({
    endPoint: '127.0.0.1',
    port,
    useSSL: false,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    pathStyle: true,
  })
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    client,
    heads: () => heads,
    stop,
    start,
    rejectPuts(n, status, code) {
      reject = { n, status, code }
    },
    holdNextPut() {
      return new Promise((resolve) => (hold = resolve))
    },
    failNextPut() {
      return new Promise((resolve) => {
        onPut = (req) => {
          onPut = undefined
          req.once('data', () => void stop().then(resolve))
        }
      })
    },
    async objectDigest(key) {
      const stream = await client.getObject(BUCKET, key)
      const hash = createHash('sha256')
      let size = 0
      for await (const c of stream as AsyncIterable<Buffer>) {
        hash.update(c)
        size += c.length
      }
      const stat = await client.statObject(BUCKET, key)
      return { sha256: hash.digest('hex'), size, contentType: stat.metaData['content-type'] as string | undefined }
    },
  }
}

// ---------------------------------------------------------------- origin

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface Origin {
  port: number
  /** Serves `path` (without query) with `handler`. */
  route(path: string, handler: Handler): void
  /** Serves fixed bytes at `path`. */
  file(path: string, body: Buffer, contentType?: string): void
  /** Requests seen per path. */
  hits(path: string): number
  /** A presigned-looking URL for `path` on this origin, valid `expiresS` from `signedAt`. */
  url(path: string, opts?: { signedAt?: number; expiresS?: number }): string
  /** Resolves when `path` has been requested `n` times. */
  waitForHits(path: string, n: number): Promise<void>
  /** Every socket the server accepted (proves whether a connection happened). */
  connections: number
}

export async function startOrigin(t: TestLike): Promise<Origin> {
  const routes = new Map<string, Handler>()
  const counts = new Map<string, number>()
  const waiters: Array<{ path: string; n: number; resolve: () => void }> = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').replace(/\?.*$/s, '')
    counts.set(path, (counts.get(path) ?? 0) + 1)
    for (const w of [...waiters]) {
      if (w.path === path && (counts.get(path) ?? 0) >= w.n) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
    const h = routes.get(path)
    if (h) h(req, res)
    else res.writeHead(404).end()
  })
  const origin: Origin = {
    port: 0,
    connections: 0,
    route: (path, handler) => routes.set(path, handler),
    file(path, body, contentType = 'application/octet-stream') {
      routes.set(path, (_req, res) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': body.length }).end(body)
      })
    },
    hits: (path) => counts.get(path) ?? 0,
    url(path, opts = {}) {
      const signedAt = opts.signedAt ?? Date.now()
      const amzDate = new Date(signedAt).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
      return (
        `http://127.0.0.1:${origin.port}${path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260506%2Fus-east-1%2Fs3%2Faws4_request` +
        `&X-Amz-Date=${amzDate}&X-Amz-Expires=${opts.expiresS ?? 3600}&X-Amz-SignedHeaders=host&X-Amz-Signature=${randomBytes(32).toString('hex')}`
      )
    },
    waitForHits(path, n) {
      if ((counts.get(path) ?? 0) >= n) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ path, n, resolve }))
    },
  }
  server.on('connection', (s: Socket) => {
    origin.connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin.port = (server.address() as AddressInfo).port
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return origin
}

// ---------------------------------------------------------------- relay

export interface MirrorConfigOverrides {
  max_bytes?: string
  concurrency?: number
  timeouts?: { connect?: string; headers?: string; total?: string }
  selectors?: string[]
  allow_hosts?: string[]
}

export function mirrorConfig(dataDir: string, s3Endpoint: string, o: MirrorConfigOverrides = {}): Config {
  return loadConfigText(mirrorConfigYaml(dataDir, s3Endpoint, o), '<mirror-test>', { env: {} })
}

/** The YAML of `mirrorConfig` (for a relay in its own process: `log` is then `info`, which it needs to say it listens). */
export function mirrorConfigYaml(dataDir: string, s3Endpoint: string, o: MirrorConfigOverrides & { log?: 'silent' | 'info' } = {}): string {
  const timeouts = { connect: '2s', headers: '5s', total: '60s', ...o.timeouts }
  return `
listen: { host: 127.0.0.1, port: 0 }
data_dir: ${JSON.stringify(dataDir)}
sources:
  runflow:
    path: /webhook/runflow
    verify: { scheme: runflow, secrets: [${JSON.stringify(SECRET)}] }
    max_body: 5mb
subscribers:
  - name: app
    token: ${TOKEN}
    sources: ["*"]
mirror:
  enabled: true
  endpoint: ${s3Endpoint}
  access_key: S3RVER
  secret_key: S3RVER
  bucket: ${BUCKET}
  allow_hosts: ${JSON.stringify(o.allow_hosts ?? ['127.0.0.1'])}
  selectors: ${JSON.stringify(o.selectors ?? [])}
  concurrency: ${o.concurrency ?? 2}
  max_bytes: ${o.max_bytes ?? '1gb'}
  timeouts: { connect: ${timeouts.connect}, headers: ${timeouts.headers}, total: ${timeouts.total} }
log: { level: ${o.log ?? 'silent'} }
http: { threads: ${testThreads()} }
`
}

/** A log sink: JSON lines, awaitable by message. */
export class LogSink extends Writable {
  readonly lines: Array<Record<string, unknown>> = []
  #waiters: Array<{ msg: string; n: number; resolve: () => void }> = []
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue
      this.lines.push(JSON.parse(line) as Record<string, unknown>)
    }
    for (const w of [...this.#waiters]) {
      if (this.count(w.msg) >= w.n) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1)
        w.resolve()
      }
    }
    cb()
  }
  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length
  }
  /** Resolves once `msg` has been logged `n` times. */
  waitFor(msg: string, n = 1): Promise<void> {
    if (this.count(msg) >= n) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ msg, n, resolve }))
  }
}

export interface StartedRelay {
  relay: Relay
  base: string
  log: LogSink
}

export async function startRelay(t: TestLike, config: Config, opts: MirrorOptions = {}): Promise<StartedRelay> {
  const log = new LogSink()
  const relay = await Relay.start(config, {
    extensions: [mirrorExtension({ retryBaseMs: 50, retryMaxMs: 500, ...opts })],
    logger: pino({ level: 'warn' }, log),
    processMetrics: false,
  })
  t.teardown(() => relay.close())
  return { relay, base: `http://127.0.0.1:${relay.port}`, log }
}

/** Posts a signed Runflow callback; resolves with the ingest answer. */
export async function postCallback(base: string, body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}/webhook/runflow`, {
    method: 'POST',
    headers: { ...signRunflow(SECRET, body), 'content-type': 'application/json' },
    body,
  })
  return { status: res.status, json: await res.json() }
}

/** A run row with the mirror's part of it at hand, as the mirror tests look at it. */
export type MirroredRow = RunRow & { mirror: MirrorState }

/** The run row and its mirror part, or undefined. */
export async function mirroredRow(relay: Relay, id: string, source = 'runflow'): Promise<MirroredRow | undefined> {
  const row = await relay.journal.getRun(source, id)
  return row && { ...row, mirror: mirrorOf(row) }
}

/** Resolves with the run row once `done(row)` holds, checking after every journal commit. */
export function waitForRow(relay: Relay, id: string, done: (row: MirroredRow) => boolean, source = 'runflow'): Promise<MirroredRow> {
  return new Promise((resolve, reject) => {
    let found = false
    const check = async (): Promise<void> => {
      const row = await mirroredRow(relay, id, source)
      if (found || !row || !done(row)) return
      found = true
      off()
      resolve(row)
    }
    const off = relay.journal.onCommit(() => void check().catch(reject))
    void check().catch(reject)
  })
}

/** Mirror settled: no object pending. */
export const settled = (row: MirroredRow): boolean => row.mirror.state !== 'pending' && row.mirror.objects.length > 0

/** `GET /v1/runs/runflow/<id>` with the subscriber token. */
export async function getRun(base: string, id: string): Promise<RunJson> {
  const res = await fetch(`${base}/v1/runs/runflow/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  if (res.status !== 200) throw new Error(`GET run ${id}: ${res.status} ${await res.text()}`)
  return (await res.json()) as RunJson
}

export interface RunJson {
  id: string
  revision: number
  mirror: {
    state: string
    objects: Array<{
      index: number
      url: string
      state: string
      bucket?: string
      key?: string
      size?: number
      sha256?: string
      content_type?: string
      reason?: { code: string; message: string }
    }>
  }
}

/** Journal events of the given kind, through `GET /v1/events`. */
export async function eventsOf(base: string, event: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = []
  let after = 0
  for (;;) {
    const res = await fetch(`${base}/v1/events?after=${after}&limit=1000`, { headers: { authorization: `Bearer ${TOKEN}` } })
    const page = (await res.json()) as { next: number; head: number; events: Array<{ event: string; body: Record<string, unknown> }> }
    for (const e of page.events) if (e.event === event) out.push(e.body)
    if (page.next >= page.head || page.events.length === 0) return out
    after = page.next
  }
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/** A Runflow run.completed callback with the given output. */
export function runCallback(runId: string, output: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    event: 'run.completed',
    run_id: runId,
    status: 'succeeded',
    output,
    duration_ms: 1234,
    created_at: '2026-05-06T10:00:00.000+00:00',
    completed_at: '2026-05-06T10:00:01.234+00:00',
    metadata: null,
    ...extra,
  })
}
