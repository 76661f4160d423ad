// Black-box: /v1/stream protocol v1 over a real uWS relay on port 0 and real `ws` clients.
import { once } from 'node:events'
import t from 'tap'
import { fanoutExtension, type Hub, type HubOptions } from '../src/fanout/hub.js'
import type { Relay } from '../src/relay.js'
import { sampleRunflowCallback } from '../src/sample.js'
import { signGithub } from '../src/verify/sign.js'
import { TOKEN, TOKEN_GH, post, postRunflow, startTestRelay, ingestDirect } from './helpers/relay.js'
import { Conn, connect, upgradeStatus } from './helpers/ws-conn.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

async function startHub(t: TapLike, opts: { extra?: string; hub?: HubOptions; dir?: string } = {}) {
  const { relay, base, dir } = await startTestRelay(t, {
    dir: opts.dir,
    extra: opts.extra,
    relay: { extensions: [fanoutExtension(opts.hub)] },
  })
  return { relay, base, dir, hub: relay.component<Hub>('hub')!, url: `ws://127.0.0.1:${relay.port}/v1/stream` }
}

let keyN = 0
/** Journals `n` events directly (bulk); returns the last seq. */
async function ingest(relay: Relay, n: number, opts: { source?: string; event?: string; pad?: number } = {}): Promise<number> {
  const source = opts.source ?? 'runflow'
  const event = opts.event ?? 'run.completed'
  const pad = 'x'.repeat(opts.pad ?? 0)
  const all: Array<Promise<{ seq: number }>> = []
  for (let i = 0; i < n; i++) {
    const key = `k${++keyN}`
    all.push(ingestDirect(relay, key, { source, event, body: `{"event":${JSON.stringify(event)},"run_id":"${key}","pad":"${pad}"}` }))
  }
  const r = await Promise.all(all)
  return r[r.length - 1]?.seq ?? relay.journal.head
}

async function subscribed(c: Conn, sub: Record<string, unknown> = {}): Promise<{ welcome: any; subscribed: any }> {
  const welcome = await c.next()
  c.send({ type: 'subscribe', ...sub })
  const s = await c.next()
  return { welcome, subscribed: s }
}

t.test('header auth: welcome, subscribe, events in order with the raw body spliced in, then live', async (t) => {
  const { relay, base, url } = await startHub(t)
  const bodies = [sampleRunflowCallback(), sampleRunflowCallback(), sampleRunflowCallback()]
  for (const b of bodies) t.equal((await postRunflow(base, b)).status, 200)
  const c = await connect(t, url, TOKEN)
  const { welcome, subscribed: s } = await subscribed(c, { after: 0 })
  t.same(welcome, { type: 'welcome', epoch: relay.journal.epoch, head: 3 })
  t.same(s, { type: 'subscribed', epoch: relay.journal.epoch, after: 0, head: 3 })
  for (let i = 0; i < 3; i++) {
    const e = await c.next()
    t.match(e, { type: 'event', seq: i + 1, source: 'runflow', event: 'run.completed', revision: 1 })
    t.equal(e.key, JSON.parse(bodies[i]!).run_id)
    t.same(e.body, JSON.parse(bodies[i]!))
    t.match(e.received_at, /^\d{4}-\d\d-\d\dT/)
  }
  t.same(await c.next(), { type: 'live', seq: 3 })
  // A live event after `live`, and the exact bytes on the wire.
  const raw = once(c.ws, 'message')
  const fourth = sampleRunflowCallback()
  await postRunflow(base, fourth)
  const [data] = (await raw) as [Buffer]
  t.match(String(data), new RegExp(`^\\{"type":"event","seq":4,"source":"runflow",.*,"body":${escapeRe(fourth)}\\}$`))
  c.ws.close()
})

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

t.test('after omitted without a consumer means latest; "latest" too; cursor_ahead and cursor_expired', async (t) => {
  const { relay, url } = await startHub(t)
  await ingest(relay, 5)
  const c = await connect(t, url, TOKEN)
  const { subscribed: s } = await subscribed(c, {})
  t.equal(s.after, 5)
  t.same(await c.next(), { type: 'live', seq: 5 })
  await ingest(relay, 1)
  t.match(await c.next(), { type: 'event', seq: 6 })

  const d = await connect(t, url, TOKEN)
  await d.next()
  d.send({ type: 'subscribe', after: 99 })
  t.same(await d.next(), { type: 'error', code: 'cursor_ahead', head: 6, after: 99 }, 'cursor ahead of the head')
  // The connection stays usable: subscribe again.
  await relay.lmdb!.prune(3)
  d.send({ type: 'subscribe', after: 1 })
  t.same(await d.next(), { type: 'error', code: 'cursor_expired', earliest: 4, after: 1 }, 'cursor older than retention')
  d.send({ type: 'subscribe', after: 3 })
  t.match(await d.next(), { type: 'subscribed', after: 3, head: 6 })
  t.match(await d.next(), { type: 'event', seq: 4 })
  t.match(await d.next(), { type: 'event', seq: 5 })
  t.match(await d.next(), { type: 'event', seq: 6 })
  t.same(await d.next(), { type: 'live', seq: 6 })
})

