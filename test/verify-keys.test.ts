import t from 'tap'
import nacl from 'tweetnacl'
import type { SchemeName, VerifyConfig } from '../src/config/types.js'
import { createVerifier, generateEd25519, generateSecret, signFor, signStandardWebhooks } from '../src/verify/index.js'
import { decodeBase64Strict } from '../src/verify/key-material.js'

const SCHEMES: SchemeName[] = ['runflow', 'github', 'stripe', 'standard-webhooks']

t.test('generateSecret: whsec_ + base64 of 24 random bytes', async t => {
  const a = generateSecret()
  const b = generateSecret()
  t.match(a, /^whsec_[A-Za-z0-9+/]{32}$/)
  t.not(a, b, 'random')
  t.equal(decodeBase64Strict(a.slice('whsec_'.length))?.length, 24)
})

t.test('a generated secret works with every scheme', async t => {
  const secret = generateSecret()
  const body = Buffer.from('{"event":"run.completed","run_id":"r1","id":"evt_1","type":"x.y"}')
  const now = Date.now()
  for (const scheme of SCHEMES) {
    const cfg: VerifyConfig = { scheme, secrets: [secret], public_keys: [], tolerance_ms: 300_000 }
    const v = createVerifier(cfg)
    t.equal(v.scheme, scheme)
    t.same(v.verify(signFor(cfg, body, now), body, now), { ok: true }, `${scheme}: signFor → verify`)
  }
})

t.test('generateEd25519: whsk_/whpk_ tweetnacl key pair', async t => {
  const { secretKey, publicKey } = generateEd25519()
  t.match(secretKey, /^whsk_[A-Za-z0-9+/]{86}==$/)
  t.match(publicKey, /^whpk_[A-Za-z0-9+/]{43}=$/)
  const sk = decodeBase64Strict(secretKey.slice('whsk_'.length))!
  const pk = decodeBase64Strict(publicKey.slice('whpk_'.length))!
  t.equal(sk.length, 64)
  t.equal(pk.length, 32)
  t.same(sk.subarray(32), pk, 'tweetnacl layout: seed, then public key')
  const msg = Buffer.from('hello')
  t.ok(nacl.sign.detached.verify(msg, nacl.sign.detached(msg, sk), pk), 'a working pair')
  t.not(generateEd25519().publicKey, publicKey, 'random')

  const cfg: VerifyConfig = { scheme: 'standard-webhooks', secrets: [], public_keys: [publicKey], tolerance_ms: 300_000 }
  const body = Buffer.from('{"type":"a.b"}')
  const ts = Math.floor(Date.now() / 1000)
  t.same(createVerifier(cfg).verify(signStandardWebhooks({ secretKey }, 'msg_1', ts, body), body, Date.now()), { ok: true })
})

t.test('decodeBase64Strict refuses what Buffer.from would quietly accept', async t => {
  t.same(decodeBase64Strict('aGk='), Buffer.from('hi'))
  for (const bad of ['', 'aGk', 'aGk=x', 'aG k=', 'aGl=', 'a-_b', '====']) {
    t.equal(decodeBase64Strict(bad), undefined, JSON.stringify(bad))
  }
})

t.test('unknown schemes fail loudly', async t => {
  const cfg = { scheme: 'paypal', secrets: ['s'], public_keys: [], tolerance_ms: 1 } as unknown as VerifyConfig
  t.throws(() => createVerifier(cfg), { code: 'HOOKRELAY_CONFIG_BAD_SCHEME' })
  t.throws(() => signFor(cfg, Buffer.from('{}'), Date.now()), { code: 'HOOKRELAY_CONFIG_BAD_SCHEME' })
})
