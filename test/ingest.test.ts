// Black-box: every row of the README's ingest table, through real HTTP against a
// real relay on port 0 with a real LMDB journal in a temp dir (and again on
// JetStream: test/jetstream-blackbox.test.ts; LMDB-only tests skip there).
import { connect } from 'node:net'
import t from 'tap'
import { sampleRunflowCallback, uuidv7 } from '../src/sample.js'
import { signGithub, signRunflow } from '../src/verify/sign.js'
import { SECRET, SECRET_OLD, TOKEN, get, post, postRunflow, startTestRelay, testBackend } from './helpers/relay.js'
import { signedPost } from './helpers/raw-http.js'

t.test('verified new key: 200 after journaling, and the run row shows its status', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const runId = uuidv7()
  const body = sampleRunflowCallback({ runId })
  const a = await postRunflow(base, body)
  t.equal(a.status, 200)
  t.same(a.json, { ok: true, seq: 1, revision: 1 })
  t.equal(relay.journal.head, 1)
  const stored = await relay.journal.get(1)
  t.ok(stored, 'entry is in the journal')
  t.equal(stored!.body.toString(), body, 'raw body kept byte-exact')
  t.equal(stored!.key, runId)

  const row = await get(`${base}/v1/runs/runflow/${runId}`, TOKEN)
  t.equal(row.status, 200)
  t.match(row.json, {
    source: 'runflow',
    id: runId,
    event: 'run.completed',
    status: 'succeeded',
    seq: 1,
    revision: 1,
    output: JSON.parse(body).output,
    mirror: { state: 'none', objects: [] },
  })
  t.match(row.json.received_at, /^\d{4}-\d\d-\d\dT/)
})

t.test('same key, byte-identical body: duplicate with the original seq, not journaled again', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const body = sampleRunflowCallback()
  t.same((await postRunflow(base, body)).json, { ok: true, seq: 1, revision: 1 })
  const again = await postRunflow(base, body)
  t.equal(again.status, 200)
  t.same(again.json, { ok: true, seq: 1, revision: 1, duplicate: true })
  t.equal(relay.journal.head, 1)
})

t.test('same key, different body: a new revision that supersedes the old one', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const runId = uuidv7()
  const first = sampleRunflowCallback({ runId, outputUrls: ['https://storage.example/a.png?X-Amz-Signature=1'] })
  const second = sampleRunflowCallback({ runId, outputUrls: ['https://storage.example/a.png?X-Amz-Signature=2'] })
  await postRunflow(base, first)
  await postRunflow(base, sampleRunflowCallback()) // another run in between
  const r = await postRunflow(base, second)
  t.same(r.json, { ok: true, seq: 3, revision: 2 })
  const row = await get(`${base}/v1/runs/runflow/${runId}`, TOKEN)
  t.equal(row.json.revision, 2)
  t.equal(row.json.seq, 3)
  t.same(row.json.output, JSON.parse(second).output)
  // A late retry of revision 1 is still recognised as a duplicate of revision 1.
  t.same((await postRunflow(base, first)).json, { ok: true, seq: 1, revision: 1, duplicate: true })
  t.equal(relay.journal.head, 3)
})

t.test('missing, wrong, uppercase, short and garbled signatures: 401, nothing stored, no reason told', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const body = sampleRunflowCallback()
  const good = signRunflow(SECRET, body)['runflow-signature']!
  const cases: Array<[string, Record<string, string>]> = [
    ['missing', {}],
    ['wrong secret', signRunflow('whsec_wrong', body)],
    ['uppercase hex of the right signature', { 'runflow-signature': good.toUpperCase() }],
    ['short hex', { 'runflow-signature': good.slice(0, 63) }],
    ['garbled', { 'runflow-signature': 'zz' + good.slice(2) }],
    ['empty', { 'runflow-signature': '' }],
    ['signature of another body', signRunflow(SECRET, body + ' ')],
  ]
  for (const [name, headers] of cases) {
    const a = await post(`${base}/webhook/runflow`, body, headers)
    t.equal(a.status, 401, name)
    t.equal(a.json.error.code, 'HOOKRELAY_INGEST_UNAUTHORIZED', name)
    t.notMatch(JSON.stringify(a.json), /secret|mismatch|malformed|missing/i, `${name}: no reason leaked`)
  }
  t.equal(relay.journal.head, 0, 'nothing stored')
})