t.test('a bad or missing-scheme bearer token never gets 101', async (t) => {
  const { url } = await startHub(t)
  t.equal(await upgradeStatus(url, { authorization: 'Bearer nope' }), 401)
  t.equal(await upgradeStatus(url, { authorization: `Basic ${TOKEN}` }), 401)
  t.equal(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}` }), 101)
})

t.test('first-frame auth: ok within the deadline, 4401 for a bad token, another frame first, or silence', async (t) => {
  const { relay, url } = await startHub(t, { hub: { authTimeoutMs: 200 } })
  await ingest(relay, 2)
  const ok = await connect(t, url)
  ok.send({ type: 'auth', token: TOKEN })
  t.match(await ok.next(), { type: 'welcome', head: 2 })
  ok.send({ type: 'subscribe', after: 1 })
  t.match(await ok.next(), { type: 'subscribed' })
  t.match(await ok.next(), { type: 'event', seq: 2 })

  const bad = await connect(t, url)
  bad.send({ type: 'auth', token: 'wrong' })
  t.match(await bad.closed, { code: 4401 })

  const other = await connect(t, url)
  other.send({ type: 'subscribe', after: 0 })
  t.match(await other.closed, { code: 4401 })

  const silent = await connect(t, url)
  const started = Date.now()
  t.match(await silent.closed, { code: 4401, reason: /authenticate within/ })
  t.ok(Date.now() - started >= 150, 'closed at the deadline, not before')
  t.equal(silent.frames.length, 0, 'no welcome before auth')
})

t.test('filters select; per-token authorization refuses with 4403', async (t) => {
  const { relay, url } = await startHub(t)
  await ingest(relay, 1, { event: 'run.completed' })
  await ingest(relay, 1, { event: 'batch.completed' })
  await ingest(relay, 1, { source: 'gh', event: 'push' })
  await ingest(relay, 1, { event: 'run.failed' })

  const runs = await connect(t, url, TOKEN)
  await subscribed(runs, { after: 0, events: ['run.*'] })
  t.match(await runs.next(), { seq: 1, event: 'run.completed' })
  t.match(await runs.next(), { seq: 4, event: 'run.failed' })
  t.same(await runs.next(), { type: 'live', seq: 4 })

  const gh = await connect(t, url, TOKEN)
  await subscribed(gh, { after: 0, sources: ['gh'] })
  t.match(await gh.next(), { seq: 3, source: 'gh' })
  t.same(await gh.next(), { type: 'live', seq: 4 })

  // A gh-only token sees only gh, with or without a sources filter.
  const limited = await connect(t, url, TOKEN_GH)
  await subscribed(limited, { after: 0 })
  t.match(await limited.next(), { seq: 3, source: 'gh' })
  t.same(await limited.next(), { type: 'live', seq: 4 })

  const forbidden = await connect(t, url, TOKEN_GH)
  await forbidden.next()
  forbidden.send({ type: 'subscribe', after: 0, sources: ['gh', 'runflow'] })
  t.match(await forbidden.closed, { code: 4403, reason: /runflow/ })
  t.equal(forbidden.frames.length, 0, 'nothing delivered before the refusal')

  // A gh event posted over HTTP reaches the gh-only subscriber live.
  const body = '{"action":"opened","number":1}'
  const r = await post(`http://127.0.0.1:${relay.port}/webhook/github`, body, {
    ...signGithub('gh-secret', body),
    'x-github-event': 'issues',
    'x-github-delivery': 'd-1',
  })
  t.equal(r.status, 200)
  t.match(await limited.next(), { type: 'event', source: 'gh', seq: 5 })
})

t.test('bad frames close with 4400 and do not disturb other subscribers', async (t) => {
  const { relay, url } = await startHub(t)
  const witness = await connect(t, url, TOKEN)
  await subscribed(witness, { after: 'latest' })
  t.match(await witness.next(), { type: 'live' })

  const cases: Array<[string, (c: Conn) => void, RegExp]> = [
    ['malformed JSON', (c) => c.send('{"type":'), /malformed JSON/],
    ['not an object', (c) => c.send('[1,2]'), /object/],
    ['unknown type', (c) => c.send({ type: 'hello' }), /unknown frame type/],
    ['binary frame', (c) => c.ws.send(Buffer.from('{"type":"subscribe"}')), /binary/],
    ['bad after', (c) => c.send({ type: 'subscribe', after: -1 }), /after/],
    ['ack before subscribe', (c) => c.send({ type: 'ack', seq: 1 }), /ack before subscribe/],
    ['auth again', (c) => c.send({ type: 'auth', token: TOKEN }), /already authenticated/],
  ]
  for (const [name, act, reason] of cases) {
    const c = await connect(t, url, TOKEN)
    await c.next()
    act(c)
    t.match(await c.closed, { code: 4400, reason }, name)
  }
  const twice = await connect(t, url, TOKEN)
  await subscribed(twice, { after: 'latest' })
  twice.send({ type: 'subscribe', after: 'latest' })
  t.match(await twice.closed, { code: 4400, reason: /already subscribed/ }, 'second subscribe')

  await ingest(relay, 1)
  t.match(await witness.next(), { type: 'event', seq: 1 }, 'the other subscriber still gets events')
})

