// Per-address ingest rate limit: a flood of bad signatures from one loopback
// address gets 429 before any signature work, while a legitimate sender on
// another loopback address (127.0.0.2) is unaffected; X-Forwarded-For only from
// trusted proxies; bounded memory. Real uWS relay, real sockets.
import { Agent, request } from 'node:http'
import t from 'tap'
import { canonicalIp, IngestRateLimiter } from '../src/http/rate-limit.js'
import { signRunflow } from '../src/verify/sign.js'
import { SECRET, startTestRelay } from './helpers/relay.js'
import { callbackOfSize, metricValue, scrape } from './helpers/ops.js'

interface Reply {
  status: number
  retryAfter: string | undefined
  code: string | undefined
}

/** POSTs from a chosen local address (the client socket is bound to it). */
function postFrom(agent: Agent, url: string, body: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => {
        let code: string | undefined
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code
        } catch {
          code = undefined
        }
        const ra = res.headers['retry-after']
        resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(ra) ? ra[0] : ra, code })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

function agentFor(t: { teardown(fn: () => unknown): void }, localAddress: string): Agent {
  const agent = new Agent({ keepAlive: true, localAddress, maxSockets: 16 })
  t.teardown(() => agent.destroy())
  return agent
}

const badSignature = { 'runflow-signature': '0'.repeat(64) }

t.test('a flood of bad signatures is rate limited; a sender on another address is unaffected', async (t) => {
  const { base } = await startTestRelay(t, {
    extra: 'rate_limit: { ingest_per_second: 5, ingest_burst: 10, limit_loopback: true }',
  })
  const url = `${base}/webhook/runflow`
  const flooder = agentFor(t, '127.0.0.1')
  const sender = agentFor(t, '127.0.0.2')
  const flood: Reply[] = []
  let stop = false
  const floodDone = Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 25 && !stop; i++) flood.push(await postFrom(flooder, url, callbackOfSize(2000), badSignature))
    }),
  )
  const legit: Reply[] = []
  for (let i = 0; i < 8; i++) {
    const body = callbackOfSize(500)
    legit.push(await postFrom(sender, url, body, signRunflow(SECRET, body)))
  }
  await floodDone
  stop = true
  t.same(
    legit.map((r) => r.status),
    new Array(8).fill(200),
    'every legitimate callback from 127.0.0.2 acknowledged',
  )
  const limited = flood.filter((r) => r.status === 429)
  const verified = flood.filter((r) => r.status === 401)
  t.equal(limited.length + verified.length, flood.length, 'the flood got only 401 and 429')
  t.ok(limited.length >= flood.length - 30, `${limited.length} of ${flood.length} refused with 429`)
  t.ok(verified.length <= 20, `only ${verified.length} reached signature checking (burst 10 + 5/s)`)
  t.ok(limited.every((r) => r.code === 'HOOKRELAY_HTTP_RATE_LIMITED' && Number(r.retryAfter) >= 1), '429 says when to retry')
  const text = await scrape(base)
  t.equal(metricValue(text, 'hookrelay_requests_total{source="runflow",status="429"}'), limited.length)
})

t.test('loopback is exempt unless limit_loopback; 0 per second is off', async (t) => {
  const exempt = await startTestRelay(t, { extra: 'rate_limit: { ingest_per_second: 1, ingest_burst: 1 }' })
  const off = await startTestRelay(t, { extra: 'rate_limit: { ingest_per_second: 0, limit_loopback: true }' })
  for (const { base } of [exempt, off]) {
    const agent = agentFor(t, '127.0.0.1')
    const statuses = []
    for (let i = 0; i < 10; i++) statuses.push((await postFrom(agent, `${base}/webhook/runflow`, '{}', badSignature)).status)
    t.same(statuses, new Array(10).fill(401))
  }
})

t.test('X-Forwarded-For counts only from trusted proxies, rightmost untrusted address first', async (t) => {
  const { base } = await startTestRelay(t, {
    extra: 'rate_limit: { ingest_per_second: 1, ingest_burst: 2, trusted_proxies: ["127.0.0.1"] }',
  })
  const url = `${base}/webhook/runflow`
  const proxy = agentFor(t, '127.0.0.1')
  const other = agentFor(t, '127.0.0.2')
  const from = async (agent: Agent, xff: string): Promise<number> => (await postFrom(agent, url, '{}', { ...badSignature, 'x-forwarded-for': xff })).status
  t.equal(await from(proxy, '203.0.113.9'), 401)
  t.equal(await from(proxy, '198.51.100.1, 203.0.113.9'), 401, 'a forged left part does not make a new client')
  t.equal(await from(proxy, '203.0.113.9'), 429, 'the client behind the proxy is limited')
  t.equal(await from(proxy, '203.0.113.10, 127.0.0.1'), 401, 'trusted hops are skipped from the right')
  t.equal(await from(other, '203.0.113.9'), 401, 'an untrusted peer’s header is ignored (loopback, exempt)')
})

t.test('canonical addresses, bucket refill and bounded memory', async (t) => {
  t.equal(canonicalIp('::ffff:127.0.0.1'), '127.0.0.1')
  t.equal(canonicalIp('0000:0000:0000:0000:0000:ffff:7f00:0002'), '127.0.0.2')
  t.equal(canonicalIp('0000:0000:0000:0000:0000:0000:0000:0001'), '::1')
  t.equal(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1')
  t.equal(canonicalIp('[2001:db8::1]'), '2001:db8::1')
  t.equal(canonicalIp(' 192.0.2.1 '), '192.0.2.1')
  t.equal(canonicalIp('not-an-ip'), 'not-an-ip')

  let now = 0
  const cfg = { ingest_per_second: 2, ingest_burst: 2, limit_loopback: false, trusted_proxies: [] }
  const limiter = new IngestRateLimiter(cfg, { now: () => now, maxBuckets: 100 })
  t.teardown(() => limiter.close())
  t.equal(limiter.take('192.0.2.1'), 0)
  t.equal(limiter.take('192.0.2.1'), 0)
  t.equal(limiter.take('192.0.2.1'), 1, 'empty: wait a second')
  now += 500
  t.equal(limiter.take('192.0.2.1'), 0, 'refilled at 2/s')
  t.equal(limiter.take('127.0.0.1'), 0)
  t.equal(limiter.size, 1, 'loopback holds no bucket')
  for (let i = 0; i < 1000; i++) limiter.take(`198.51.100.${i % 250}-${i}`)
  t.ok(limiter.size <= 100, `at most maxBuckets (${limiter.size})`)
  now += 10_000
  limiter.sweep()
  t.equal(limiter.size, 0, 'idle buckets are dropped once full again')
  limiter.update({ ...cfg, ingest_per_second: 0 })
  t.equal(limiter.enabled, false)
  t.equal(limiter.take('192.0.2.1'), 0)
})