t.test('rotation: a body signed with the second configured secret verifies', async (t) => {
  const { base } = await startTestRelay(t)
  const a = await postRunflow(base, sampleRunflowCallback(), SECRET_OLD)
  t.equal(a.status, 200)
})

t.test('signed but not JSON, or JSON without run_id/batch_id: 400 with a clear code', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const notJson = await postRunflow(base, 'event=run.completed&run_id=1')
  t.equal(notJson.status, 400)
  t.equal(notJson.json.error.code, 'HOOKRELAY_INGEST_NOT_JSON')
  const array = await postRunflow(base, '[1,2]')
  t.equal(array.json.error.code, 'HOOKRELAY_INGEST_NOT_JSON')
  const noKey = await postRunflow(base, JSON.stringify({ event: 'run.completed', status: 'succeeded' }))
  t.equal(noKey.status, 400)
  t.equal(noKey.json.error.code, 'HOOKRELAY_INGEST_NO_KEY')
  const noEvent = await postRunflow(base, JSON.stringify({ run_id: uuidv7(), status: 'succeeded' }))
  t.equal(noEvent.status, 400)
  t.equal(noEvent.json.error.code, 'HOOKRELAY_INGEST_NO_EVENT')
  t.equal(relay.journal.head, 0)
})

t.test('batch callbacks are keyed on batch_id', async (t) => {
  const { base } = await startTestRelay(t)
  const batchId = uuidv7()
  const body = JSON.stringify({
    event: 'batch.succeeded',
    batch_id: batchId,
    status: 'succeeded',
    output: { items: [{ run_id: uuidv7(), output: { image_urls: ['https://storage.example/x.png'] } }], succeeded: 1, failed: 0, cancelled: 0, total: 1 },
  })
  t.equal((await postRunflow(base, body)).status, 200)
  const row = await get(`${base}/v1/runs/runflow/${batchId}`, TOKEN)
  t.equal(row.status, 200)
  t.equal(row.json.event, 'batch.succeeded')
})

t.test('a GitHub source verifies X-Hub-Signature-256 and keys on the delivery id', async (t) => {
  const { base } = await startTestRelay(t)
  const body = JSON.stringify({ action: 'opened', number: 1 })
  const headers = { ...signGithub('gh-secret', body), 'x-github-event': 'issues', 'x-github-delivery': 'd-1' }
  const a = await post(`${base}/webhook/github`, body, headers)
  t.same(a.json, { ok: true, seq: 1, revision: 1 })
  const row = await get(`${base}/v1/runs/gh/d-1`, TOKEN)
  t.equal(row.json.event, 'issues.opened')
})

t.test('body over max_body: 413 from Content-Length, nothing stored', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const big = JSON.stringify({ event: 'run.completed', run_id: uuidv7(), pad: 'x'.repeat(70 * 1024) })
  const a = await postRunflow(base, big)
  t.equal(a.status, 413)
  t.equal(a.json.error.code, 'HOOKRELAY_INGEST_BODY_TOO_LARGE')
  t.equal(relay.journal.head, 0)
})

/** Sends raw bytes over one TCP connection; resolves with everything read until the server closes it. */
function raw(port: number, chunks: Array<string | Buffer>, gapMs = 0): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    let text = ''
    sock.on('data', (d) => (text += d.toString()))
    sock.on('error', () => undefined)
    sock.on('close', () => resolve({ text, closed: true }))
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break
        sock.write(c)
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs))
      }
    })
    setTimeout(() => {
      sock.destroy()
      reject(new Error(`no close; got ${text}`))
    }, 15000).unref()
  })
}

t.test('chunked body over max_body: 413 while streaming, connection closed', async (t) => {
  const { relay } = await startTestRelay(t)
  const chunk = 'x'.repeat(16 * 1024)
  const head = 'POST /webhook/runflow HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n'
  const parts: string[] = [head]
  // 8 × 16 KiB = 128 KiB against a 64 KiB limit; the relay answers and closes well before the end.
  for (let i = 0; i < 8; i++) parts.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
  parts.push('0\r\n\r\n')
  const r = await raw(relay.port, parts, 5)
  t.match(r.text, /^HTTP\/1\.1 413 /)
  t.match(r.text, /HOOKRELAY_INGEST_BODY_TOO_LARGE/)
  t.ok(r.closed, 'connection closed by the relay')
  t.equal(relay.journal.head, 0)
})

