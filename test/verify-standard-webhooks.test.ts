import t from 'tap'
import nacl from 'tweetnacl'
import { Webhook as StandardWebhook } from 'standardwebhooks'
import { Webhook as SvixWebhook } from 'svix'
import { loadConfigText } from '../src/config/load.js'
import { Relay } from '../src/relay.js'
import { post, silent } from './helpers/relay.js'
import type { VerifyConfig } from '../src/config/types.js'
import {
  createVerifier,
  generateEd25519,
  generateSecret,
  signFor,
  signStandardWebhooks,
  StandardWebhooksVerifier,
} from '../src/verify/index.js'
import type { HeaderBag, VerifyOutcome } from '../src/verify/index.js'

type Asserts = Pick<typeof t, 'equal' | 'ok'>

// Every failure: `ok: false` and some reason for the log (its wording is not the contract).
function rejected(t: Asserts, outcome: VerifyOutcome, what: string): void {
  t.equal(outcome.ok, false, `${what}: rejected`)
  t.ok(!outcome.ok && typeof outcome.reason === 'string' && outcome.reason.length > 0, `${what}: reason given`)
}

function cfg(secrets: string[], public_keys: string[] = [], tolerance_ms = 300_000): VerifyConfig {
  return { scheme: 'standard-webhooks', secrets, public_keys, tolerance_ms }
}

// The v1 test vector of the Standard Webhooks reference libraries (and of the
// svix libraries they come from), e.g. standard-webhooks/standard-webhooks
// libraries/javascript/src/webhook.test.ts and libraries/go/webhook_test.go.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const MSG_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek'
const TS = 1614265330
const BODY = Buffer.from('{"test": 2432232314}')
const V1 = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
const AT_TS = TS * 1000

// The v1a test vector of the Standard Webhooks Go library
// (libraries/go/webhook_asymmetric_test.go, TestAsymmetricWebhookSign): a
// 32-byte ed25519 seed, same id, timestamp and body as above.
const SEED_KEY = 'whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk='
const V1A = 'v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=='
// Its public key, derived from the seed (not published, hence derived here).
const SEED_PUBLIC = 'whpk_' + Buffer.from(
  nacl.sign.keyPair.fromSeed(Buffer.from(SEED_KEY.slice('whsk_'.length), 'base64')).publicKey,
).toString('base64')

function headers(signature: string, id = MSG_ID, ts = String(TS)): HeaderBag {
  return { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': signature }
}

t.test('the published v1 vector', async t => {
  t.same(signStandardWebhooks({ secret: SECRET }, MSG_ID, TS, BODY), headers(V1), 'signing matches')
  const v = createVerifier(cfg([SECRET]))
  t.equal(v.scheme, 'standard-webhooks')
  t.same([...v.headers].sort(), ['svix-id', 'svix-signature', 'svix-timestamp', 'webhook-id', 'webhook-signature', 'webhook-timestamp'])
  t.same(v.verify(headers(V1), BODY, AT_TS), { ok: true }, 'verifying matches')
})

t.test('the published v1a vector', async t => {
  t.same(signStandardWebhooks({ secretKey: SEED_KEY }, MSG_ID, TS, BODY), headers(V1A), 'signing with the seed form matches')
  const v = createVerifier(cfg([], [SEED_PUBLIC]))
  t.same(v.verify(headers(V1A), BODY, AT_TS), { ok: true }, 'verifying with the public key')
  rejected(t, v.verify(headers(V1A), Buffer.from('{"test": 2432232315}'), AT_TS), 'body changed')
  rejected(t, createVerifier(cfg([], [generateEd25519().publicKey])).verify(headers(V1A), BODY, AT_TS), 'another public key')
})

t.test('v1 rejections', async t => {
  const v = new StandardWebhooksVerifier(cfg([SECRET]))
  const sig = V1.slice('v1,'.length)
  const flipped = Buffer.from(sig, 'base64')
  flipped[0] = flipped[0]! ^ 1
  const cases: Array<[string, HeaderBag, Buffer]> = [
    ['missing webhook-id', { 'webhook-timestamp': String(TS), 'webhook-signature': V1 }, BODY],
    ['missing webhook-timestamp', { 'webhook-id': MSG_ID, 'webhook-signature': V1 }, BODY],
    ['missing webhook-signature', { 'webhook-id': MSG_ID, 'webhook-timestamp': String(TS) }, BODY],
    ['empty webhook-signature', headers(''), BODY],
    ['id changed', headers(V1, 'msg_p5jXN8AQM9LWM0D4loKWxJel'), BODY],
    ['timestamp changed within tolerance', headers(V1, MSG_ID, String(TS + 1)), BODY],
    ['timestamp not an integer', headers(V1, MSG_ID, `${TS}.0`), BODY],
    ['timestamp with a space', headers(V1, MSG_ID, ` ${TS}`), BODY],
    ['timestamp in milliseconds', headers(V1, MSG_ID, String(AT_TS)), BODY],
    ['body changed by one byte', headers(V1), Buffer.from('{"test": 2432232315}')],
    ['signature bit flipped', headers(`v1,${flipped.toString('base64')}`), BODY],
    ['signature truncated', headers(V1.slice(0, -2)), BODY],
    ['signature without version', headers(sig), BODY],
    ['empty v1', headers('v1,'), BODY],
    ['unknown version only', headers(`v2,${sig}`), BODY],
    ['v1a only, no public key configured', headers(V1A), BODY],
    ['wrong secret', signStandardWebhooks({ secret: generateSecret() }, MSG_ID, TS, BODY), BODY],
  ]
  for (const [what, h, body] of cases) rejected(t, v.verify(h, body, AT_TS), what)
})

t.test('timestamp tolerance in both directions', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.same(v.verify(headers(V1), BODY, AT_TS + 299_000), { ok: true }, '299 s old')
  rejected(t, v.verify(headers(V1), BODY, AT_TS + 301_000), '301 s old')
  t.same(v.verify(headers(V1), BODY, AT_TS - 299_000), { ok: true }, '299 s ahead')
  rejected(t, v.verify(headers(V1), BODY, AT_TS - 301_000), '301 s ahead')
  rejected(t, v.verify(headers(V1), BODY, Date.now()), 'the vector is years old')
  const tight = createVerifier(cfg([SECRET], [], 5_000))
  rejected(t, tight.verify(headers(V1), BODY, AT_TS + 6_000), 'beyond a configured 5 s')
})

