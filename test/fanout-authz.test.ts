// Black-box: who may do what on /v1/stream, over a real uWS relay on port 0 and
// real `ws` clients: durable consumers belong to one subscriber (token), the
// caps on consumer names, consumers per subscriber and event globs, and a
// config reload that revokes a token or a source cutting open streams.
import t from 'tap'
import WebSocket from 'ws'
import { loadConfigText } from '../src/config/load.js'
import { MAX_EVENT_GLOBS, MAX_GLOB_LENGTH } from '../src/fanout/event-glob.js'
import { fanoutExtension, type Hub } from '../src/fanout/hub.js'
import { MAX_CONSUMERS_PER_SUBSCRIBER } from '../src/fanout/subscribe-decision.js'
import type { Relay } from '../src/relay.js'
import { TOKEN, TOKEN_GH, get, startTestRelay, testConfigYaml, ingestDirect } from './helpers/relay.js'
import { Conn, connect } from './helpers/ws-conn.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

async function startHub(t: TapLike) {
  const { relay, base, dir } = await startTestRelay(t, {
    relay: { extensions: [fanoutExtension({ ackFlushMs: 10 })] },
  })
  return { relay, base, dir, hub: relay.component<Hub>('hub')!, url: `ws://127.0.0.1:${relay.port}/v1/stream` }
}

