// Destinations, black-box: a real relay POSTs to a real node:http handler.
import { createHmac, timingSafeEqual } from 'node:crypto'
import t from 'tap'
import { uuidv7 } from '../src/sample.js'
import { StandardWebhooksVerifier } from '../src/verify/standard-webhooks.js'
import { generateEd25519, generateSecret } from '../src/verify/keys.js'
import { ingestDirect, postRunflow, SECRET } from './helpers/relay.js'
import { api, deliveredCount, nextAttempt, OPERATOR_TOKEN, startDestinationRelay, startHandler } from './destinations-harness.js'

function dest(url: string, more = ''): string {
  return `destinations:
  app:
    url: ${url}
    sources: [runflow]
    retry: { schedule: [10ms, 10ms, 10ms, 10ms], jitter: 0 }
${more}`
}

/** The seed handler's own check: lowercase hex HMAC-SHA256 of the raw body with the secret as-is. */
function runflowSignatureValid(raw: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false
  const want = Buffer.from(createHmac('sha256', SECRET).update(raw).digest('hex'))
  const got = Buffer.from(header)
  return got.length === want.length && timingSafeEqual(got, want)
}

t.test('signing: original delivers the raw body byte-exact with the sender signature that verifies', async (t) => {
  const h = await startHandler(t)
  const { base } = await startDestinationRelay(t, dest(h.url))
  // Odd spacing, key order and escapes that any re-serialization would change.
  const raw = `{ "event":"run.completed",  "run_id":"${uuidv7()}", "status":"succeeded","output":{"text":"caf\\u00e9 \u2603"} ,"n":1.50 }`
  const got = h.next()
  const answer = await postRunflow(base, raw)
  t.equal(answer.status, 200)
  const r = await got
  t.equal(r.method, 'POST')
  t.equal(r.url, '/webhook/runflow')
  t.same(r.body, Buffer.from(raw), 'body byte-exact')
  t.ok(runflowSignatureValid(r.body, r.headers['runflow-signature']), 'Runflow-Signature verifies with the seed handler code path')
  t.equal(r.headers['content-type'], 'application/json')
  t.equal(r.headers['hookrelay-seq'], '1')
})

t.test('connections are kept alive and reused across deliveries', async (t) => {
  const h = await startHandler(t)
  const { relay, worker } = await startDestinationRelay(t, dest(h.url))
  const five = deliveredCount(worker(), 5)
  for (let i = 0; i < 5; i++) await ingestDirect(relay, `reuse-${i}`)
  await five
  t.equal(new Set(h.received.map((r) => r.remotePort)).size, 1, 'one connection for five deliveries')
})

t.test('redirects are not followed: a 3xx is a failed attempt', async (t) => {
  const h = await startHandler(t, (r) => (r.url === '/webhook/runflow' ? { status: 307, headers: { location: '/elsewhere' } } : { status: 200 }))
  const { relay, worker } = await startDestinationRelay(t, dest(h.url))
  const first = nextAttempt(worker())
  await ingestDirect(relay, 'moved')
  const a = await first
  t.equal(a.status, 307)
  t.equal(a.outcome, 'retry')
  t.notOk(h.received.some((r) => r.url === '/elsewhere'), 'the Location was not requested')
})

t.test('concurrency 1: in journal order under failures (first two attempts of each fail), each delivered once', async (t) => {
  const tries = new Map<string, number>()
  const delivered: string[] = []
  const h = await startHandler(t, (r) => {
    const key = (JSON.parse(r.body.toString()) as { run_id: string }).run_id
    const n = (tries.get(key) ?? 0) + 1
    tries.set(key, n)
    if (n <= 2) return { status: 500 }
    delivered.push(key)
    return { status: 200 }
  })
  const { relay, worker } = await startDestinationRelay(t, dest(h.url, '    circuit: { failures: 3 }').replace('[10ms, 10ms, 10ms, 10ms]', '[1ms, 1ms, 1ms]'))
  const N = 1000
  const all = deliveredCount(worker(), N)
  for (let i = 0; i < N; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => ingestDirect(relay, `run-${String(i + j).padStart(4, '0')}`)))
  }
  const journalOrder = (await relay.journal.read(0, N)).map((e) => e.key)
  await all
  t.same(delivered, journalOrder, 'delivered exactly in journal order')
  t.ok([...tries.values()].every((n) => n === 3), 'three requests each: two failures, one delivery')
  const attempts = await worker().attempts(1, 10)
  t.same(attempts.map((a) => a.outcome), ['delivered', 'retry', 'retry'], 'every attempt recorded, newest first')
  t.ok(attempts.filter((a) => a.outcome === 'retry').every((a) => a.next_at !== null && a.next_at > a.at), 'next attempt in the future')
  t.equal(worker().summary().cursor, N, 'cursor at the last')
  t.equal(delivered.length, N)
})