t.test('signature lists', async t => {
  const v = createVerifier(cfg([SECRET]))
  const wrong = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc='
  // The multi-signature case of the reference libraries' tests: unknown versions and wrong v1s around the right one.
  t.same(v.verify(headers(`${wrong} v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${V1} ${wrong}`), BODY, AT_TS), { ok: true })
  t.same(v.verify(headers(`v1,short  ${V1}`), BODY, AT_TS), { ok: true }, 'malformed entry and double space skipped')
  const sevenOthers = Array.from({ length: 7 }, (_, i) => `v${i + 2},x`).join(' ')
  t.same(v.verify(headers(`${sevenOthers} ${V1}`), BODY, AT_TS), { ok: true }, 'the eighth entry is read')
  const eightOthers = Array.from({ length: 8 }, (_, i) => `v${i + 2},x`).join(' ')
  rejected(t, v.verify(headers(`${eightOthers} ${V1}`), BODY, AT_TS), 'a ninth entry is not read')
})

t.test('rotation', async t => {
  const fresh = generateSecret()
  const v = createVerifier(cfg([fresh, SECRET]))
  t.same(v.verify(headers(V1), BODY, AT_TS), { ok: true }, 'second secret matches')
  t.same(v.verify(signStandardWebhooks({ secret: fresh }, MSG_ID, TS, BODY), BODY, AT_TS), { ok: true }, 'first secret matches')
})

