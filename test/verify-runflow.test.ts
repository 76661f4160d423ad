import t from 'tap'
import { createHmac } from 'node:crypto'
import type { VerifyConfig } from '../src/config/types.js'
import { createVerifier, RunflowVerifier, signFor, signRunflow } from '../src/verify/index.js'
import type { VerifyOutcome } from '../src/verify/index.js'

function cfg(secrets: string[]): VerifyConfig {
  return { scheme: 'runflow', secrets, public_keys: [], tolerance_ms: 300_000 }
}

type Asserts = Pick<typeof t, 'equal' | 'ok'>

// Every failure: `ok: false` and some reason for the log (its wording is not the contract).
function rejected(t: Asserts, outcome: VerifyOutcome, what: string): void {
  t.equal(outcome.ok, false, `${what}: rejected`)
  t.ok(!outcome.ok && typeof outcome.reason === 'string' && outcome.reason.length > 0, `${what}: reason given`)
}

const NOW = Date.parse('2026-05-06T10:01:43Z')

// A run callback shaped like Runflow's documentation: `+00:00`
// offsets and a presigned output URL, bytes exactly as sent.
const RUN_COMPLETED = Buffer.from(
  '{"event":"run.completed","run_id":"0190f5c2-8d4e-7a31-9c55-3f2b6a1d9e07","status":"succeeded",' +
    '"output":{"image_urls":["https://storage.example/out/0.png?X-Amz-Date=20260506T100142Z&X-Amz-Expires=3600&X-Amz-Signature=abc"]},' +
    '"duration_ms":102345,"created_at":"2026-05-06T10:00:00.000+00:00","completed_at":"2026-05-06T10:01:42.000+00:00","metadata":null}',
)
const BATCH_SUCCEEDED = Buffer.from(
  '{"event":"batch.succeeded","batch_id":"0190f5c3-0000-7000-8000-000000000001","status":"succeeded",' +
    '"output":{"items":[{"run_id":"0190f5c2-8d4e-7a31-9c55-3f2b6a1d9e07","output":{"image_urls":[]}}],"succeeded":1,"failed":0,"cancelled":0,"total":1}}',
)
const SECRET = 'whsec_9aXkQ2mZr7Lw4T1bN8cVy3Hd'
const OLD_SECRET = 'whsec_Old0ne5till1nRotation00'

t.test('RFC 4231 test case 2 proves the HMAC-SHA256 primitive', async t => {
  // RFC 4231 section 4.3: key "Jefe", data "what do ya want for nothing?".
  const expected = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'
  const body = Buffer.from('what do ya want for nothing?')
  t.same(signRunflow('Jefe', body), { 'runflow-signature': expected })
  const v = new RunflowVerifier(cfg(['Jefe']))
  t.same(v.verify({ 'runflow-signature': expected }, body, NOW), { ok: true })
})

t.test('a Runflow callback signed with a whsec_ secret', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.equal(v.scheme, 'runflow')
  t.ok(v.headers.includes('runflow-signature'), 'asks the HTTP layer for its header')

  const sig = signRunflow(SECRET, RUN_COMPLETED)['runflow-signature']!
  t.match(sig, /^[0-9a-f]{64}$/)
  // Independent of sign.ts: the secret string itself is the key, no decoding.
  t.equal(sig, createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(RUN_COMPLETED).digest('hex'))

  t.same(v.verify({ 'runflow-signature': sig }, RUN_COMPLETED, NOW), { ok: true }, 'right signature passes')
  rejected(t, v.verify({ 'runflow-signature': sig.toUpperCase() }, RUN_COMPLETED, NOW), 'uppercase of the right signature')
  rejected(t, v.verify({ 'runflow-signature': sig.slice(0, 63) }, RUN_COMPLETED, NOW), '63 hex chars')
  rejected(t, v.verify({ 'runflow-signature': sig + '0' }, RUN_COMPLETED, NOW), '65 hex chars')
  rejected(t, v.verify({ 'runflow-signature': sig.slice(0, 63) + 'g' }, RUN_COMPLETED, NOW), 'non-hex char')
  rejected(t, v.verify({ 'runflow-signature': `sha256=${sig}` }, RUN_COMPLETED, NOW), 'prefixed signature')
  rejected(t, v.verify({ 'runflow-signature': ` ${sig}` }, RUN_COMPLETED, NOW), 'leading space')
  rejected(t, v.verify({}, RUN_COMPLETED, NOW), 'missing header')
  rejected(t, v.verify({ 'runflow-signature': '' }, RUN_COMPLETED, NOW), 'empty header')

  const wrong = signRunflow('whsec_someoneElsesSecret0000', RUN_COMPLETED)['runflow-signature']!
  rejected(t, v.verify({ 'runflow-signature': wrong }, RUN_COMPLETED, NOW), 'wrong secret')

  // A receiver that base64-decoded the whsec_ secret (Standard Webhooks style) would disagree with Runflow.
  const decodedKey = Buffer.from(SECRET.slice('whsec_'.length), 'base64')
  const decodedSig = createHmac('sha256', decodedKey).update(RUN_COMPLETED).digest('hex')
  rejected(t, v.verify({ 'runflow-signature': decodedSig }, RUN_COMPLETED, NOW), 'signature keyed with the decoded secret')

  for (const i of [0, 100, RUN_COMPLETED.length - 1]) {
    const tampered = Buffer.from(RUN_COMPLETED)
    tampered[i] = tampered[i]! ^ 0x01
    rejected(t, v.verify({ 'runflow-signature': sig }, tampered, NOW), `body changed by one byte at ${i}`)
  }
  rejected(t, v.verify({ 'runflow-signature': sig }, Buffer.concat([RUN_COMPLETED, Buffer.from('\n')]), NOW), 'trailing newline')
})

