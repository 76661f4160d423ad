import t from 'tap'
import { createHmac } from 'node:crypto'
import type { VerifyConfig } from '../src/config/types.js'
import { createVerifier, signFor, signStripe, StripeVerifier } from '../src/verify/index.js'
import type { VerifyOutcome } from '../src/verify/index.js'

type Asserts = Pick<typeof t, 'equal' | 'ok'>

// Every failure: `ok: false` and some reason for the log (its wording is not the contract).
function rejected(t: Asserts, outcome: VerifyOutcome, what: string): void {
  t.equal(outcome.ok, false, `${what}: rejected`)
  t.ok(!outcome.ok && typeof outcome.reason === 'string' && outcome.reason.length > 0, `${what}: reason given`)
}

function cfg(secrets: string[], tolerance_ms = 300_000): VerifyConfig {
  return { scheme: 'stripe', secrets, public_keys: [], tolerance_ms }
}

// Stripe publishes no fixed vector; this one follows the documented scheme
// ("Verify webhook signatures manually": signed_payload = `${t}.${body}`,
// HMAC-SHA256 with the endpoint secret, hex) and was computed outside this code:
//   printf '%s' '1700000000.{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}' \
//     | openssl dgst -sha256 -hmac 'whsec_test_secret'
const SECRET = 'whsec_test_secret'
const T = 1_700_000_000
const BODY = Buffer.from('{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}')
const V1 = '8fcb50c2d45bc391e3252f24411d84654bfdfc8e96eaf71d71534ee00b714f1e'
const AT_T = T * 1000
const OTHER_V1 = createHmac('sha256', 'whsec_someone_else').update(`${T}.`).update(BODY).digest('hex')

t.test('the documented scheme', async t => {
  t.same(signStripe(SECRET, BODY, T), { 'stripe-signature': `t=${T},v1=${V1}` }, 'signing matches openssl')
  const v = createVerifier(cfg([SECRET]))
  t.equal(v.scheme, 'stripe')
  t.same(v.headers, ['stripe-signature'])
  t.same(v.verify({ 'stripe-signature': `t=${T},v1=${V1}` }, BODY, AT_T), { ok: true })
  t.same(v.verify({ 'stripe-signature': `v1=${V1},t=${T}` }, BODY, AT_T), { ok: true }, 'order of entries does not matter')
  t.same(v.verify({ 'stripe-signature': `t=${T},v1=${V1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39` },
    BODY, AT_T), { ok: true }, 'v0 alongside is ignored')
})

t.test('tolerance: 300 s in both directions', async t => {
  const v = createVerifier(cfg([SECRET]))
  const h = { 'stripe-signature': `t=${T},v1=${V1}` }
  t.same(v.verify(h, BODY, AT_T + 299_000), { ok: true }, '299 s old passes')
  t.same(v.verify(h, BODY, AT_T + 300_000), { ok: true }, 'exactly 300 s old passes')
  rejected(t, v.verify(h, BODY, AT_T + 301_000), '301 s old')
  t.same(v.verify(h, BODY, AT_T - 299_000), { ok: true }, '299 s in the future passes')
  rejected(t, v.verify(h, BODY, AT_T - 301_000), '301 s in the future')
  rejected(t, v.verify(h, BODY, Date.now()), 'years old')

  const tight = createVerifier(cfg([SECRET], 10_000))
  t.same(tight.verify(h, BODY, AT_T + 10_000), { ok: true }, 'configured tolerance honoured')
  rejected(t, tight.verify(h, BODY, AT_T + 11_000), 'beyond a configured 10 s')

  const unset = createVerifier(cfg([SECRET], 0))
  t.same(unset.verify(h, BODY, AT_T + 299_000), { ok: true }, 'zero falls back to the 300 s default')
  rejected(t, unset.verify(h, BODY, AT_T + 301_000), 'default applies')
})

