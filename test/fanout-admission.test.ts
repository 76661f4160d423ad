// Black-box: who gets a /v1/stream connection, over a real uWS relay and real `ws` clients.
// Sockets still in the auth window must not lock out subscribers that authenticate,
// and a subscription must name sources that exist.
import t from 'tap'
import { MAX_UNAUTHENTICATED, MAX_UNAUTHENTICATED_PER_ADDRESS } from '../src/fanout/connection-limits.js'
import { fanoutExtension, type HubOptions } from '../src/fanout/hub.js'
import { TOKEN, TOKEN_GH, startTestRelay, ingestDirect } from './helpers/relay.js'
import { connect, upgradeStatus, type Conn } from './helpers/ws-conn.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

// The auth window is made long so that no socket leaves it by timing out while
// a loaded machine opens the others: every socket counted stays counted.
async function startHub(t: TapLike, opts: { extra?: string; hub?: HubOptions } = {}) {
  const { relay } = await startTestRelay(t, {
    extra: opts.extra,
    relay: { extensions: [fanoutExtension({ authTimeoutMs: 600_000, ...opts.hub })] },
  })
  return { relay, url: `ws://127.0.0.1:${relay.port}/v1/stream` }
}

/** `n` sockets that upgrade without a header and never send a frame, from `localAddress`. */
async function silentSockets(t: TapLike, url: string, n: number, localAddress?: string): Promise<Conn[]> {
  const out: Conn[] = []
  for (let i = 0; i < n; i++) out.push(await connect(t, url, undefined, { localAddress }))
  return out
}

t.test('sockets in the auth window do not count against max_connections_per_ip: a subscriber with a token still gets in', async (t) => {
  const { relay, url } = await startHub(t, { extra: 'stream: { max_connections_per_ip: 3 }' })
  const idle = await silentSockets(t, url, MAX_UNAUTHENTICATED_PER_ADDRESS)
  t.equal(idle.length, MAX_UNAUTHENTICATED_PER_ADDRESS, `${MAX_UNAUTHENTICATED_PER_ADDRESS} header-less sockets from one address, more than max_connections_per_ip`)

  const sub = await connect(t, url, TOKEN)
  t.match(await sub.next(), { type: 'welcome' })
  sub.send({ type: 'subscribe', after: 'latest' })
  t.match(await sub.next(), { type: 'subscribed' })
  t.match(await sub.next(), { type: 'live' })
  const { seq } = await ingestDirect(relay, 'k1')
  t.match(await sub.next(), { type: 'event', seq })

  t.equal(await upgradeStatus(url, {}), 429, 'one more header-less socket from that address is refused')
  t.equal(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}` }), 101, 'one with a token is not')
  idle[0]!.ws.close()
  await idle[0]!.closed
  const again = await connect(t, url)
  again.send({ type: 'auth', token: TOKEN })
  t.match(await again.next(), { type: 'welcome' }, 'a slot in the auth window frees when its socket closes')
  for (const c of idle) t.equal(c.frames.length, 0, 'the idle ones were never welcomed')
})

t.test('authenticating by frame counts from then on; past max_connections_per_ip it closes 1013', async (t) => {
  const { url } = await startHub(t, { extra: 'stream: { max_connections_per_ip: 2 }' })
  const a = await connect(t, url, TOKEN)
  await connect(t, url, TOKEN)
  const late = await connect(t, url)
  late.send({ type: 'auth', token: TOKEN })
  t.match(await late.end(), { code: 1013, reason: /too many stream connections/ })
  t.equal(late.frames.length, 0, 'no welcome')

  a.ws.close()
  await a.closed
  const browser = await connect(t, url)
  browser.send({ type: 'auth', token: TOKEN })
  t.match(await browser.next(), { type: 'welcome' }, 'the freed slot takes a frame-authenticated connection')
  t.equal(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}` }), 429, 'and it counts: the address is full again')
})

t.test(`at most ${MAX_UNAUTHENTICATED} sockets in the auth window in all, whatever their addresses`, async (t) => {
  const { url } = await startHub(t)
  const addresses = Math.ceil(MAX_UNAUTHENTICATED / MAX_UNAUTHENTICATED_PER_ADDRESS)
  for (let i = 0; i < addresses; i++) await silentSockets(t, url, MAX_UNAUTHENTICATED_PER_ADDRESS, `127.0.0.${i + 2}`)
  const fresh = `127.0.0.${addresses + 2}`
  const refused = await new Promise<number>((resolve) => {
    void connect(t, url, undefined, { localAddress: fresh }).then(
      () => resolve(101),
      (err: Error) => resolve(Number(/(\d{3})/.exec(err.message)?.[1] ?? 0)),
    )
  })
  t.equal(refused, 429, 'a header-less socket from a new address is refused')
  const sub = await connect(t, url, TOKEN, { localAddress: fresh })
  t.match(await sub.next(), { type: 'welcome' }, 'a subscriber with a token from that address gets in')
})

t.test('subscribing to a source that is not configured closes 4400 with the reason', async (t) => {
  const { url } = await startHub(t)
  const unknown = await connect(t, url, TOKEN)
  await unknown.next()
  unknown.send({ type: 'subscribe', after: 0, sources: ['runflow', 'runflw'] })
  t.match(await unknown.end(), { code: 4400, reason: /no source named runflw is configured/ })
  t.equal(unknown.frames.length, 0, 'not subscribed')

  const withStar = await connect(t, url, TOKEN)
  await withStar.next()
  withStar.send({ type: 'subscribe', after: 0, sources: ['*', 'nope'] })
  t.match(await withStar.end(), { code: 4400, reason: /nope/ })

  // A token that may not read it learns nothing about whether it exists.
  const limited = await connect(t, url, TOKEN_GH)
  await limited.next()
  limited.send({ type: 'subscribe', after: 0, sources: ['nope'] })
  t.match(await limited.end(), { code: 4403 })

  const known = await connect(t, url, TOKEN)
  await known.next()
  known.send({ type: 'subscribe', after: 0, sources: ['runflow', 'gh'] })
  t.match(await known.next(), { type: 'subscribed' })
})
