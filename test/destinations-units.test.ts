// Unit tests: the retry decision (a property test over random outcome sequences) and the circuit.
import t from 'tap'
import { Circuit } from '../src/destinations/circuit.js'
import { decide, parseRetryAfter, type AttemptResult, type RetryPolicy } from '../src/destinations/retry.js'
import { prng } from './helpers/prng.js'


function randomResult(r: () => number): AttemptResult {
  const p = r()
  if (p < 0.15) return { kind: 'delivered', status: 200 + Math.floor(r() * 100) }
  if (p < 0.2) return { kind: 'gone', status: 410 }
  if (p < 0.35) return { kind: 'failed', status: 429, error: 'status 429', retryAfterMs: Math.floor(r() * 10 ** (1 + r() * 8)) }
  if (p < 0.6) return { kind: 'failed', status: null, error: ['timeout', 'ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET'][Math.floor(r() * 4)]! }
  return { kind: 'failed', status: 300 + Math.floor(r() * 300), error: 'status' }
}

t.test('retry decision over random policies and outcomes: the next attempt always in the future and within max_age, an end within the schedule', async (t) => {
  for (let seed = 1; seed <= 2000; seed++) {
    const r = prng(seed)
    const steps = Math.floor(r() * 12)
    const policy: RetryPolicy = {
      schedule_ms: Array.from({ length: steps }, () => Math.floor(r() * 10 ** (r() * 8))),
      jitter: r(),
      max_age_ms: 1 + Math.floor(r() * 10 ** (r() * 10)),
    }
    const receivedAt = 1_700_000_000_000 - Math.floor(r() * 10_000)
    let now = receivedAt + Math.floor(r() * 1000)
    const records: Array<{ attempt: number; next: number | null }> = []
    let end: string | undefined
    for (let attempt = 1; attempt <= steps + 2 && end === undefined; attempt++) {
      const d = decide(policy, attempt, receivedAt, now, randomResult(r), r)
      records.push({ attempt, next: d.kind === 'retry' ? d.at : null })
      if (d.kind === 'retry') {
        if (!(d.at > now)) t.fail(`seed ${seed}: next attempt ${d.at} not after ${now}`)
        if (!(d.at - receivedAt <= policy.max_age_ms)) t.fail(`seed ${seed}: retry past max_age`)
        now = d.at
      } else {
        end = d.kind
      }
    }
    if (end === undefined) t.fail(`seed ${seed}: no end after ${steps + 2} attempts`)
    if (records.length > steps + 1) t.fail(`seed ${seed}: ${records.length} attempts for a schedule of ${steps}`)
    if (records.some((x, i) => x.attempt !== i + 1)) t.fail(`seed ${seed}: attempt numbers not consecutive`)
  }
  t.pass('2000 random policies and outcome sequences')
})

t.test('retry decision, by case', async (t) => {
  const p: RetryPolicy = { schedule_ms: [1000, 5000], jitter: 0, max_age_ms: 60_000 }
  const fail: AttemptResult = { kind: 'failed', status: 500, error: 'status 500' }
  t.same(decide(p, 1, 0, 0, { kind: 'delivered', status: 204 }), { kind: 'delivered' })
  t.same(decide(p, 1, 0, 0, { kind: 'gone', status: 410 }), { kind: 'pause' })
  t.same(decide(p, 1, 0, 10, fail), { kind: 'retry', at: 1010 })
  t.same(decide(p, 2, 0, 10, fail), { kind: 'retry', at: 5010 })
  t.match(decide(p, 3, 0, 10, fail), { kind: 'dead', reason: /schedule's end/ })
  t.match(decide(p, 1, 0, 59_500, fail), { kind: 'dead', reason: /max_age/ })
  t.same(decide(p, 1, 0, 0, { ...fail, retryAfterMs: 20_000 }), { kind: 'retry', at: 20_000 }, 'Retry-After over the schedule')
  const jittered = { ...p, jitter: 0.5 }
  t.same(decide(jittered, 1, 0, 0, fail, () => 0), { kind: 'retry', at: 500 })
  t.same(decide(jittered, 1, 0, 0, fail, () => 0.9999999), { kind: 'retry', at: 1500 })
  t.equal(parseRetryAfter('3', 0), 3000)
  t.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000)
  t.equal(parseRetryAfter('soon', 0), undefined)
  t.equal(parseRetryAfter(undefined, 0), undefined)
})

t.test('circuit: opens after N failures, one probe at a time after the cooldown, doubling to the cap', async (t) => {
  const c = new Circuit({ failures: 3, cooldown_ms: 100, max_cooldown_ms: 250 })
  t.equal(c.failed(0), undefined)
  t.equal(c.failed(0), undefined)
  t.equal(c.failed(0), 'open', 'the third failure opens it')
  t.equal(c.failed(0), undefined, 'one more while open changes nothing')
  t.notOk(c.allow(99), 'closed to attempts during the cooldown')
  t.ok(c.allow(100), 'the probe')
  t.equal(c.state, 'half-open')
  t.notOk(c.allow(100), 'only one probe')
  t.equal(c.failed(100), undefined, 'a failed probe opens it again without a state-change line')
  t.equal(c.openUntil, 300, 'twice the cooldown')
  t.ok(c.allow(300))
  c.failed(300)
  t.equal(c.openUntil, 550, 'capped at max_cooldown')
  t.ok(c.allow(550))
  t.equal(c.succeeded(), 'closed')
  t.equal(c.succeeded(), undefined, 'no change, no line')
  t.ok(c.allow(551))
})