t.test('v1a round trip with a generated key pair, and tampering', async t => {
  const pair = generateEd25519()
  const other = generateEd25519()
  const v = createVerifier(cfg([], [other.publicKey, pair.publicKey]))
  const body = Buffer.from('{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52"}}')
  const signed = signStandardWebhooks({ secretKey: pair.secretKey }, 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', TS, body)
  t.match(signed['webhook-signature'], /^v1a,[A-Za-z0-9+/]{86}==$/)
  t.same(v.verify(signed, body, AT_TS), { ok: true }, 'second public key matches')

  const sig = Buffer.from(signed['webhook-signature']!.slice(4), 'base64')
  const flipped = Buffer.from(sig)
  flipped[63] = flipped[63]! ^ 0x80
  const tampered = Buffer.from(body)
  tampered[10] = tampered[10]! ^ 1
  rejected(t, v.verify(signed, tampered, AT_TS), 'body changed by one byte')
  rejected(t, v.verify({ ...signed, 'webhook-id': 'msg_other' }, body, AT_TS), 'id changed')
  rejected(t, v.verify({ ...signed, 'webhook-timestamp': String(TS - 1) }, body, AT_TS), 'timestamp changed')
  rejected(t, v.verify({ ...signed, 'webhook-signature': `v1a,${flipped.toString('base64')}` }, body, AT_TS), 'signature bit flipped')
  rejected(t, v.verify({ ...signed, 'webhook-signature': `v1a,${sig.subarray(0, 48).toString('base64')}` }, body, AT_TS), 'signature too short')
  rejected(t, v.verify({ ...signed, 'webhook-signature': `v1,${sig.subarray(0, 32).toString('base64')}` }, body, AT_TS),
    'v1 entry, no HMAC secret configured')
  rejected(t, createVerifier(cfg([], [other.publicKey])).verify(signed, body, AT_TS), 'someone else\'s key')
})

t.test('both kinds configured: cheap checks first, HMAC before ed25519', async t => {
  const pair = generateEd25519()
  const v = createVerifier(cfg([SECRET], [pair.publicKey]))
  const both = signStandardWebhooks({ secret: SECRET, secretKey: pair.secretKey }, MSG_ID, TS, BODY)
  t.match(both['webhook-signature'], /^v1,\S+ v1a,\S+$/)
  const calls = t.capture(nacl.sign.detached, 'verify', nacl.sign.detached.verify)

  t.same(v.verify(both, BODY, AT_TS), { ok: true })
  t.equal(calls().length, 0, 'a matching v1 settles it without ed25519')

  rejected(t, v.verify(both, BODY, AT_TS + 400_000), 'stale')
  t.equal(calls().length, 0, 'no ed25519 for a stale timestamp')
  rejected(t, v.verify({ ...both, 'webhook-signature': `v1a,${'A'.repeat(80)}==` }, BODY, AT_TS), 'v1a of the wrong length')
  t.equal(calls().length, 0, 'no ed25519 for a malformed signature')

  const v1aOnly = signStandardWebhooks({ secretKey: pair.secretKey }, MSG_ID, TS, BODY)
  t.same(v.verify(v1aOnly, BODY, AT_TS), { ok: true }, 'v1a alone verifies')
  t.equal(calls().length, 1, 'one ed25519 verification')

  const wrongV1 = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc='
  t.same(v.verify({ ...v1aOnly, 'webhook-signature': `${wrongV1} ${v1aOnly['webhook-signature']}` }, BODY, AT_TS), { ok: true },
    'wrong v1, right v1a')
})

t.test('describe: webhook-id and type', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.same(v.describe(headers(V1), { type: 'contact.created', data: {} }), { key: MSG_ID, event: 'contact.created', status: undefined })
  t.same(v.describe({}, { test: 2432232314 }), { key: undefined, event: undefined, status: undefined })
})

t.test('construction refuses malformed keys', async t => {
  for (const secret of ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_not base64!', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS', 'whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '']) {
    t.throws(() => createVerifier(cfg([secret])), { code: 'HOOKRELAY_CONFIG_BAD_SECRET' }, JSON.stringify(secret))
  }
  const err = t.throws(() => createVerifier(cfg([SECRET, 'whsec_oops!'])))
  t.notMatch(String((err as Error).message), 'oops', 'the message does not echo the secret')
  const { publicKey, secretKey } = generateEd25519()
  for (const key of [publicKey.slice('whpk_'.length), `whpk_${Buffer.alloc(31).toString('base64')}`, secretKey, 'whpk_!!!!']) {
    t.throws(() => createVerifier(cfg([], [key])), { code: 'HOOKRELAY_CONFIG_BAD_PUBLIC_KEY' }, key.slice(0, 12))
  }
  t.throws(() => createVerifier(cfg([], [])), { code: 'HOOKRELAY_CONFIG_NO_SECRET' })
  t.ok(createVerifier(cfg([], [publicKey])), 'a public key alone is enough')
})

t.test('signing side', async t => {
  t.throws(() => signStandardWebhooks({}, MSG_ID, TS, BODY), { code: 'HOOKRELAY_SEND_NO_SECRET' })
  t.throws(() => signStandardWebhooks({ secretKey: 'whsk_AAAA' }, MSG_ID, TS, BODY), { code: 'HOOKRELAY_CONFIG_BAD_SECRET' })
  t.same(signStandardWebhooks({ secret: SECRET }, MSG_ID, TS + 0.9, BODY.toString()), headers(V1), 'string body, seconds floored')

  const headersOut = signFor(cfg([SECRET]), BODY, AT_TS + 500)
  t.match(headersOut['webhook-id'], /^msg_[A-Za-z0-9_-]{22}$/)
  t.equal(headersOut['webhook-timestamp'], String(TS))
  t.same(createVerifier(cfg([SECRET])).verify(headersOut, BODY, AT_TS), { ok: true })
  t.same(signFor(cfg([SECRET]), BODY, AT_TS, { id: MSG_ID }), headers(V1), 'given id: the published vector again')
  t.throws(() => signFor(cfg([], [generateEd25519().publicKey]), BODY, AT_TS), { code: 'HOOKRELAY_SEND_NO_SECRET' },
    'a public key cannot sign')
})

function svix(h: HeaderBag): HeaderBag {
  return { 'svix-id': h['webhook-id'], 'svix-timestamp': h['webhook-timestamp'], 'svix-signature': h['webhook-signature'] }
}

