// Fast unit tests of the mirror's retry loop: a MirrorWorker on the in-memory
// journal port, a fake object store and a fake origin connection (no S3, no
// network). The black-box tests (mirror-relay, mirror-recovery, …) run the
// same worker against s3rver and real origins.
import { hash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { RelayError } from '../src/errors.js'
import type { ConnectTarget, Connector } from '../src/mirror/fetch.js'
import { MirrorMetrics } from '../src/mirror/mirror-metrics.js'
import { createOutbox, MIRROR_QUEUE } from '../src/mirror/outbox.js'
import { mirrorOf, type MirrorState } from '../src/mirror/run-part.js'
import { HostGuard } from '../src/mirror/ssrf.js'
import { MirrorWorker, type WorkerDeps } from '../src/mirror/worker.js'
import { MemoryJournal } from './helpers/memory-journal.js'
import { silent, testConfig } from './helpers/relay.js'

const HOST = 'files.example'

/** One origin connection: answers the request written to it with `respond(path)` (raw HTTP/1.1). */
class FakeConnection extends Duplex {
  #respond: ((path: string) => string) | undefined
  #request = ''
  constructor(respond: (path: string) => string) {
    super()
    this.#respond = respond
    setImmediate(() => this.emit('connect'))
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.#request += chunk.toString()
    if (this.#request.includes('\r\n\r\n') && this.#respond !== undefined) {
      const path = this.#request.split(' ')[1]!
      this.push(this.#respond(path))
      this.#respond = undefined
      this.push(null)
    }
    cb()
  }
  override _read(): void {}
  setTimeout(): this {
    return this
  }
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`
const status = (code: number) => `HTTP/1.1 ${code} Nope\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`

/** An origin whose answers to each path are played in order (the last one repeats); `requests` lists the paths asked for. */
function origin(answers: Record<string, string[]>): { connect: Connector; targets: ConnectTarget[]; requests: string[] } {
  const targets: ConnectTarget[] = []
  const requests: string[] = []
  return {
    targets,
    requests,
    connect: (target) => {
      targets.push(target)
      return new FakeConnection((path) => {
        requests.push(path)
        const list = answers[path.replace(/\?.*$/, '')] ?? [status(404)]
        const n = requests.filter((p) => p === path).length
        return list[Math.min(n - 1, list.length - 1)]!
      }) as unknown as ReturnType<Connector>
    },
  }
}

/** A store whose first `failures` uploads fail as an unreachable store would. */
function store(failures: number) {
  const objects = new Map<string, { body: string; contentType: string }>()
  let uploads = 0
  /** Where each upload's bytes came from: the spool file or memory. */
  const sources: Array<'file' | 'memory'> = []
  return {
    objects,
    sources,
    get uploads() {
      return uploads
    },
    fake: {
      bucket: 'outputs',
      ensureBucket: async () => undefined,
      confirm: async () => undefined,
      upload: async (key: string, source: string | Buffer, size: number, contentType: string) => {
        uploads++
        sources.push(typeof source === 'string' ? 'file' : 'memory')
        if (uploads <= failures) throw new RelayError('HOOKRELAY_MIRROR_STORE_UNAVAILABLE', `upload of ${key} failed: connection refused`)
        objects.set(key, { body: typeof source === 'string' ? readFileSync(source, 'utf8') : source.toString('utf8'), contentType })
        return { bucket: 'outputs', key, size, etag: 'x' }
      },
    } as unknown as WorkerDeps['store'],
  }
}

function setup(t: Test, o: { connect: Connector }, s: WorkerDeps['store']) {
  const dir = t.testdir()
  const cfg = testConfig(dir, `mirror:\n  enabled: true\n  endpoint: http://127.0.0.1:9\n  access_key: k\n  secret_key: s\n  bucket: outputs\n  allow_hosts: ["${HOST}"]\n`).mirror
  const journal = new MemoryJournal()
  const registry = new Registry()
  const worker = new MirrorWorker({
    cfg,
    journal,
    store: s,
    log: silent,
    guard: new HostGuard(cfg.allow_hosts, async () => [{ address: '192.0.2.10', family: 4 }]),
    spoolDir: join(dir, 'spool'),
    opts: { connect: o.connect, retryBaseMs: 1, retryMaxMs: 4 },
  })
  worker.bucketReady = true
  worker.metrics = new MirrorMetrics(registry, () => worker.snapshot())
  journal.openQueue(MIRROR_QUEUE)
  journal.addAppendHook(createOutbox({ selectors: cfg.selectors, defaultDeadlineMs: cfg.default_deadline_ms, onJobs: () => worker.notePending() }))
  journal.onCommit(() => worker.afterCommit())
  // The worker's timers are unref'd (in a relay its listener keeps the process up): hold it open meanwhile.
  const alive = setInterval(() => undefined, 60_000)
  t.teardown(async () => {
    clearInterval(alive)
    await worker.close()
    await journal.close()
  })
  return { journal, worker, registry }
}

function callback(runId: string, urls: string[]) {
  const body = Buffer.from(JSON.stringify({ event: 'run.completed', run_id: runId, status: 'succeeded', output: { files: urls } }))
  return {
    source: 'runflow',
    event: 'run.completed',
    key: runId,
    status: 'succeeded',
    body,
    sha256: hash('sha256', body, 'hex'),
    receivedAt: Date.now(),
    requestId: undefined,
    json: JSON.parse(body.toString()) as unknown,
  }
}

/** Resolves with the run's mirror state once nothing is pending, checking after every commit. */
function settledMirror(journal: MemoryJournal, runId: string): Promise<MirrorState> {
  return new Promise((resolve, reject) => {
    const check = async (): Promise<void> => {
      const row = await journal.getRun('runflow', runId)
      const m = row && mirrorOf(row)
      if (m && m.objects.length > 0 && m.state !== 'pending') {
        off()
        resolve(m)
      }
    }
    const off = journal.onCommit(() => void check().catch(reject))
  })
}

async function metric(registry: Registry, line: string): Promise<number | undefined> {
  const text = await registry.metrics()
  const m = new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : undefined
}

t.test('an origin error and a store outage are retried with backoff until the object is stored; one download once it is spooled', async (t) => {
  const o = origin({ '/out/a.txt': [status(503), ok('hello')] })
  const s = store(2)
  const { journal, worker, registry } = setup(t, o, s.fake)
  await worker.start()
  const done = settledMirror(journal, 'run-1')
  await journal.append(callback('run-1', [`https://${HOST}/out/a.txt`]))
  const m = await done
  t.equal(m.state, 'completed')
  t.match(m.objects, [{ index: 0, state: 'completed', bucket: 'outputs', size: 5, sha256: hash('sha256', 'hello', 'hex') }])
  t.same(o.requests, ['/out/a.txt', '/out/a.txt'], 'downloaded again only after the origin failed; the spooled bytes served the upload retries')
  t.match(o.targets[0], { address: '192.0.2.10', port: 443, tls: true, servername: HOST }, 'connected to the address the guard checked')
  t.equal(s.uploads, 3, 'two failed uploads, then the one that went through')
  t.same(s.sources, ['memory', 'file', 'file'], 'the small object went up from memory; once that failed, its bytes were spooled for the retries')
  t.equal([...s.objects.values()][0]?.body, 'hello')
  t.same(await journal.jobs(MIRROR_QUEUE), [], 'the job went with the mirror.completed entry')
  const events = (await journal.read(0, 10)).map((e) => e.event)
  t.same(events, ['run.completed', 'mirror.completed'])
  t.equal(await metric(registry, 'hookrelay_mirror_attempts_total{outcome="retry"}'), 3, 'origin 503, then two store failures')
  t.equal(await metric(registry, 'hookrelay_mirror_attempts_total{outcome="ok"}'), 1)
  t.equal(await metric(registry, 'hookrelay_mirror_objects_total{result="completed"}'), 1)
})

t.test('gone (404) after its deadline, gone twice before it, and refused: each object fails with its code and reason', async (t) => {
  const o = origin({ '/out/old.txt': [status(404)], '/out/gone.txt': [status(404)] })
  const s = store(0)
  const { journal, worker, registry } = setup(t, o, s.fake)
  await worker.start()
  const done = settledMirror(journal, 'run-2')
  const expired = `https://${HOST}/out/old.txt?Expires=${Math.floor(Date.now() / 1000) - 60}`
  await journal.append(callback('run-2', [expired, `https://${HOST}/out/gone.txt`, 'https://elsewhere.example/x.txt']))
  const m = await done
  t.equal(m.state, 'failed')
  t.match(m.objects, [
    { index: 0, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: /^expired: / } },
    { index: 1, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: /2 times/ } },
    { index: 2, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_URL_REFUSED', message: /not in mirror.allow_hosts/ } },
  ])
  t.same(o.requests.sort(), ['/out/gone.txt', '/out/gone.txt', `/out/old.txt?Expires=${expired.split('=')[1]}`], 'the refused host was never connected to')
  t.equal(s.uploads, 0)
  t.same(await journal.jobs(MIRROR_QUEUE), [])
  t.same((await journal.read(0, 10)).map((e) => e.event), ['run.completed', 'mirror.failed', 'mirror.failed', 'mirror.failed'])
  t.equal(await metric(registry, 'hookrelay_mirror_attempts_total{outcome="retry"}'), 1, 'the first 404 before the deadline')
  t.equal(await metric(registry, 'hookrelay_mirror_attempts_total{outcome="failed"}'), 3)
  t.equal(await metric(registry, 'hookrelay_mirror_objects_total{result="failed"}'), 3)
})

t.test('an outcome the journal refuses to record is retried from the spool, without a second download', async (t) => {
  const o = origin({ '/out/c.txt': [ok('abc')] })
  const s = store(0)
  const { journal, worker, registry } = setup(t, o, s.fake)
  let refusals = 0
  journal.addAppendHook((ctx) => {
    if (ctx.event === 'mirror.completed' && refusals++ === 0) throw new Error('refused by a test hook')
  })
  await worker.start()
  const done = settledMirror(journal, 'run-3')
  await journal.append(callback('run-3', [`https://${HOST}/out/c.txt`]))
  const m = await done
  t.equal(m.state, 'completed')
  t.equal(refusals, 2, 'the first record was refused, the second stored')
  t.same(o.requests, ['/out/c.txt'], 'downloaded once: the retry uploaded the spooled file')
  t.equal(s.uploads, 2)
  t.same(s.sources, ['memory', 'file'], 'held in memory at first; spooled when its record failed')
  t.same(await journal.jobs(MIRROR_QUEUE), [])
  t.same((await journal.read(0, 10)).map((e) => e.event), ['run.completed', 'mirror.completed'], 'the refused entry left no trace')
  t.equal(await metric(registry, 'hookrelay_mirror_attempts_total{outcome="retry"}'), 1)
})
