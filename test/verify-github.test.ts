import t from 'tap'
import type { VerifyConfig } from '../src/config/types.js'
import { createVerifier, GithubVerifier, signFor, signGithub } from '../src/verify/index.js'
import type { VerifyOutcome } from '../src/verify/index.js'

type Asserts = Pick<typeof t, 'equal' | 'ok'>

// Every failure: `ok: false` and some reason for the log (its wording is not the contract).
function rejected(t: Asserts, outcome: VerifyOutcome, what: string): void {
  t.equal(outcome.ok, false, `${what}: rejected`)
  t.ok(!outcome.ok && typeof outcome.reason === 'string' && outcome.reason.length > 0, `${what}: reason given`)
}

function cfg(secrets: string[]): VerifyConfig {
  return { scheme: 'github', secrets, public_keys: [], tolerance_ms: 300_000 }
}

const NOW = Date.now()

// GitHub Docs, "Validating webhook deliveries", section "Testing the webhook
// payload validation": secret, payload and expected signature as published.
const DOC_SECRET = "It's a Secret to Everybody"
const DOC_PAYLOAD = Buffer.from('Hello, World!')
const DOC_SIGNATURE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'

t.test('the published GitHub test vector', async t => {
  t.same(signGithub(DOC_SECRET, DOC_PAYLOAD), { 'x-hub-signature-256': DOC_SIGNATURE }, 'signing matches the docs')
  const v = createVerifier(cfg([DOC_SECRET]))
  t.equal(v.scheme, 'github')
  t.ok(v.headers.includes('x-hub-signature-256') && v.headers.includes('x-github-delivery') && v.headers.includes('x-github-event'))
  t.same(v.verify({ 'x-hub-signature-256': DOC_SIGNATURE }, DOC_PAYLOAD, NOW), { ok: true }, 'verifying matches the docs')
})

t.test('what GitHub would never send, or someone else sent', async t => {
  const v = new GithubVerifier(cfg([DOC_SECRET]))
  const hex = DOC_SIGNATURE.slice('sha256='.length)
  const cases: Array<[string, string | undefined, Buffer]> = [
    ['missing header', undefined, DOC_PAYLOAD],
    ['empty header', '', DOC_PAYLOAD],
    ['bare hex without sha256=', hex, DOC_PAYLOAD],
    ['uppercase hex', `sha256=${hex.toUpperCase()}`, DOC_PAYLOAD],
    ['uppercase prefix', `SHA256=${hex}`, DOC_PAYLOAD],
    ['sha1 prefix (X-Hub-Signature style)', `sha1=${hex}`, DOC_PAYLOAD],
    ['63 hex chars', DOC_SIGNATURE.slice(0, -1), DOC_PAYLOAD],
    ['non-hex', `${DOC_SIGNATURE.slice(0, -1)}z`, DOC_PAYLOAD],
    ['wrong secret', signGithub('not the secret', DOC_PAYLOAD)['x-hub-signature-256'], DOC_PAYLOAD],
    ['body changed by one byte', DOC_SIGNATURE, Buffer.from('Hello, World?')],
  ]
  for (const [what, header, body] of cases) {
    rejected(t, v.verify(header === undefined ? {} : { 'x-hub-signature-256': header }, body, NOW), what)
  }
})

t.test('rotation: either secret verifies', async t => {
  const v = createVerifier(cfg(['old secret', DOC_SECRET]))
  t.same(v.verify({ 'x-hub-signature-256': DOC_SIGNATURE }, DOC_PAYLOAD, NOW), { ok: true })
  t.same(v.verify(signGithub('old secret', DOC_PAYLOAD), DOC_PAYLOAD, NOW), { ok: true })
})

t.test('describe: delivery id is the key, event plus action is the event', async t => {
  const v = createVerifier(cfg([DOC_SECRET]))
  const delivery = '72d3162e-cc78-11e3-81ab-4c9367dc0958'
  t.same(v.describe({ 'x-github-event': 'issues', 'x-github-delivery': delivery }, { action: 'opened', issue: { number: 1 } }),
    { key: delivery, event: 'issues.opened', status: undefined })
  t.same(v.describe({ 'x-github-event': 'push', 'x-github-delivery': delivery }, { ref: 'refs/heads/main' }),
    { key: delivery, event: 'push', status: undefined }, 'no action: the header alone')
  t.same(v.describe({ 'x-github-event': 'issues', 'x-github-delivery': delivery }, { action: 3 }).event, 'issues',
    'non-string action ignored')
  t.same(v.describe({ 'x-github-delivery': delivery }, { action: 'opened' }).event, undefined, 'no event header: no event')
  t.same(v.describe({ 'x-github-event': 'ping', 'x-github-delivery': '' }, {}).key, undefined, 'empty delivery: no key')
  t.same(v.describe({}, null), { key: undefined, event: undefined, status: undefined })
})

t.test('signFor adds a delivery id and the event when given', async t => {
  const body = Buffer.from('{"action":"opened","issue":{"number":1}}')
  const headers = signFor(cfg([DOC_SECRET]), body, NOW, { event: 'issues' })
  const v = createVerifier(cfg([DOC_SECRET]))
  t.same(v.verify(headers, body, NOW), { ok: true })
  t.match(headers['x-github-delivery'], /^[0-9a-f-]{36}$/)
  t.same(v.describe(headers, JSON.parse(body.toString())).event, 'issues.opened')
  const fixed = signFor(cfg([DOC_SECRET]), body, NOW, { id: 'delivery-1' })
  t.equal(fixed['x-github-delivery'], 'delivery-1')
  t.notOk('x-github-event' in fixed, 'no event invented')
})

t.test('construction', async t => {
  t.throws(() => new GithubVerifier(cfg([])), { code: 'HOOKRELAY_CONFIG_NO_SECRET' })
  t.throws(() => new GithubVerifier(cfg(['ok', ''])), { code: 'HOOKRELAY_CONFIG_BAD_SECRET' })
})