t.test('multiple v1 entries and rotation', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.same(v.verify({ 'stripe-signature': `t=${T},v1=${OTHER_V1},v1=${V1}` }, BODY, AT_T), { ok: true }, 'second v1 matches')
  t.same(v.verify({ 'stripe-signature': `t=${T},v1=nothex,v1=${V1}` }, BODY, AT_T), { ok: true },
    'a malformed v1 does not spoil a good one')
  const rotating = createVerifier(cfg(['whsec_someone_else', SECRET]))
  t.same(rotating.verify({ 'stripe-signature': `t=${T},v1=${V1}` }, BODY, AT_T), { ok: true }, 'second secret matches')
  t.same(rotating.verify({ 'stripe-signature': `t=${T},v1=${OTHER_V1}` }, BODY, AT_T), { ok: true }, 'first secret matches')

  const eightWrong = Array.from({ length: 8 }, () => `v1=${OTHER_V1}`).join(',')
  rejected(t, v.verify({ 'stripe-signature': `t=${T},${eightWrong},v1=${V1}` }, BODY, AT_T), 'a ninth v1 is not read')
  const sevenWrong = Array.from({ length: 7 }, () => `v1=${OTHER_V1}`).join(',')
  t.same(v.verify({ 'stripe-signature': `t=${T},${sevenWrong},v1=${V1}` }, BODY, AT_T), { ok: true }, 'the eighth v1 is')
})

t.test('rejections', async t => {
  const v = new StripeVerifier(cfg([SECRET]))
  const v0 = createHmac('sha256', SECRET).update(`${T}.`).update(BODY).digest('hex')
  const cases: Array<[string, string | undefined, Buffer]> = [
    ['missing header', undefined, BODY],
    ['empty header', '', BODY],
    ['v0 only, even with the right HMAC', `t=${T},v0=${v0}`, BODY],
    ['no v1', `t=${T}`, BODY],
    ['no timestamp', `v1=${V1}`, BODY],
    ['empty timestamp', `t=,v1=${V1}`, BODY],
    ['fractional timestamp', `t=${T}.0,v1=${V1}`, BODY],
    ['negative timestamp', `t=-${T},v1=${V1}`, BODY],
    ['two timestamps', `t=${T},t=${T},v1=${V1}`, BODY],
    ['uppercase v1', `t=${T},v1=${V1.toUpperCase()}`, BODY],
    ['short v1', `t=${T},v1=${V1.slice(1)}`, BODY],
    ['wrong secret', `t=${T},v1=${OTHER_V1}`, BODY],
    ['body changed by one byte', `t=${T},v1=${V1}`, Buffer.from(BODY.toString().replace('paid', 'paie'))],
    ['timestamp changed (still within tolerance)', `t=${T + 1},v1=${V1}`, BODY],
    ['garbage', ',,,=,v1', BODY],
  ]
  for (const [what, header, body] of cases) {
    rejected(t, v.verify(header === undefined ? {} : { 'stripe-signature': header }, body, AT_T), what)
  }
})

t.test('describe: event id and type', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.same(v.describe({}, JSON.parse(BODY.toString())), { key: 'evt_1NG8Du2eZvKYlo2CUI79vXWy', event: 'invoice.paid', status: undefined })
  t.same(v.describe({}, { id: 1, type: null }), { key: undefined, event: undefined, status: undefined })
})

t.test('signFor and construction', async t => {
  const headers = signFor(cfg([SECRET]), BODY, AT_T + 999)
  t.same(headers, { 'stripe-signature': `t=${T},v1=${V1}` }, 'seconds, floored')
  t.same(createVerifier(cfg([SECRET])).verify(headers, BODY, AT_T), { ok: true })
  t.throws(() => createVerifier(cfg([])), { code: 'HOOKRELAY_CONFIG_NO_SECRET' })
  t.throws(() => signFor(cfg([]), BODY, AT_T), { code: 'HOOKRELAY_SEND_NO_SECRET' })
})