t.test('concurrency > 1: deliveries run in parallel', async (t) => {
  const waiting: Array<() => void> = []
  let open = 0
  let peak = 0
  const h = await startHandler(t, () => 'hang')
  // Answer only once four requests are open at the same time: serial delivery would never get there.
  h.events.on('request', () => {
    open++
    peak = Math.max(peak, open)
    if (open === 4) for (const r of waiting.splice(0)) r()
  })
  h.script = () => 'hang'
  const { relay, worker } = await startDestinationRelay(t, dest(h.url, '    concurrency: 4\n    timeout: 1m'))
  const four = new Promise<void>((resolve) => waiting.push(resolve))
  for (let i = 0; i < 4; i++) await ingestDirect(relay, `p-${i}`)
  await four
  t.equal(peak, 4, 'four requests in flight at once')
  t.equal(worker().summary().in_flight, 4)
})

t.test('410 pauses the destination; resume delivers it', async (t) => {
  const h = await startHandler(t, () => ({ status: 410 }))
  const { relay, base, worker, logs } = await startDestinationRelay(t, dest(h.url))
  const paused = nextAttempt(worker(), (a) => a.outcome === 'paused')
  await ingestDirect(relay, 'gone-1')
  const a = await paused
  t.equal(a.status, 410)
  t.equal(a.next_at, null)
  const show = await api(base, '/v1/destinations/app', OPERATOR_TOKEN)
  t.equal(show.json.paused, true)
  t.equal(show.json.paused_reason, 'gone (410)')
  t.equal(h.received.length, 1, 'no retry while paused')
  t.equal(logs.filter((l) => l.msg.startsWith('destination paused')).length, 1, 'one warn line')
  h.script = () => ({ status: 200 })
  const delivered = nextAttempt(worker(), (x) => x.outcome === 'delivered')
  t.equal((await api(base, '/v1/destinations/app/resume', OPERATOR_TOKEN, { method: 'POST' })).status, 200)
  t.equal((await delivered).seq, 1)
  t.equal(worker().summary().paused, false)
})

t.test('429 honours Retry-After instead of the schedule', async (t) => {
  const h = await startHandler(t, (r) => (r.n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }))
  const { relay, worker } = await startDestinationRelay(t, dest(h.url))
  const first = nextAttempt(worker())
  const second = h.next((r) => r.n === 2)
  await ingestDirect(relay, 'slow-down')
  const a = await first
  t.equal(a.status, 429)
  t.equal(a.outcome, 'retry')
  t.ok(a.next_at! - a.at >= 1000, `next attempt a second later, not 10 ms (${a.next_at! - a.at} ms)`)
  await second
  t.ok(Date.now() - a.at >= 1000, 'the second request came after Retry-After')
})

t.test('timeouts, dropped connections and refused connections retry on the schedule', async (t) => {
  const h = await startHandler(t, (r) => (r.n === 1 ? 'hang' : r.n === 2 ? 'drop' : { status: 200 }))
  const { relay, worker } = await startDestinationRelay(t, dest(h.url, '    timeout: 200ms'))
  const records: string[] = []
  worker().on('attempt', (a) => records.push(`${a.outcome}:${a.error ?? a.status}`))
  const done = nextAttempt(worker(), (a) => a.outcome === 'delivered')
  await ingestDirect(relay, 'flaky')
  await done
  t.equal(records[0], 'retry:timeout')
  t.match(records[1], /^retry:(ECONNRESET|socket hang up)$/)
  t.equal(records[2], 'delivered:200')

  // Nothing listening at all.
  const { relay: r2, worker: w2 } = await startDestinationRelay(t, dest('http://127.0.0.1:1/nothing'))
  const refused = nextAttempt(w2())
  await ingestDirect(r2, 'nobody-home')
  const a = await refused
  t.equal(a.error, 'ECONNREFUSED')
  t.equal(a.outcome, 'retry')
})

t.test('signing: standard-webhooks re-signs v1 and v1a, webhook-id stable across retries', async (t) => {
  const secret = generateSecret()
  const pair = generateEd25519()
  const h = await startHandler(t, (r) => (r.n === 1 ? { status: 500 } : { status: 200 }))
  const { relay, worker } = await startDestinationRelay(
    t,
    dest(h.url, `    signing: { scheme: standard-webhooks, secret: "${secret}", private_key: "${pair.secretKey}" }`),
  )
  const done = nextAttempt(worker(), (a) => a.outcome === 'delivered')
  await ingestDirect(relay, 'resigned')
  await done
  const [r1, r2] = h.received
  t.equal(r1!.headers['webhook-id'], r2!.headers['webhook-id'], 'webhook-id stable')
  for (const r of [r1!, r2!]) {
    const headers = r.headers as Record<string, string>
    const v1 = new StandardWebhooksVerifier({ scheme: 'standard-webhooks', secrets: [secret], public_keys: [], tolerance_ms: 300_000 }).verify(headers, r.body, Date.now())
    const v1a = new StandardWebhooksVerifier({ scheme: 'standard-webhooks', secrets: [], public_keys: [pair.publicKey], tolerance_ms: 300_000 }).verify(headers, r.body, Date.now())
    t.ok(v1.ok, 'v1 verifies')
    t.ok(v1a.ok, 'v1a verifies')
  }
  t.notOk('runflow-signature' in r1!.headers, 'no sender signature when re-signing')
})