t.test('a body that trickles past the body deadline: 408 and closed', async (t) => {
  const { relay } = await startTestRelay(t, { extra: 'http: { body_timeout: 1s }' })
  const body = sampleRunflowCallback()
  const head = `POST /webhook/runflow HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n${Object.entries(signRunflow(SECRET, body))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`
  const r = await raw(relay.port, [head, body.slice(0, 10)], 0)
  t.match(r.text, /^HTTP\/1\.1 408 /)
  t.equal(relay.journal.head, 0)
})

t.test('wrong method: 405 with Allow; unknown path: 404', async (t) => {
  const { base } = await startTestRelay(t)
  const m = await get(`${base}/webhook/runflow`)
  t.equal(m.status, 405)
  t.equal(m.headers.get('allow'), 'POST')
  t.equal(m.json.error.code, 'HOOKRELAY_HTTP_METHOD_NOT_ALLOWED')
  const n = await post(`${base}/webhook/nope`, '{}')
  t.equal(n.status, 404)
  t.equal(n.json.error.code, 'HOOKRELAY_HTTP_NOT_FOUND')
})

t.test('50 concurrent identical requests make exactly one entry', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const body = sampleRunflowCallback()
  const answers = await Promise.all(Array.from({ length: 50 }, () => postRunflow(base, body)))
  t.ok(answers.every((a) => a.status === 200 && a.json.seq === 1 && a.json.revision === 1), 'all 200 with seq 1')
  t.equal(relay.journal.head, 1)
  t.equal((await relay.journal.read(0, 100)).length, 1)
})

/** Tests of the LMDB journal itself (group commit, map size) skip on the JetStream backend. */
const lmdbOnly = { skip: testBackend() === 'jetstream' ? 'LMDB journal behaviour' : false }

t.test('concurrent distinct callbacks share commits and get gapless seqs', lmdbOnly, async (t) => {
  const { base } = await startTestRelay(t)
  const answers = await Promise.all(Array.from({ length: 200 }, () => postRunflow(base, sampleRunflowCallback())))
  const seqs = answers.map((a) => a.json.seq as number).sort((a, b) => a - b)
  t.same(seqs, Array.from({ length: 200 }, (_, i) => i + 1))
  const metrics = await (await fetch(`${base}/metrics`)).text()
  const commits = Number(/hookrelay_journal_commit_entries_count (\d+)/.exec(metrics)?.[1])
  t.ok(commits < 200, `200 requests in ${commits} commits (group commit)`)
})

t.test('journal cannot commit: 503 with Retry-After, before LMDB would fail', lmdbOnly, async (t) => {
  const { relay, base } = await startTestRelay(t, {
    extra: 'journal: { map_size: 16mb, retention: { max_bytes: 8mb }, min_free: 0 }',
    // Retention would prune past max_bytes during the fill; test/ops-retention.test.ts covers the two together.
    relay: { retention: { start: false } },
  })
  let status = 0
  let a
  let accepted = 0
  for (let i = 0; i < 1000 && status !== 503; i++) {
    a = await postRunflow(base, JSON.stringify({ event: 'run.completed', run_id: uuidv7(), pad: 'p'.repeat(60000) }))
    status = a.status
    if (status === 200) accepted++
  }
  t.equal(status, 503, 'full journal answers 503')
  t.equal(a!.headers.get('retry-after'), '5')
  t.equal(a!.json.error.code, 'HOOKRELAY_JOURNAL_FULL')
  const ready = await get(`${base}/readyz`)
  t.equal(ready.status, 503, '/readyz says the relay cannot take callbacks')
  t.match(ready.json.error.message, /map_size/)
  t.equal(relay.journal.head, accepted, 'everything acknowledged is there')
  t.equal((await relay.journal.read(0, 1000)).length, accepted)
})

t.test('shutting down: a callback that arrives while the relay closes gets 503 HOOKRELAY_HTTP_CLOSING', async (t) => {
  const { relay } = await startTestRelay(t)
  const wire = signedPost(SECRET, sampleRunflowCallback())
  const split = wire.indexOf('\r\n') + 2
  // A connection that is part-way through its request line when close() starts: open, not idle, not yet a request.
  const sock = connect(relay.port, '127.0.0.1')
  t.teardown(() => sock.destroy())
  await new Promise<void>((r) => sock.on('connect', () => r()))
  let text = ''
  const answered = new Promise<string>((resolve) => {
    sock.on('data', (d) => {
      text += d.toString()
      if (/\r\n\r\n\{.*\}$/s.test(text)) resolve(text)
    })
    sock.on('close', () => resolve(text))
  })
  sock.write(wire.slice(0, split))
  while (relay.front.connections < 1) await new Promise((r) => setImmediate(r))
  const closing = relay.close()
  sock.write(wire.slice(split))
  const answer = await answered
  t.match(answer, /^HTTP\/1\.1 503 /)
  t.match(answer, /"code":"HOOKRELAY_HTTP_CLOSING"/)
  t.match(answer, /retry-after: 5/i)
  t.match(answer, /connection: close/i, 'and the connection is closed after it')
  await closing
  t.equal(relay.journal.head, 0)
})

