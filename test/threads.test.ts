// Ingest on two threads (http.threads: 2), black-box: the ingest contract, the
// routes served by the main thread behind the ingest threads, reload, rate
// limit, body budget and metrics across threads; then the built relay in its
// own process: fail-stop 503 from every thread, SIGKILL mid-load, SIGTERM drain.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fanoutExtension } from '../src/fanout/hub.js'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import { sampleRunflowCallback, uuidv7 } from '../src/sample.js'
import { signRunflow } from '../src/verify/sign.js'
import { get, postRunflow, SECRET, startTestRelay, testConfig, testConfigYaml, TOKEN } from './helpers/relay.js'
import { buildSlowSync, spawnRelay, writeConfig } from './helpers/spawn.js'
import { connect } from './helpers/ws-conn.js'

/** POSTs on a fresh connection each time (`agent: false`), so that requests spread over the ingest threads. */
function postFresh(base: string, body: string, secret = SECRET): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  const u = new URL(`${base}/webhook/runflow`)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...signRunflow(secret, body) } },
      (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text), headers: res.headers }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

t.test('two ingest threads: 200 with gapless seqs, dedupe, 401, the read API, metrics counted once, budget drained', async (t) => {
  const { relay, base } = await startTestRelay(t, { threads: 2 })
  t.equal(relay.ingestThreads, 2)
  const bodies = Array.from({ length: 60 }, (_, i) => sampleRunflowCallback({ runId: `run-${i}` }))
  const answers = await Promise.all(bodies.map((b) => postFresh(base, b)))
  t.same(
    answers.map((a) => a.status),
    bodies.map(() => 200),
  )
  t.same(
    answers.map((a) => a.json.seq).sort((a, b) => a - b),
    Array.from({ length: 60 }, (_, i) => i + 1),
    'every seq once, gapless',
  )
  const again = await postFresh(base, bodies[0]!)
  t.same(again.json, { ok: true, seq: answers[0]!.json.seq, revision: 1, duplicate: true }, 'a retry gets the original seq')
  const bad = await postFresh(base, sampleRunflowCallback(), 'wrong-secret')
  t.equal(bad.status, 401)
  t.equal(bad.json.error.code, 'HOOKRELAY_INGEST_UNAUTHORIZED')
  // Routes that are not ingest are served by the main thread whichever thread accepted.
  const events = await get(`${base}/v1/events?after=0&limit=100`, TOKEN)
  t.equal(events.status, 200)
  t.equal(events.json.events.length, 60)
  t.same(events.json.events.map((e: any) => e.seq), Array.from({ length: 60 }, (_, i) => i + 1))
  t.equal((await get(`${base}/v1/events?after=0`)).status, 401, 'the read API still wants its token')
  t.equal((await get(`${base}/nowhere`)).status, 404)
  const ready = await get(`${base}/readyz`)
  t.same(ready.json, { ok: true, head: 60 })
  const m = await get(`${base}/metrics`)
  t.match(m.json, /hookrelay_requests_total\{source="runflow",status="200"\} 61\n/, '200s counted once across threads')
  t.match(m.json, /hookrelay_requests_total\{source="runflow",status="401"\} 1\n/)
  t.match(m.json, /hookrelay_ack_latency_seconds_count\{source="runflow"\} 61\n/)
  t.equal(relay.bodyBudget.inUse, 0, 'the shared body budget is back to 0')
  t.equal(relay.bodyBudget.addresses, 0)
})

t.test('two ingest threads: the stream works through whichever thread accepts the upgrade', async (t) => {
  const { relay, base } = await startTestRelay(t, { threads: 2, relay: { extensions: [fanoutExtension()] } })
  const url = `ws://127.0.0.1:${relay.port}/v1/stream`
  const conns = await Promise.all([connect(t, url, TOKEN), connect(t, url, TOKEN), connect(t, url, TOKEN), connect(t, url, TOKEN)])
  for (const c of conns) {
    t.match(await c.next(), { type: 'welcome' })
    c.send({ type: 'subscribe', after: 0 })
    t.match(await c.next(), { type: 'subscribed' })
    t.same(await c.next(), { type: 'live', seq: 0 })
  }
  const body = sampleRunflowCallback({ runId: 'streamed' })
  t.equal((await postRunflow(base, body)).status, 200)
  for (const c of conns) t.match(await c.next(), { type: 'event', seq: 1, key: 'streamed' })
})

