import t from 'tap'
import { RelayError } from '../src/errors.js'
import { OriginStatusError } from '../src/mirror/fetch.js'
import { decideRetry, type FailedAttempt } from '../src/mirror/retry-policy.js'

t.setTimeout(45_000)

const now = 1_800_000_000_000
const base: FailedAttempt = {
  err: new RelayError('HOOKRELAY_MIRROR_NETWORK', 'ECONNRESET'),
  attempts: 1,
  now,
  deadline: now + 3600_000,
  spooled: false,
  baseMs: 1000,
  maxMs: 60_000,
  random: () => 0.5,
}
const status = (s: number) => new OriginStatusError(s, new URL('https://s/x'))

t.test('backoff doubles with jitter and is capped', async (t) => {
  t.same(decideRetry(base), { retryAt: now + 750, code: 'HOOKRELAY_MIRROR_NETWORK', message: 'ECONNRESET' })
  t.match(decideRetry({ ...base, attempts: 3 }), { retryAt: now + 3000 })
  t.match(decideRetry({ ...base, attempts: 40 }), { retryAt: now + 45_000 })
  t.match(decideRetry({ ...base, random: () => 0 }), { retryAt: now + 500 })
  t.match(decideRetry({ ...base, random: () => 0.999999 }), { retryAt: now + 999.9995 })
})

t.test('permanent errors and expiry', async (t) => {
  for (const code of ['HOOKRELAY_MIRROR_URL_REFUSED', 'HOOKRELAY_MIRROR_TOO_LARGE', 'HOOKRELAY_MIRROR_REDIRECTS', 'HOOKRELAY_MIRROR_DOWNGRADE'] as const) {
    t.same(decideRetry({ ...base, err: new RelayError(code, 'no') }), { giveUp: true, message: 'no', code }, code)
  }
  for (const s of [403, 404, 410]) {
    t.match(decideRetry({ ...base, err: status(s), deadline: now }), { giveUp: true, message: /^expired: .* answered/ }, String(s))
  }
  t.match(decideRetry({ ...base, err: status(500), deadline: now - 1, attempts: 4 }), { giveUp: true, message: /^deadline passed after 4 attempts/ })
  t.match(decideRetry({ ...base, err: 'weird' }), { code: 'HOOKRELAY_MIRROR_NETWORK', message: 'weird' })
})

t.test('retries stop at the deadline, with one last try just before it', async (t) => {
  t.match(decideRetry({ ...base, attempts: 10, deadline: now + 20_000 }), { retryAt: now + 19_500 })
  t.match(decideRetry({ ...base, deadline: now + 900 }), { retryAt: now + 750 })
  t.match(decideRetry({ ...base, deadline: now + 600 }), { giveUp: true, message: /deadline passed after 1 attempts/ })
})

t.test('a spooled file outlives the URL: its upload is retried after the deadline', async (t) => {
  const err = new RelayError('HOOKRELAY_MIRROR_STORE_UNAVAILABLE', 'ECONNREFUSED')
  t.match(decideRetry({ ...base, err, spooled: true, deadline: now - 10_000, attempts: 7 }), { retryAt: now + 45_000 })
  t.match(decideRetry({ ...base, err: new RelayError('HOOKRELAY_MIRROR_TOO_LARGE', 'over 5 GiB'), spooled: true }), { giveUp: true, message: 'over 5 GiB' })
})

t.test('403/404/410 before the deadline: one short retry, then given up whatever the deadline', async (t) => {
  for (const s of [403, 404, 410]) {
    const far = { ...base, err: status(s), deadline: now + 7 * 86_400_000 }
    t.same(decideRetry({ ...far, goneAnswers: 1 }), { retryAt: now + 1000, code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: `s answered ${s}` },
      `${s}: the first answer is retried once, after baseMs`)
    t.match(decideRetry({ ...far, attempts: 2, goneAnswers: 2 }), { giveUp: true, code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: /answered \d+ 2 times/ },
      `${s}: the second answer ends it`)
    t.match(decideRetry({ ...far, attempts: 6, goneAnswers: 1 }), { retryAt: now + 1000 },
      `${s}: earlier 5xx answers do not count against the short retry`)
  }
  for (const s of [401, 429, 500, 503]) {
    t.match(decideRetry({ ...base, err: status(s), attempts: 9, goneAnswers: 0 }), { retryAt: now + 45_000 }, `${s} keeps backing off`)
  }
})