/** Welcome, then subscribe; resolves with what the relay answered the subscribe. */
async function subscribe(c: Conn, sub: Record<string, unknown> = {}): Promise<any> {
  const welcome = await c.next()
  if (welcome.type !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`)
  c.send({ type: 'subscribe', ...sub })
  return c.next()
}

let keyN = 0
/** Journals `n` events directly; returns the last seq. */
async function ingest(relay: Relay, n: number, opts: { source?: string; event?: string } = {}): Promise<number> {
  const source = opts.source ?? 'runflow'
  const event = opts.event ?? 'run.completed'
  let seq = 0
  for (let i = 0; i < n; i++) {
    const key = `k${++keyN}`
    const r = await ingestDirect(relay, key, { source, event })
    seq = r.seq
  }
  return seq
}

async function metrics(base: string): Promise<string> {
  return (await get(`${base}/metrics`)).json as string
}

t.test('a durable consumer belongs to its subscriber: another token with the same name neither takes it over nor moves it', async (t) => {
  const { relay, base, hub, url } = await startHub(t)
  await ingest(relay, 3)

  // The owner (the `*` token) takes 1..3 and acks only 1.
  const owner = await connect(t, url, TOKEN)
  t.match(await subscribe(owner, { consumer: 'billing', ack: true }), { type: 'subscribed', after: 0 })
  for (const seq of [1, 2, 3]) t.match(await owner.next(), { type: 'event', seq })
  t.same(await owner.next(), { type: 'live', seq: 3 })
  owner.send({ type: 'ack', seq: 1 })

  // The gh-only token asks for the same name: it gets a consumer of its own,
  // starting at 0 (not at the owner's ack), and its filter skipping runflow
  // events moves only its own position.
  const other = await connect(t, url, TOKEN_GH)
  t.match(await subscribe(other, { consumer: 'billing', ack: true }), { type: 'subscribed', after: 0 })
  t.same(await other.next(), { type: 'live', seq: 3 })

  // The owner was not replaced: it still gets events.
  await ingest(relay, 1)
  t.match(await owner.next(), { type: 'event', seq: 4 }, 'the owner keeps streaming (no 4409)')
  t.equal(owner.frames.length, 0)

  // Reconnecting, the owner resumes after its own ack: 2..4 again, nothing lost.
  owner.ws.close()
  await owner.closed
  const again = await connect(t, url, TOKEN)
  t.match(await subscribe(again, { consumer: 'billing', ack: true }), { type: 'subscribed', after: 1 })
  for (const seq of [2, 3, 4]) t.match(await again.next(), { type: 'event', seq })
  t.equal(other.ws.readyState, WebSocket.OPEN, 'and the other token is not replaced by the owner either')

  await hub.cursors.flush()
  t.equal((await relay.journal.getCursor('app/billing'))?.seq, 1, 'stored under <subscriber>/<consumer>')
  t.equal((await relay.journal.getCursor('ghonly/billing'))?.seq, 4, 'the gh-only consumer has its own position')
  t.equal((await relay.journal.getCursor('billing')), undefined, 'nothing under the bare name')
  const text = await metrics(base)
  t.match(text, /hookrelay_stream_consumer_lag\{consumer="app\/billing"\} 3/)
  t.match(text, /hookrelay_stream_consumer_lag\{consumer="ghonly\/billing"\} 0/)
})

t.test('a consumer stored before namespacing resumes from its bare-name ack, which is then left alone', async (t) => {
  const { relay, hub, url } = await startHub(t)
  await ingest(relay, 4)
  await relay.journal.saveCursors(new Map([['legacy', 2]]))
  const c = await connect(t, url, TOKEN)
  t.match(await subscribe(c, { consumer: 'legacy', ack: true }), { type: 'subscribed', after: 2 })
  t.match(await c.next(), { type: 'event', seq: 3 })
  c.send({ type: 'ack', seq: 3 })
  t.match(await c.next(), { type: 'event', seq: 4 })
  c.ws.close()
  await c.closed
  await hub.cursors.flush()
  t.equal((await relay.journal.getCursor('app/legacy'))?.seq, 3)
  t.equal((await relay.journal.getCursor('legacy'))?.seq, 2, 'the bare-name ack is only read')
})

t.test('consumer names: 1-64 of A-Za-z0-9._- else 4400', async (t) => {
  const { url } = await startHub(t)
  const ok = await connect(t, url, TOKEN)
  t.match(await subscribe(ok, { consumer: `a.b_c-${'x'.repeat(58)}` }), { type: 'subscribed' }, '64 characters')
  for (const name of ['x'.repeat(65), 'a:b', 'a/b', '']) {
    const c = await connect(t, url, TOKEN)
    await c.next()
    c.send({ type: 'subscribe', consumer: name })
    t.match(await c.end(), { code: 4400, reason: /subscribe\.consumer must be 1-64/ }, JSON.stringify(name))
  }
})

t.test(`at most ${MAX_CONSUMERS_PER_SUBSCRIBER} durable consumers per subscriber; a new one past it closes 4400`, async (t) => {
  const { relay, url } = await startHub(t)
  await ingest(relay, 1)
  const full = new Map<string, number>()
  for (let i = 0; i < MAX_CONSUMERS_PER_SUBSCRIBER - 1; i++) full.set(`app/c${i}`, 1)
  await relay.journal.saveCursors(full)

  // The last free one may be created by a connection (before it acks anything).
  const last = await connect(t, url, TOKEN)
  t.match(await subscribe(last, { consumer: 'last' }), { type: 'subscribed' })

  const over = await connect(t, url, TOKEN)
  await over.next()
  over.send({ type: 'subscribe', consumer: 'one-more' })
  t.match(await over.end(), { code: 4400, reason: /100 durable consumers/ })

  const known = await connect(t, url, TOKEN)
  t.match(await subscribe(known, { consumer: 'c7' }), { type: 'subscribed', after: 1 }, 'an existing one still resumes')
  const other = await connect(t, url, TOKEN_GH)
  t.match(await subscribe(other, { consumer: 'one-more' }), { type: 'subscribed' }, 'the cap is per subscriber')
})

t.test('event globs: a pathological filter is answered and matches correctly; caps on count and length close 4400', async (t) => {
  const { relay, url } = await startHub(t)
  // This shape made the regex matcher backtrack for seconds per event name.
  const evil = `${'*?'.repeat(20)}#`
  const globs = [...Array.from({ length: MAX_EVENT_GLOBS - 1 }, (_, i) => `${evil}${i}`), 'run.*']
  const c = await connect(t, url, TOKEN)
  t.match(await subscribe(c, { after: 'latest', events: globs }), { type: 'subscribed' })
  t.match(await c.next(), { type: 'live' })
  await ingest(relay, 1, { event: 'batch.completed' })
  await ingest(relay, 1, { event: `${'x'.repeat(30)}#7` })
  await ingest(relay, 1, { event: `${'x'.repeat(10)}#7` })
  await ingest(relay, 1, { event: 'run.failed' })
  await ingest(relay, 1, { event: 'batch.completed' })
  await ingest(relay, 1, { event: 'run.completed' })
  t.match(await c.next(), { type: 'event', seq: 2, event: `${'x'.repeat(30)}#7` }, '≥ 20 characters, then #7')
  t.match(await c.next(), { type: 'event', seq: 4, event: 'run.failed' })
  t.match(await c.next(), { type: 'event', seq: 6, event: 'run.completed' }, 'a name seen before is answered the same')

  const cases: Array<[string, string[], RegExp]> = [
    ['too many globs', Array.from({ length: MAX_EVENT_GLOBS + 1 }, (_, i) => `e${i}`), /at most 32 globs/],
    ['a glob too long', ['x'.repeat(MAX_GLOB_LENGTH + 1)], /at most 128 characters/],
  ]
  for (const [name, events, reason] of cases) {
    const bad = await connect(t, url, TOKEN)
    await bad.next()
    bad.send({ type: 'subscribe', events })
    t.match(await bad.end(), { code: 4400, reason }, name)
  }
  const longest = await connect(t, url, TOKEN)
  t.match(
    await subscribe(longest, { events: Array.from({ length: MAX_EVENT_GLOBS }, (_, i) => `${i}`.padEnd(MAX_GLOB_LENGTH, '?')) }),
    { type: 'subscribed' },
    'exactly at both caps',
  )
})

