// The HTTP front on ordinary and hostile traffic, from raw sockets on 127.0.0.1:
// every request gets an answer or a deliberate close, never silence.
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { pino } from 'pino'
import { sampleRunflowCallback } from '../src/sample.js'
import { SECRET, get, postRunflow, startTestRelay } from './helpers/relay.js'
import { rawExchange, signedPost } from './helpers/raw-http.js'

const FIVE_MB = 'max_body: 5mb'

/** Opens a socket that declares a `declared`-byte body and sends `sent` bytes of it, then stalls. */
async function stalledBody(port: number, declared: number, sent: number, extra = ''): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  s.on('error', () => {})
  await new Promise<void>((r) => s.on('connect', () => r()))
  s.write(`POST /webhook/runflow HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n${extra}\r\n${'{'.padEnd(sent, ' ')}`)
  return s
}

/** Resolves once `cond` holds, checking on each turn of the loop (no fixed sleeps). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r))
}

t.test('64 sockets declaring large bodies and sending a byte do not starve a signed callback', async (t) => {
  const { relay, base } = await startTestRelay(t, {
    extra: 'rate_limit: { ingest_per_second: 50, ingest_burst: 100 }',
    edit: (y) => y.replace('max_body: 64kb', FIVE_MB),
  })
  const socks: Socket[] = []
  t.teardown(() => socks.forEach((s) => s.destroy()))
  for (let i = 0; i < 64; i++) socks.push(await stalledBody(relay.port, i === 12 ? 4 * 1024 * 1024 : 5 * 1024 * 1024, 1))
  await until(() => relay.bodyBudget.inUse === 64)
  t.equal(relay.bodyBudget.inUse, 64, 'the budget holds the 64 bytes received, not the 320 MiB declared')
  const ok = await postRunflow(base, sampleRunflowCallback())
  t.equal(ok.status, 200, 'the signed callback is acknowledged')
  t.equal(relay.journal.head, 1)
})

t.test('one client address cannot hold more than its share of the body budget', async (t) => {
  const proxy = 'rate_limit: { trusted_proxies: ["127.0.0.1"] }\nhttp: { max_body_in_flight: 256kb, max_body_per_address: 48kb }'
  const { relay, base } = await startTestRelay(t, { extra: proxy })
  // Behind a trusted proxy, the client is the address in X-Forwarded-For.
  const a = await stalledBody(relay.port, 60_000, 40_000, 'x-forwarded-for: 192.0.2.7\r\n')
  t.teardown(() => a.destroy())
  await until(() => relay.bodyBudget.inUse === 40_000)
  const body = sampleRunflowCallback() + ' '.repeat(10_000)
  const same = await rawExchange(relay.port, [signedPost(SECRET, body, { extra: 'x-forwarded-for: 192.0.2.7\r\n' })], { responses: 1 })
  t.equal(same.responses[0]?.status, 503, 'the same client is over its share')
  t.match(same.responses[0]?.body, /HOOKRELAY_HTTP_BUSY/)
  const other = await rawExchange(relay.port, [signedPost(SECRET, body, { extra: 'x-forwarded-for: 198.51.100.9\r\n' })], { responses: 1 })
  t.equal(other.responses[0]?.status, 200, 'another client is not')
  t.equal((await postRunflow(base, sampleRunflowCallback())).status, 200)
})

t.test('HTTP/1.0 is answered, and its connection closed after the answer', async (t) => {
  const { relay } = await startTestRelay(t)
  const live = await rawExchange(relay.port, ['GET /livez HTTP/1.0\r\n\r\n'])
  t.equal(live.responses[0]?.status, 200)
  t.ok(live.closed, 'closed after the answer (HTTP/1.0 has no keep-alive by default)')
  const body = sampleRunflowCallback()
  const post = await rawExchange(relay.port, [signedPost(SECRET, body, { version: 'HTTP/1.0' })])
  t.equal(post.responses[0]?.status, 200)
  t.match(JSON.parse(post.responses[0]!.body), { ok: true, seq: 1, revision: 1 })
  t.equal(relay.journal.head, 1, 'journaled')
})

t.test('pipelined requests after a POST are answered, each in order', async (t) => {
  const { relay } = await startTestRelay(t)
  const bodies = [sampleRunflowCallback(), sampleRunflowCallback(), sampleRunflowCallback()]
  const wire = bodies.map((b) => signedPost(SECRET, b)).join('') + 'GET /livez HTTP/1.1\r\nhost: relay\r\n\r\n'
  const r = await rawExchange(relay.port, [wire], { responses: 4 })
  t.same(
    r.responses.map((x) => x.status),
    [200, 200, 200, 200],
  )
  t.same(
    r.responses.slice(0, 3).map((x) => JSON.parse(x.body).seq),
    [1, 2, 3],
    'answers come back in request order',
  )
  t.equal(relay.journal.head, 3)
})

t.test('many header lines are taken; headers over 16 KiB get 431', async (t) => {
  const { relay } = await startTestRelay(t)
  const many = Array.from({ length: 60 }, (_, i) => `x-proxy-hop-${i}: 10.0.0.${i}\r\n`).join('')
  const body = sampleRunflowCallback()
  const r = await rawExchange(relay.port, [signedPost(SECRET, body, { extra: many })], { responses: 1 })
  t.equal(r.responses[0]?.status, 200, '60 header lines from proxies are fine')
  const huge = `x-big: ${'a'.repeat(17 * 1024)}\r\n`
  const big = await rawExchange(relay.port, [signedPost(SECRET, sampleRunflowCallback(), { extra: huge })])
  t.equal(big.responses[0]?.status, 431)
  t.match(big.responses[0]?.body, /HOOKRELAY_HTTP_HEADERS_TOO_LARGE/)
  t.ok(big.closed)
  t.equal(relay.journal.head, 1)
})

t.test('a body that stalls gets the configured 408 and one log line, not a silent close', async (t) => {
  const lines: string[] = []
  const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) })
  const { relay } = await startTestRelay(t, { extra: 'http: { body_timeout: 2s }', relay: { logger } })
  t.equal(relay.config.http.body_timeout_ms, 2000)
  const body = sampleRunflowCallback()
  const r = await rawExchange(relay.port, [signedPost(SECRET, body).slice(0, -10)])
  t.equal(r.responses[0]?.status, 408)
  t.match(r.responses[0]?.body, /HOOKRELAY_INGEST_BODY_TIMEOUT/)
  t.ok(r.closed)
  t.equal(lines.filter((l) => l.includes('body timeout')).length, 1, 'one log line')
  t.equal(relay.journal.head, 0)
  const dflt = await startTestRelay(t)
  t.equal(dflt.relay.config.http.body_timeout_ms, 30_000, 'the documented default is 30 s')
})

t.test('malformed framing gets 400 (or 413), never silence; smuggling shapes are refused', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const signed = signedPost(SECRET, sampleRunflowCallback())
  const [head, body] = [signed.slice(0, signed.indexOf('\r\n\r\n') + 2), signed.slice(signed.indexOf('\r\n\r\n') + 4)]
  const noLen = head.replace(/content-length: \d+\r\n/, '')
  const cases: Array<[string, string, number]> = [
    ['garbage request line', 'HELLO THERE\r\n\r\n', 400],
    ['HTTP/9.9', 'GET /livez HTTP/9.9\r\nhost: relay\r\n\r\n', 400],
    ['HTTP/1.1 without Host', 'GET /livez HTTP/1.1\r\n\r\n', 400],
    ...['-1', 'abc', '1e2', '0x10', '+5'].map((v): [string, string, number] => [`content-length ${v}`, `${noLen}content-length: ${v}\r\n\r\n${body}`, 400]),
    ['content-length 99999999999999', `${noLen}content-length: 99999999999999\r\n\r\n${body}`, 413],
    ['two differing content-length', `${noLen}content-length: ${body.length}\r\ncontent-length: ${body.length + 1}\r\n\r\n${body}`, 400],
    ['content-length with transfer-encoding', `${head}transfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, 400],
    ['transfer-encoding xchunked', `${noLen}transfer-encoding: xchunked\r\n\r\n${body}`, 400],
  ]
  for (const [name, wire, status] of cases) {
    const r = await rawExchange(relay.port, [wire])
    t.equal(r.responses[0]?.status, status, name)
    t.match(r.responses[0]?.body ?? '', /"code":"HOOKRELAY_/, `${name}: a JSON error body`)
    t.ok(r.closed, `${name}: connection closed`)
  }
  t.equal(relay.journal.head, 0, 'nothing journaled')
  // Chunk extensions are legal (RFC 9112 §7.1.1): a signed chunked body with one is taken.
  const ext = await rawExchange(relay.port, [`${noLen}transfer-encoding: chunked\r\n\r\n${body.length.toString(16)};name=value\r\n${body}\r\n0\r\n\r\n`], {
    responses: 1,
  })
  t.equal(ext.responses[0]?.status, 200, 'chunk extension')
  t.equal((await get(`${base}/livez`)).status, 200)
})

t.test('HEAD /livez answers; a 404 does not echo a long path; /metrics is guarded', async (t) => {
  const { relay } = await startTestRelay(t)
  const head = await rawExchange(relay.port, ['HEAD /livez HTTP/1.1\r\nhost: relay\r\n\r\n'], { responses: 1, headRequests: [0] })
  t.equal(head.responses[0]?.status, 200)
  t.equal(head.responses[0]?.body, '')
  const long = '/x'.repeat(2000)
  const nf = await rawExchange(relay.port, [`GET ${long} HTTP/1.1\r\nhost: relay\r\n\r\n`], { responses: 1 })
  t.equal(nf.responses[0]?.status, 404)
  t.ok(nf.responses[0]!.body.length < 400, `404 body is ${nf.responses[0]!.body.length} bytes`)
})

t.test('/metrics: open on a loopback listener, bearer metrics.token when set, off beyond loopback without one', async (t) => {
  const open = await startTestRelay(t)
  t.equal((await get(`${open.base}/metrics`)).status, 200, 'loopback, no token: open')
  const guarded = await startTestRelay(t, { extra: 'metrics: { token: "m-secret-123" }' })
  const no = await get(`${guarded.base}/metrics`)
  t.equal(no.status, 401)
  t.equal(no.json.error.code, 'HOOKRELAY_METRICS_UNAUTHORIZED')
  t.equal((await get(`${guarded.base}/metrics`, 'wrong')).status, 401)
  t.equal((await get(`${guarded.base}/metrics`, 'm-secret-123')).status, 200)
  // Listening on every address (as in Docker) with no token: /metrics is off.
  const dir = t.testdir()
  const { loadConfigText } = await import('../src/config/load.js')
  const { testConfigYaml, silent } = await import('./helpers/relay.js')
  const { Relay } = await import('../src/relay.js')
  const wide = await Relay.start(loadConfigText(testConfigYaml(dir).replace('host: 127.0.0.1', 'host: 0.0.0.0'), '<test>', { env: {} }), {
    logger: silent,
    processMetrics: false,
  })
  t.teardown(() => wide.close())
  const off = await get(`http://127.0.0.1:${wide.port}/metrics`)
  t.equal(off.status, 403)
  t.equal(off.json.error.code, 'HOOKRELAY_METRICS_DISABLED')
})

t.test('a 60-case raw-socket matrix: every case is answered or deliberately closed, /livez stays up, nothing unsigned is journaled', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const body = sampleRunflowCallback()
  const lines = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']
  const paths = ['/webhook/runflow', '/livez', '/readyz', '/v1/events', '/v1/runs/runflow/x', '/nope', '/v1/stream', '/webhook/runflow?x=1', '/%zz', '*']
  const cases: string[] = []
  // 6 methods × 10 paths, unsigned, some with a body.
  for (const m of lines) {
    for (const p of paths) {
      const withBody = m === 'POST' || m === 'PUT' || m === 'PATCH'
      cases.push(`${m} ${p} HTTP/1.1\r\nhost: relay\r\n${withBody ? `content-type: application/json\r\ncontent-length: ${body.length}\r\n` : ''}\r\n${withBody ? body : ''}`)
    }
  }
  t.equal(cases.length, 60)
  for (const wire of cases) {
    const r = await rawExchange(relay.port, [wire + 'GET /livez HTTP/1.1\r\nhost: relay\r\n\r\n'], { responses: 2 })
    const first = r.responses[0]
    t.ok(first !== undefined || r.closed, `${wire.split('\r\n')[0]}: answered (${first?.status}) or closed`)
    if (first && !r.closed) t.equal(r.responses[1]?.status, 200, `${wire.split('\r\n')[0]}: /livez on the same connection after it`)
    t.equal((await get(`${base}/livez`)).status, 200)
  }
  t.equal(relay.journal.head, 0, 'nothing unsigned was journaled')
})