t.test('an oversized frame closes that connection only', async (t) => {
  const { relay, url } = await startHub(t, { extra: 'stream: { max_payload: 1kb }' })
  const witness = await connect(t, url, TOKEN)
  await subscribed(witness, { after: 'latest' })
  await witness.next()
  const c = await connect(t, url, TOKEN)
  await c.next()
  c.send({ type: 'subscribe', after: 'latest', events: ['x'.repeat(2000)] })
  const { code } = await c.closed
  t.ok(code === 1009 || code === 1006, `closed by uWS (${code})`)
  await ingest(relay, 1)
  t.match(await witness.next(), { type: 'event', seq: 1 })
})

t.test('ack beyond what was delivered: ack_ahead error frame, connection kept', async (t) => {
  const { relay, url } = await startHub(t)
  await ingest(relay, 2)
  const c = await connect(t, url, TOKEN)
  await subscribed(c, { after: 0, ack: true })
  await c.next()
  await c.next()
  await c.next() // live
  c.send({ type: 'ack', seq: 5 })
  t.same(await c.next(), { type: 'error', code: 'ack_ahead', seq: 5, delivered: 2 })
  c.send({ type: 'ack', seq: 2 })
  await ingest(relay, 1)
  t.match(await c.next(), { type: 'event', seq: 3 })
})

t.test('max_inflight: with ack:true the relay stops at max_inflight unacked events', async (t) => {
  const { relay, url } = await startHub(t, { extra: 'stream: { max_inflight: 3 }' })
  await ingest(relay, 10)
  const c = await connect(t, url, TOKEN)
  await subscribed(c, { after: 0, ack: true })
  for (let i = 1; i <= 3; i++) t.match(await c.next(), { seq: i })
  // Nothing more arrives until an ack: prove it with a round trip (ack_ahead answers at once).
  c.send({ type: 'ack', seq: 100 })
  t.match(await c.next(), { type: 'error', code: 'ack_ahead', delivered: 3 })
  c.send({ type: 'ack', seq: 2 })
  t.match(await c.next(), { seq: 4 })
  t.match(await c.next(), { seq: 5 })
  c.send({ type: 'ack', seq: 100 })
  t.match(await c.next(), { type: 'error', code: 'ack_ahead', delivered: 5 })
  c.send({ type: 'ack', seq: 10 - 0 - 5 })
  for (let i = 6; i <= 8; i++) t.match(await c.next(), { seq: i })
})

t.test('per-address connection cap answers 429 on the upgrade', async (t) => {
  const { url } = await startHub(t, { extra: 'stream: { max_connections_per_ip: 2 }' })
  const a = await connect(t, url, TOKEN)
  await connect(t, url, TOKEN)
  t.equal(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}` }), 429)
  a.ws.close()
  await a.closed
  // The slot frees when a connection closes (the client's close completes after the server's).
  t.equal(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}` }), 101)
})

t.test('shutdown closes subscribers with 1001 and stores consumer acks', async (t) => {
  const { relay, url, dir } = await startHub(t)
  await ingest(relay, 3)
  const c = await connect(t, url, TOKEN)
  await subscribed(c, { after: 0, consumer: 'worker', ack: true })
  await c.next()
  await c.next()
  c.send({ type: 'ack', seq: 2 })
  await c.next() // event 3
  await c.next() // live
  // The ack_ahead answer proves the ack before it was taken; it is not yet on disk
  // (batched for up to 1 s): closing the relay must store it.
  c.send({ type: 'ack', seq: 100 })
  t.match(await c.next(), { type: 'error', code: 'ack_ahead' })
  t.equal((await relay.journal.getCursor('app/worker')), undefined, 'not stored yet')
  const closing = relay.close()
  t.match(await c.closed, { code: 1001 })
  await closing
  const again = await startHub(t, { dir })
  t.same((await again.relay.journal.getCursor('app/worker'))?.seq, 2)
})

t.test('metrics: subscribers, frames and bytes, consumer lag', async (t) => {
  const { relay, base, url } = await startHub(t)
  await ingest(relay, 4)
  const c = await connect(t, url, TOKEN)
  await subscribed(c, { after: 0, consumer: 'm1', ack: true })
  for (let i = 0; i < 4; i++) await c.next()
  await c.next()
  c.send({ type: 'ack', seq: 1 })
  c.send({ type: 'ack', seq: 100 })
  await c.next() // ack_ahead: the ack before it was processed
  const text = await (await fetch(`${base}/metrics`)).text()
  t.match(text, /hookrelay_stream_subscribers 1/)
  t.match(text, /hookrelay_stream_frames_sent_total 4/)
  t.match(text, /hookrelay_stream_bytes_sent_total [1-9]\d*/)
  t.match(text, /hookrelay_stream_consumer_lag\{consumer="app\/m1"\} 3/)
  t.match(text, /hookrelay_stream_slow_consumer_closes_total 0/)
})