t.test('a reload that removes a subscriber closes its streams with 4401; one that narrows its sources closes with 4403 or narrows', async (t) => {
  const { relay, dir, url } = await startHub(t)
  const NEW_TOKEN = 'hr_test_token_app_rotated'

  const app = await connect(t, url, TOKEN)
  t.match(await subscribe(app, { after: 'latest', consumer: 'billing', ack: true }), { type: 'subscribed' })
  t.match(await app.next(), { type: 'live' })
  const appFrame = await connect(t, url)
  appFrame.send({ type: 'auth', token: TOKEN })
  t.match(await subscribe(appFrame, { after: 'latest', sources: ['runflow'] }), { type: 'subscribed' })
  t.match(await appFrame.next(), { type: 'live' })
  const appIdle = await connect(t, url, TOKEN)
  t.match(await appIdle.next(), { type: 'welcome' }, 'authenticated, not subscribed yet')
  const ghNamed = await connect(t, url, TOKEN_GH)
  t.match(await subscribe(ghNamed, { after: 'latest', sources: ['gh'] }), { type: 'subscribed' })
  t.match(await ghNamed.next(), { type: 'live' })
  const ghAll = await connect(t, url, TOKEN_GH)
  t.match(await subscribe(ghAll, { after: 'latest' }), { type: 'subscribed' })
  t.match(await ghAll.next(), { type: 'live' })

  // 1. The README's rotation: a new subscriber entry, then the old one removed.
  // Every connection the removed subscriber's token opened ends with 4401.
  const rotated = testConfigYaml(dir).replace(`name: app\n    token: ${TOKEN}`, `name: app2\n    token: ${NEW_TOKEN}`)
  t.not(rotated, testConfigYaml(dir))
  relay.reload(loadConfigText(rotated, '<test>', { env: {} }))
  for (const [name, c] of [['header auth, subscribed', app], ['frame auth, subscribed', appFrame], ['not subscribed', appIdle]] as const) {
    t.match(await c.end(), { code: 4401, reason: /token revoked/ }, name)
  }
  await ingest(relay, 1, { source: 'gh', event: 'push' })
  t.match(await ghNamed.next(), { type: 'event', seq: 1, source: 'gh' }, 'another token is untouched')
  t.match(await ghAll.next(), { type: 'event', seq: 1, source: 'gh' })
  const fresh = await connect(t, url, NEW_TOKEN)
  t.match(await fresh.next(), { type: 'welcome' }, 'the new token connects')
  t.equal((await get(`http://127.0.0.1:${relay.port}/v1/events?after=0`, TOKEN)).status, 401)

  // 2. The gh-only subscriber may now read runflow instead of gh: a subscription
  // that named gh closes with 4403; one that named no sources follows the token.
  relay.reload(loadConfigText(rotated.replace('sources: ["gh"]', 'sources: ["runflow"]'), '<test>', { env: {} }))
  t.match(await ghNamed.end(), { code: 4403, reason: /may no longer read source gh/ })
  await ingest(relay, 1, { source: 'gh', event: 'push' })
  await ingest(relay, 1, { source: 'runflow', event: 'run.completed' })
  t.match(await ghAll.next(), { type: 'event', seq: 3, source: 'runflow' }, 'gh events no longer delivered; runflow ones are')
  t.equal(ghAll.ws.readyState, WebSocket.OPEN)
})