t.test('svix-* headers carry the same signed content', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.same(v.verify(svix(headers(V1)), BODY, AT_TS), { ok: true }, 'the published vector under svix-* names')
  t.same(v.describe(svix(headers(V1)), { type: 'user.created' }), { key: MSG_ID, event: 'user.created', status: undefined })
  rejected(t, v.verify({ ...svix(headers(V1)), 'svix-id': 'msg_other' }, BODY, AT_TS), 'svix-id changed')
  rejected(t, v.verify(svix(headers(V1, MSG_ID, String(TS + 1))), BODY, AT_TS), 'svix-timestamp changed')
  rejected(t, v.verify(svix(headers(V1)), BODY, AT_TS + 301_000), 'svix-timestamp outside tolerance')
  rejected(t, v.verify({ 'svix-id': MSG_ID, 'svix-timestamp': String(TS) }, BODY, AT_TS), 'svix-signature missing')

  // webhook-* wins when both are there, and the two sets are never mixed.
  const wrong = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc='
  t.same(v.verify({ ...headers(V1), ...svix(headers(wrong, 'msg_x', '1')) }, BODY, AT_TS), { ok: true }, 'right webhook-*, wrong svix-*')
  rejected(t, v.verify({ ...headers(wrong), ...svix(headers(V1)) }, BODY, AT_TS), 'wrong webhook-*, right svix-*')
  t.equal(v.describe({ ...headers(V1), 'svix-id': 'msg_x' }, {}).key, MSG_ID, 'key from webhook-id')
  rejected(t, v.verify({ 'webhook-timestamp': String(TS), 'webhook-signature': V1, 'svix-signature': V1 }, BODY, AT_TS),
    'no id in either set')
  rejected(t, v.verify({ 'svix-id': MSG_ID, 'webhook-timestamp': String(TS), 'webhook-signature': V1 }, BODY, AT_TS),
    'svix-id with webhook-* timestamp and signature')
})

t.test('callbacks signed by the svix and standardwebhooks libraries, through HTTP', async t => {
  const yaml = `
listen: { host: 127.0.0.1, port: 0 }
data_dir: ${t.testdir()}
sources:
  sw:
    verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] }
log: { level: silent }
`
  const relay = await Relay.start(loadConfigText(yaml, '<test>', { env: {} }), { logger: silent, processMetrics: false })
  t.teardown(() => relay.close())
  const url = `http://127.0.0.1:${relay.port}/webhook/sw`
  const body = '{"type":"user.created","data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC"}}'

  // The svix library signs with `svix-*` header names, as Clerk and Resend send them.
  const svixWh = new SvixWebhook(SECRET)
  const now = new Date()
  const svixId = 'msg_2c7DGv4ROCdcsUQOyyqhm4v7e8g'
  const svixHeaders = {
    'svix-id': svixId,
    'svix-timestamp': String(Math.floor(now.getTime() / 1000)),
    'svix-signature': svixWh.sign(svixId, now, body),
  }
  t.doesNotThrow(() => svixWh.verify(body, svixHeaders), 'the svix library accepts its own signature')
  const a = await post(url, body, svixHeaders)
  t.equal(a.status, 200, 'svix-signed callback accepted')
  t.equal(a.json.ok, true)

  const stdWh = new StandardWebhook(SECRET)
  const stdId = 'msg_2c7DGv4ROCdcsUQOyyqhm4v7e8h'
  const stdHeaders = {
    'webhook-id': stdId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': stdWh.sign(stdId, now, body),
  }
  const b = await post(url, body, stdHeaders)
  t.equal(b.status, 200, 'standardwebhooks-signed callback accepted')
  t.not(b.json.seq, a.json.seq, 'two messages, two entries')

  const again = await post(url, body, svixHeaders)
  t.equal(again.json.duplicate, true, 'svix-id is the idempotency key')

  const head = relay.journal.head
  const bad = await post(url, body.replace('29w', '29x'), { ...svixHeaders, 'svix-id': 'msg_new' })
  t.equal(bad.status, 401, 'a svix signature over other content is refused')
  t.same(bad.json, { error: { code: 'HOOKRELAY_INGEST_UNAUTHORIZED', message: 'signature verification failed' } },
    'the answer does not say why')
  const old = new Date(now.getTime() - 600_000)
  const stale = await post(url, body, {
    'svix-id': 'msg_old',
    'svix-timestamp': String(Math.floor(old.getTime() / 1000)),
    'svix-signature': svixWh.sign('msg_old', old, body),
  })
  t.equal(stale.status, 401, 'a svix timestamp outside tolerance is refused')
  const missing = await post(url, body, { 'svix-id': 'msg_nosig', 'svix-timestamp': svixHeaders['svix-timestamp'] })
  t.equal(missing.status, 401, 'no svix-signature is refused')
  t.equal(relay.journal.head, head, 'nothing journaled for the refused ones')
})