t.test('two ingest threads: a reload reaches every thread before reload() returns', async (t) => {
  const { relay, base, dir } = await startTestRelay(t, { threads: 2 })
  const rotated = 'whsec_rotated_in_after_reload_0123456789'
  t.equal((await postFresh(base, sampleRunflowCallback(), rotated)).status, 401, 'unknown secret before the reload')
  const config = testConfig(dir, 'http: { threads: 2 }')
  const next = config.sources.runflow!
  relay.reload({
    ...config,
    sources: { ...config.sources, runflow: { ...next, verify: { ...next.verify, secrets: [rotated] } as typeof next.verify } },
  })
  // Fresh connections: each lands on either thread; all must see the new secret at once.
  const after = await Promise.all(Array.from({ length: 12 }, () => postFresh(base, sampleRunflowCallback(), rotated)))
  t.same(
    after.map((a) => a.status),
    after.map(() => 200),
    'the new secret works on every thread right away',
  )
  const old = await Promise.all(Array.from({ length: 6 }, () => postFresh(base, sampleRunflowCallback(), SECRET)))
  t.same(
    old.map((a) => a.status),
    old.map(() => 401),
    'the removed secret is refused on every thread',
  )
  t.throws(() => relay.reload({ ...config, http: { ...config.http, threads: 1 } }), { code: 'HOOKRELAY_CONFIG_RESTART_REQUIRED' }, 'http.threads needs a restart')
})

t.test('two ingest threads: the rate limit is one bucket per address, whichever thread takes the request', async (t) => {
  const { base } = await startTestRelay(t, {
    threads: 2,
    extra: 'rate_limit: { ingest_per_second: 0.001, ingest_burst: 5, limit_loopback: true }',
  })
  const statuses: number[] = []
  // One after another on fresh connections: the decision order is the request order.
  for (let i = 0; i < 12; i++) statuses.push((await postFresh(base, sampleRunflowCallback())).status)
  t.same(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429], 'the burst of 5 holds across both threads')
})