t.test('rotation: any configured secret verifying is enough', async t => {
  const v = createVerifier(cfg([OLD_SECRET, SECRET]))
  const newSig = signRunflow(SECRET, BATCH_SUCCEEDED)['runflow-signature']!
  const oldSig = signRunflow(OLD_SECRET, BATCH_SUCCEEDED)['runflow-signature']!
  t.same(v.verify({ 'runflow-signature': newSig }, BATCH_SUCCEEDED, NOW), { ok: true }, 'second secret matches')
  t.same(v.verify({ 'runflow-signature': oldSig }, BATCH_SUCCEEDED, NOW), { ok: true }, 'first secret matches')
  const after = createVerifier(cfg([SECRET]))
  rejected(t, after.verify({ 'runflow-signature': oldSig }, BATCH_SUCCEEDED, NOW), 'old secret after it was removed')
})

t.test('signFor signs with the first configured secret', async t => {
  const headers = signFor(cfg([SECRET, OLD_SECRET]), RUN_COMPLETED, NOW)
  t.same(Object.keys(headers), ['runflow-signature'])
  t.same(createVerifier(cfg([SECRET])).verify(headers, RUN_COMPLETED, NOW), { ok: true })
  rejected(t, createVerifier(cfg([OLD_SECRET])).verify(headers, RUN_COMPLETED, NOW), 'not signed with the second secret')
})

t.test('describe: idempotency key, event and status', async t => {
  const v = createVerifier(cfg([SECRET]))
  t.same(v.describe({}, JSON.parse(RUN_COMPLETED.toString())), {
    key: '0190f5c2-8d4e-7a31-9c55-3f2b6a1d9e07',
    event: 'run.completed',
    status: 'succeeded',
  }, 'run.* → run_id')
  t.same(v.describe({}, JSON.parse(BATCH_SUCCEEDED.toString())), {
    key: '0190f5c3-0000-7000-8000-000000000001',
    event: 'batch.succeeded',
    status: 'succeeded',
  }, 'batch.* → batch_id, even when items carry run_ids')
  t.same(v.describe({}, { event: 'run.failed', run_id: 'r1', batch_id: 'b1', status: 'failed' }),
    { key: 'r1', event: 'run.failed', status: 'failed' }, 'run.* prefers run_id')
  t.same(v.describe({}, { event: 'batch.failed', run_id: 'r1', batch_id: 'b1' }),
    { key: 'b1', event: 'batch.failed', status: undefined }, 'batch.* prefers batch_id')
  t.same(v.describe({}, { event: 'run.cancelled', batch_id: 'b1' }),
    { key: undefined, event: 'run.cancelled', status: undefined }, 'run.* without run_id has no key')
  t.same(v.describe({}, { event: 'batch.succeeded', run_id: 'r1' }),
    { key: undefined, event: 'batch.succeeded', status: undefined }, 'batch.* without batch_id has no key')
  t.same(v.describe({}, { event: 'ping', batch_id: 'b1' }).key, 'b1', 'other events: whichever is present')
  t.same(v.describe({}, { run_id: 'r1', batch_id: 'b1' }).key, 'r1', 'no event: run_id first')
  t.same(v.describe({}, { run_id: '', batch_id: 'b1' }).key, 'b1', 'empty run_id does not count')
  t.same(v.describe({}, { event: 'run.completed', run_id: 42, status: 3 }),
    { key: undefined, event: 'run.completed', status: undefined }, 'numbers are not keys or statuses')
  t.same(v.describe({}, { event: 7, run_id: 'r1' }), { key: 'r1', event: undefined, status: undefined }, 'non-string event')
  for (const json of [null, [], 'run.completed', 42, {}]) {
    t.same(v.describe({}, json), { key: undefined, event: undefined, status: undefined }, `nothing from ${JSON.stringify(json)}`)
  }
})

t.test('construction refuses what could never verify', async t => {
  t.throws(() => createVerifier(cfg([])), { code: 'HOOKRELAY_CONFIG_NO_SECRET' })
  t.throws(() => createVerifier(cfg([''])), { code: 'HOOKRELAY_CONFIG_BAD_SECRET' })
  t.throws(() => signFor(cfg([]), RUN_COMPLETED, NOW), { code: 'HOOKRELAY_SEND_NO_SECRET' })
})