t.test('read API: bearer tokens, per-token sources, paging that always ends', async (t) => {
  const { base } = await startTestRelay(t)
  const { TOKEN_GH } = await import('./helpers/relay.js')
  const runId = uuidv7()
  await postRunflow(base, sampleRunflowCallback({ runId }))
  for (let i = 0; i < 4; i++) await postRunflow(base, sampleRunflowCallback())
  const gh = JSON.stringify({ action: 'closed' })
  await post(`${base}/webhook/github`, gh, { ...signGithub('gh-secret', gh), 'x-github-event': 'issues', 'x-github-delivery': 'd-9' })

  t.equal((await get(`${base}/v1/runs/runflow/${runId}`)).status, 401, 'no token')
  t.equal((await get(`${base}/v1/runs/runflow/${runId}`, 'wrong')).status, 401, 'bad token')
  t.equal((await get(`${base}/v1/runs/runflow/${runId}`, TOKEN_GH)).status, 404, 'a token sees only its sources')
  t.equal((await get(`${base}/v1/runs/runflow/nope`, TOKEN)).status, 404)

  const page1 = await get(`${base}/v1/events?after=0&limit=2`, TOKEN)
  t.equal(page1.json.head, 6)
  t.same(page1.json.events.map((e: { seq: number }) => e.seq), [1, 2])
  t.equal(page1.json.next, 2)
  t.match(page1.json.events[0], { seq: 1, source: 'runflow', event: 'run.completed', key: runId, revision: 1 })
  t.equal(page1.json.events[0].body.run_id, runId, 'body spliced in as JSON')
  const rest = await get(`${base}/v1/events?after=2&limit=5000`, TOKEN)
  t.same(rest.json.events.map((e: { seq: number }) => e.seq), [3, 4, 5, 6], 'limit clamped, all returned')

  const ghOnly = await get(`${base}/v1/events?after=0&limit=2`, TOKEN_GH)
  t.same(ghOnly.json.events.map((e: { seq: number }) => e.seq), [6])
  t.equal(ghOnly.json.next, 6, 'next passes events this token may not see')
  const end = await get(`${base}/v1/events?after=6`, TOKEN_GH)
  t.same(end.json, { head: 6, next: 6, events: [] })
  t.equal((await get(`${base}/v1/events?after=-1`, TOKEN)).status, 400)
})

t.test('health and metrics', async (t) => {
  const { relay, base } = await startTestRelay(t)
  await postRunflow(base, sampleRunflowCallback())
  await post(`${base}/webhook/runflow`, '{}', { 'runflow-signature': 'f'.repeat(64) })
  t.equal((await get(`${base}/livez`)).status, 200)
  const ready = await get(`${base}/readyz`)
  t.equal(ready.status, 200)
  t.equal(ready.json.head, 1)
  const m = await (await fetch(`${base}/metrics`)).text()
  t.match(m, /hookrelay_requests_total\{source="runflow",status="200"\} 1/)
  t.match(m, /hookrelay_requests_total\{source="runflow",status="401"\} 1/)
  t.match(m, /hookrelay_ack_latency_seconds_bucket\{le="[^"]+",source="runflow"\}/)
  t.match(m, /hookrelay_journal_head_seq 1/)
  t.match(m, /hookrelay_journal_commit_duration_seconds_count \d/)
  t.match(m, /hookrelay_ready 1/)
  await relay.close()
})

t.test('the scheme signature headers, content-type and request id are kept with the entry, as received', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const body = sampleRunflowCallback()
  const sig = signRunflow(SECRET, body)
  const r = await post(`${base}/webhook/runflow`, body, { ...sig, 'runflow-request-id': 'req-42', 'x-unrelated': 'not kept' })
  t.equal(r.status, 200)
  const entry = (await relay.journal.get(r.json.seq))!
  t.same(entry.private.headers, {
    'content-type': 'application/json',
    'runflow-signature': sig['runflow-signature'],
    'runflow-request-id': 'req-42',
  })
})