t.test('two ingest threads: the body budget is shared (503 BUSY past it, across threads)', async (t) => {
  const { relay, base } = await startTestRelay(t, { threads: 2, extra: 'http: { max_body_in_flight: 16kb, max_body_per_address: 16kb }' })
  t.equal(relay.bodyBudget.max, 16 * 1024)
  const u = new URL(`${base}/webhook/runflow`)
  // Two requests on two connections each send 10 KiB of a 20 KiB body and wait: together they pass 16 KiB.
  const held: Array<{ destroy(): void }> = []
  const answers: Array<Promise<number>> = []
  for (let i = 0; i < 2; i++) {
    answers.push(
      new Promise((resolve) => {
        const req = request(
          { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': 20 * 1024 } },
          (res) => {
            res.resume()
            resolve(res.statusCode!)
          },
        )
        req.on('error', () => resolve(0))
        req.write(Buffer.alloc(10 * 1024, 0x20))
        held.push(req)
      }),
    )
  }
  const first = await Promise.race(answers)
  t.equal(first, 503, 'the second body past the shared budget is refused')
  for (const r of held) r.destroy()
  await Promise.allSettled(answers)
  // Closed connections give their bytes back.
  while (relay.bodyBudget.inUse !== 0) await new Promise((r) => setImmediate(r))
  t.equal(relay.bodyBudget.addresses, 0)
})

// ---------------------------------------------------------------- the built relay in its own process

const shimDir = mkdtempSync(join(tmpdir(), 'hookrelay-shim-'))
t.teardown(() => rmSync(shimDir, { recursive: true, force: true }))
const so = buildSlowSync(shimDir)
const needsShim = { skip: so ? false : 'no C compiler (cc) on this machine to build the sync shim' }
/** Start-up bound for the built relay: generous, the machine may be busy with other suites. */
const START_MS = 60_000
const yaml2 = (dir: string): string => testConfigYaml(join(dir, 'data'), '', 2).replace('level: silent', 'level: info')

t.test('two ingest threads, fsync I/O error: every thread answers 503 from then on', needsShim, async (t) => {
  const dir = t.testdir()
  const failFile = join(dir, 'fail-now')
  const relay = await spawnRelay(writeConfig(dir, yaml2(dir)), { LD_PRELOAD: so!, SLOWSYNC_FAIL_FILE: failFile }, START_MS)
  t.teardown(() => relay.child.kill('SIGKILL'))
  t.ok(relay.lines.some((l) => l.includes('"ingest_threads":2')), 'the relay runs two ingest threads')
  t.equal((await postFresh(relay.base, sampleRunflowCallback())).status, 200)
  writeFileSync(failFile, '')
  t.equal((await postFresh(relay.base, sampleRunflowCallback())).status, 503)
  rmSync(failFile)
  const after = await Promise.all(Array.from({ length: 10 }, () => postFresh(relay.base, sampleRunflowCallback())))
  t.same(
    after.map((a) => a.status),
    after.map(() => 503),
    'still refusing on every connection, whichever thread has it',
  )
  t.same(
    after.map((a) => a.json.error.code),
    after.map(() => 'HOOKRELAY_JOURNAL_FAILED'),
  )
  t.equal((await get(`${relay.base}/readyz`)).status, 503)
})

t.test('two ingest threads, SIGKILL mid-load twice: every acknowledged callback is there, seqs gapless', async (t) => {
  const dir = t.testdir()
  const file = writeConfig(dir, yaml2(dir))
  const acked = new Map<string, number>()
  for (let round = 0; round < 2; round++) {
    const relay = await spawnRelay(file, {}, START_MS)
    let stop = false
    const killAt = acked.size + 80 + round * 40
    let killNow: () => void = () => {}
    const enough = new Promise<void>((r) => (killNow = r))
    const senders = Array.from({ length: 16 }, async () => {
      while (!stop) {
        const runId = uuidv7()
        try {
          const a = await postFresh(relay.base, sampleRunflowCallback({ runId }))
          if (a.status === 200) acked.set(runId, a.json.seq)
          if (acked.size >= killAt) killNow()
        } catch {
          // The connection died with the relay: not acknowledged, so nothing is owed.
        }
      }
    })
    await enough
    relay.child.kill('SIGKILL')
    stop = true
    await Promise.all(senders)
    await relay.exited
  }
  const j = await LmdbJournal.open({ dir: join(dir, 'data'), mapSize: 4 * 1024 ** 3, minFree: 0 })
  t.teardown(() => j.close())
  const all = await j.read(0, 1_000_000)
  t.same(
    all.map((e) => e.seq),
    Array.from({ length: all.length }, (_, i) => i + 1),
    'seqs are gapless from 1',
  )
  const keys = new Map(all.map((e) => [e.key, e.seq]))
  let missing = 0
  for (const [runId, seq] of acked) if (keys.get(runId) !== seq) missing++
  t.ok(acked.size >= 200, `${acked.size} callbacks acknowledged across two kills`)
  t.equal(missing, 0, 'every acknowledged callback is in the journal under the seq it was acknowledged with')
})

t.test('two ingest threads, SIGTERM under load: in-flight callbacks answered, acknowledged ones kept, clean exit', async (t) => {
  const dir = t.testdir()
  const relay = await spawnRelay(writeConfig(dir, yaml2(dir)), {}, START_MS)
  t.teardown(() => relay.child.kill('SIGKILL'))
  const acked = new Map<string, number>()
  const other: number[] = []
  let stop = false
  let termNow: () => void = () => {}
  const enough = new Promise<void>((r) => (termNow = r))
  const senders = Array.from({ length: 12 }, async () => {
    while (!stop) {
      const runId = uuidv7()
      try {
        const a = await postFresh(relay.base, sampleRunflowCallback({ runId }))
        if (a.status === 200) acked.set(runId, a.json.seq)
        else other.push(a.status)
        if (acked.size >= 100) termNow()
      } catch {
        // Refused once the listener is closed.
      }
    }
  })
  await enough
  relay.child.kill('SIGTERM')
  const exit = await relay.exited
  stop = true
  await Promise.all(senders)
  t.same(exit, { code: 0, signal: null }, 'the relay drained and exited by itself')
  t.same(
    [...new Set(other)].filter((s) => s !== 503),
    [],
    'any answer that is not 200 is 503 (closing)',
  )
  const j = await LmdbJournal.open({ dir: join(dir, 'data'), mapSize: 4 * 1024 ** 3, minFree: 0 })
  t.teardown(() => j.close())
  const all = await j.read(0, 1_000_000)
  const keys = new Map(all.map((e) => [e.key, e.seq]))
  let missing = 0
  for (const [runId, seq] of acked) if (keys.get(runId) !== seq) missing++
  t.equal(missing, 0, 'every acknowledged callback is in the journal')
  t.ok(relay.lines.some((l) => l.includes('"hookrelay stopped"')))
})
