import { execFile } from 'node:child_process'
import { createHmac, randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import t from 'tap'
import { ConfigError, loadConfigText } from '../src/config/load.js'
import type { HmacSettings, VerifyConfig } from '../src/config/types.js'
import { Relay } from '../src/relay.js'
import { createVerifier, resolveHmac, signFor, signHmac } from '../src/verify/index.js'
import type { HeaderBag, VerifyOutcome } from '../src/verify/index.js'
import { fieldAt, type HmacKeys } from '../src/verify/hmac.js'
import { post, silent } from './helpers/relay.js'
import { CLI, writeConfig } from './helpers/spawn.js'

type Asserts = Pick<typeof t, 'equal' | 'ok'>

function rejected(t: Asserts, outcome: VerifyOutcome, what: string): void {
  t.equal(outcome.ok, false, `${what}: rejected`)
  t.ok(!outcome.ok && typeof outcome.reason === 'string' && outcome.reason.length > 0, `${what}: reason given`)
}

function settings(keys: HmacKeys): HmacSettings {
  const { settings: s, problems } = resolveHmac(keys)
  if (s === undefined) throw new Error(`bad test settings: ${JSON.stringify(problems)}`)
  return s
}

function cfg(keys: HmacKeys, secrets: string[], tolerance_ms = 300_000): VerifyConfig {
  return { scheme: 'hmac', secrets, public_keys: [], tolerance_ms, hmac: settings(keys) }
}

// Slack's published example ("Verifying requests from Slack"): signing secret,
// timestamp, slash-command body and the signature Slack shows for them.
const SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5'
const SLACK_TS = 1531420618
const SLACK_BODY = Buffer.from(
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar' +
    '&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com' +
    '%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
)
const SLACK_SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503'

t.test('slack preset: the published example', async (t) => {
  const v = createVerifier(cfg({ preset: 'slack' }, [SLACK_SECRET]))
  const h = { 'x-slack-signature': SLACK_SIGNATURE, 'x-slack-request-timestamp': String(SLACK_TS) }
  t.same(v.verify(h, SLACK_BODY, SLACK_TS * 1000), { ok: true })
  t.same(signHmac(settings({ preset: 'slack' }), SLACK_SECRET, SLACK_BODY, { timestampS: SLACK_TS }), h, 'signing gives the same')
  t.same([...v.headers].sort(), ['x-slack-request-timestamp', 'x-slack-signature'])
  rejected(t, v.verify(h, SLACK_BODY, (SLACK_TS + 301) * 1000), '301 s later')
  t.same(v.verify(h, SLACK_BODY, (SLACK_TS - 299) * 1000), { ok: true }, '299 s ahead')
  rejected(t, v.verify({ ...h, 'x-slack-request-timestamp': String(SLACK_TS + 1) }, SLACK_BODY, SLACK_TS * 1000), 'timestamp changed')
  rejected(t, v.verify({ 'x-slack-signature': SLACK_SIGNATURE }, SLACK_BODY, SLACK_TS * 1000), 'no timestamp header')
  rejected(t, v.verify({ ...h, 'x-slack-request-timestamp': '1531420618.5' }, SLACK_BODY, SLACK_TS * 1000), 'timestamp malformed')
  rejected(t, v.verify({ ...h, 'x-slack-signature': SLACK_SIGNATURE.slice(3) }, SLACK_BODY, SLACK_TS * 1000), 'prefix missing')
  rejected(t, createVerifier(cfg({ preset: 'slack' }, ['another'])).verify(h, SLACK_BODY, SLACK_TS * 1000), 'wrong secret')
  t.same(v.describe({}, { event_id: 'Ev08MFMKH6', event: { type: 'app_mention' } }), { key: 'Ev08MFMKH6', event: 'app_mention', status: undefined })
})

t.test('shopify preset: base64 HMAC-SHA256 of the body (the documented algorithm)', async (t) => {
  const secret = 'shpss_0123456789abcdef0123456789abcdef'
  const body = Buffer.from('{"id":820982911946154508,"email":"jon@example.com","total_price":"199.65"}')
  const mac = createHmac('sha256', secret).update(body).digest('base64')
  const v = createVerifier(cfg({ preset: 'shopify' }, [secret]))
  const h: HeaderBag = { 'x-shopify-hmac-sha256': mac, 'x-shopify-webhook-id': 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043', 'x-shopify-topic': 'orders/create' }
  t.same(v.verify(h, body, Date.now()), { ok: true })
  t.equal(signHmac(settings({ preset: 'shopify' }), secret, body, { timestampS: 0 })['x-shopify-hmac-sha256'], mac)
  t.same(v.describe(h, JSON.parse(body.toString())), { key: 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043', event: 'orders/create', status: undefined })
  const flipped = Buffer.from(mac, 'base64')
  flipped[5] = flipped[5]! ^ 1
  rejected(t, v.verify({ ...h, 'x-shopify-hmac-sha256': flipped.toString('base64') }, body, Date.now()), 'bit flipped')
  rejected(t, v.verify({ ...h, 'x-shopify-hmac-sha256': createHmac('sha256', secret).update(body).digest('hex') }, body, Date.now()),
    'hex where base64 is expected')
  rejected(t, v.verify({ ...h, 'x-shopify-hmac-sha256': mac.slice(0, -1) }, body, Date.now()), 'padding cut')
  rejected(t, v.verify(h, Buffer.from(body.toString().replace('199', '198')), Date.now()), 'body changed')
})

t.test('linear preset: hex HMAC-SHA256 of the body (the documented algorithm)', async (t) => {
  const secret = 'lin_wh_5ba5e1c9c1b34d5b8c6a0e2f'
  const body = Buffer.from('{"action":"create","type":"Issue","data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9"},"webhookTimestamp":1676056940508}')
  const hex = createHmac('sha256', secret).update(body).digest('hex')
  const v = createVerifier(cfg({ preset: 'linear' }, [secret]))
  const h: HeaderBag = { 'linear-signature': hex, 'linear-delivery': '234d1a4e-b617-4388-90fe-adc3633d6b72', 'linear-event': 'Issue' }
  t.same(v.verify(h, body, Date.now()), { ok: true })
  t.same(v.verify({ ...h, 'linear-signature': hex.toUpperCase() }, body, Date.now()), { ok: true }, 'hex in either case')
  t.same(v.describe(h, {}), { key: '234d1a4e-b617-4388-90fe-adc3633d6b72', event: 'Issue', status: undefined })
  rejected(t, v.verify({ ...h, 'linear-signature': hex.slice(0, 63) }, body, Date.now()), 'one digit short')
  rejected(t, v.verify({ ...h, 'linear-signature': '' }, body, Date.now()), 'empty signature')
  rejected(t, v.verify({ 'linear-delivery': 'x' }, body, Date.now()), 'no signature header')
})

t.test('a custom scheme: GitHub\'s published vector, other algorithms, {id}, field paths', async (t) => {
  // GitHub's "Validating webhook deliveries" example, written as a generic hmac source.
  const gh = createVerifier(cfg({ header: 'X-Hub-Signature-256', prefix: 'sha256=', key_header: 'X-GitHub-Delivery', event_header: 'X-GitHub-Event' },
    ["It's a Secret to Everybody"]))
  t.same(gh.verify({ 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' }, Buffer.from('Hello, World!'), 0),
    { ok: true })

  for (const [algorithm, encoding] of [['sha1', 'hex'], ['sha1', 'base64'], ['sha512', 'hex'], ['sha512', 'base64']] as const) {
    const keys: HmacKeys = { header: 'X-Sig', algorithm, encoding, signed: '{id}.{timestamp}.{body}', id_header: 'X-Id', timestamp_header: 'X-Ts', key_header: 'X-Id', event_field: 'type' }
    const body = Buffer.from('{"type":"thing.done"}')
    const ts = 1_700_000_000
    const mac = createHmac(algorithm, 's3cret').update(`m-1.${ts}.`).update(body).digest(encoding)
    const v = createVerifier(cfg(keys, ['old', 's3cret']))
    const h = { 'x-sig': mac, 'x-id': 'm-1', 'x-ts': String(ts) }
    t.same(v.verify(h, body, ts * 1000), { ok: true }, `${algorithm}/${encoding}, the second secret`)
    t.same(signHmac(settings(keys), 's3cret', body, { timestampS: ts, id: 'm-1' }), h, `${algorithm}/${encoding}: signHmac agrees`)
    rejected(t, v.verify({ ...h, 'x-id': 'm-2' }, body, ts * 1000), `${algorithm}/${encoding}: id changed`)
    rejected(t, v.verify({ 'x-sig': mac, 'x-ts': String(ts) }, body, ts * 1000), `${algorithm}/${encoding}: id header missing`)
  }

  const nested = createVerifier(cfg({ header: 'X-Sig', key_field: 'data.object.id', event_field: 'kind' }, ['k']))
  t.same(nested.describe({}, { kind: 'a.b', data: { object: { id: 42 } } }), { key: '42', event: 'a.b', status: undefined }, 'integer key')
  t.same(nested.describe({}, { kind: '', data: { object: { id: 1.5 } } }), { key: undefined, event: undefined, status: undefined })
  t.equal(fieldAt({ a: [{ b: 'x' }] }, 'a.0.b'), undefined, 'arrays are not walked into')
  t.equal(fieldAt('text', 'a'), undefined)
})

t.test('signFor an hmac source: what `hookrelay send` posts verifies', async (t) => {
  for (const preset of ['shopify', 'slack', 'linear'] as const) {
    const c = cfg({ preset }, ['sekret'])
    const body = Buffer.from('{"event_id":"Ev1","event":{"type":"message"}}')
    const h = signFor(c, body, Date.now(), { id: 'd-1', event: 'topic/x' })
    t.same(createVerifier(c).verify(h, body, Date.now()), { ok: true }, preset)
    t.equal(createVerifier(c).describe(h, JSON.parse(body.toString())).key, preset === 'slack' ? 'Ev1' : 'd-1', `${preset}: key`)
  }
})

const yaml = (verify: string, dataDir = '/tmp/unused') => `
listen: { host: 127.0.0.1, port: 0 }
data_dir: ${dataDir}
sources:
  src:
    verify:
${verify.replace(/^/gm, '      ')}
log: { level: silent }
`

function problems(text: string): string[] {
  try {
    loadConfigText(text, 'h.yaml', { env: {} })
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.col}: ${p.path}: ${p.message}`)
    throw e
  }
  return []
}

t.test('config: presets resolve, written keys override them', async (t) => {
  const c = loadConfigText(yaml('scheme: hmac\npreset: shopify\nsecrets: ["x"]\nkey_field: id\ntolerance: 60s'), 'h.yaml', { env: {} })
  t.same(c.sources.src!.verify.hmac, {
    preset: 'shopify', header: 'x-shopify-hmac-sha256', prefix: '', algorithm: 'sha256', encoding: 'base64', signed: '{body}',
    timestamp_header: undefined, id_header: undefined, key: { field: 'id' }, event: { header: 'x-shopify-topic' },
  })
  t.equal(c.sources.src!.verify.tolerance_ms, 60_000)
  const slack = loadConfigText(yaml('scheme: hmac\npreset: slack\nsecrets: ["x"]'), 'h.yaml', { env: {} })
  t.match(slack.sources.src!.verify.hmac, { prefix: 'v0=', signed: 'v0:{timestamp}:{body}', timestamp_header: 'x-slack-request-timestamp' })
  t.equal(slack.sources.src!.verify.tolerance_ms, 300_000, "Slack's 300 s by default")
})

t.test('config: bad hmac settings are positioned problems', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nalgorithm: md5\nkey_header: X-Id\nevent_field: type', /^10:18: sources\.src\.verify\.algorithm: "md5" is not allowed; use one of sha1, sha256, sha512/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nencoding: base32\nkey_header: X-Id\nevent_field: type', /^10:17: sources\.src\.verify\.encoding: .*hex, base64/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nsigned: "v0:{timestamp}"\ntimestamp_header: X-Ts\nkey_header: X-Id\nevent_field: type', /^10:15: sources\.src\.verify\.signed: does not hold \{body\}/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nsigned: "{body}{body}"\nkey_header: X-Id\nevent_field: type', /sources\.src\.verify\.signed: holds \{body\} more than once/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nsigned: "{nonce}:{body}"\nkey_header: X-Id\nevent_field: type', /signed: \{nonce\} is not a placeholder/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nsigned: "{timestamp}:{body}"\nkey_header: X-Id\nevent_field: type', /signed: uses \{timestamp\} but no timestamp_header/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\ntimestamp_header: X-Ts\nkey_header: X-Id\nevent_field: type', /timestamp_header: is not signed/],
    ['scheme: hmac\nsecrets: ["x"]\nkey_header: X-Id\nevent_field: type', /sources\.src\.verify\.header: missing; .*preset/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nevent_field: type', /sources\.src\.verify\.key_header: missing/],
    ['scheme: hmac\nsecrets: ["x"]\npreset: shopify\nkey_header: X-Id\nkey_field: id', /sources\.src\.verify\.key_field: both key_header and key_field/],
    ['scheme: hmac\nsecrets: ["x"]\npreset: github', /preset: "github" is not allowed; use one of shopify, slack, linear/],
    ['scheme: hmac\nsecrets: ["x"]\nheader: "X Sig"\nkey_header: X-Id\nevent_field: type', /header: "X Sig" is not a header name/],
    ['scheme: hmac\nsecrets: ["x"]\npreset: linear\nkey_field: "data..id"', /key_field: "data\.\.id" is not a field path/],
    ['scheme: github\nsecrets: ["x"]\nprefix: "sha256="', /sources\.src\.verify\.prefix: applies only to scheme hmac, not github/],
  ]
  for (const [verify, expected] of cases) {
    const got = problems(yaml(verify))
    t.ok(got.some((p) => expected.test(p)), `${expected}: ${got.join(' | ')}`)
  }
})

const run = promisify(execFile)

t.test('check-config: an unknown algorithm and a template without {body} exit 78 with positions', async (t) => {
  const dir = t.testdir()
  const file = writeConfig(dir, yaml('scheme: hmac\nsecrets: ["x"]\nheader: X-Sig\nalgorithm: sha384\nsigned: "v0:{timestamp}"\ntimestamp_header: X-Ts\nkey_header: X-Id\nevent_field: type', `${dir}/data`))
  const r = await run(process.execPath, [CLI, 'check-config', '--config', file], { timeout: 20_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  )
  t.equal(r.code, 78)
  t.match(r.stderr, /hookrelay\.yaml:10:18: sources\.src\.verify\.algorithm: "sha384" is not allowed/)
  t.match(r.stderr, /hookrelay\.yaml:11:15: sources\.src\.verify\.signed: does not hold \{body\}/)
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace')
})

t.test('through HTTP: presets and a custom source accept their senders, refuse the rest, journal nothing refused', async (t) => {
  const dir = t.testdir()
  const text = `
listen: { host: 127.0.0.1, port: 0 }
data_dir: ${dir}
sources:
  shopify:
    verify: { scheme: hmac, preset: shopify, secrets: ["shp-secret"] }
  slack:
    verify: { scheme: hmac, preset: slack, secrets: ["${SLACK_SECRET}"] }
  linear:
    verify: { scheme: hmac, preset: linear, secrets: ["lin-secret"] }
  custom:
    verify:
      scheme: hmac
      secrets: ["cu-secret"]
      header: X-Acme-Signature
      prefix: "t="
      algorithm: sha512
      encoding: base64
      key_field: delivery.id
      event_header: X-Acme-Event
log: { level: silent }
`
  const config = loadConfigText(text, '<test>', { env: {} })
  const relay = await Relay.start(config, { logger: silent, processMetrics: false })
  t.teardown(() => relay.close())
  const base = `http://127.0.0.1:${relay.port}`
  const now = Math.floor(Date.now() / 1000)
  const verify = (name: string) => config.sources[name]!.verify

  const shopBody = '{"id":820982911946154508,"total_price":"199.65"}'
  const shopId = randomUUID()
  const shop = await post(`${base}/webhook/shopify`, shopBody, {
    'X-Shopify-Hmac-Sha256': createHmac('sha256', 'shp-secret').update(shopBody).digest('base64'),
    'X-Shopify-Webhook-Id': shopId,
    'X-Shopify-Topic': 'orders/create',
  })
  t.equal(shop.status, 200, 'shopify')
  t.match(await relay.journal.getRun('shopify', shopId), { event: 'orders/create' })

  const slackBody = '{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention","text":"hi"}}'
  const slackHeaders = {
    'X-Slack-Signature': `v0=${createHmac('sha256', SLACK_SECRET).update(`v0:${now}:${slackBody}`).digest('hex')}`,
    'X-Slack-Request-Timestamp': String(now),
  }
  t.equal((await post(`${base}/webhook/slack`, slackBody, slackHeaders)).status, 200, 'slack')
  t.match(await relay.journal.getRun('slack', 'Ev08MFMKH6'), { event: 'app_mention' })

  const linBody = '{"action":"create","type":"Issue","data":{"id":"2174add1"}}'
  const linId = randomUUID()
  const lin = await post(`${base}/webhook/linear`, linBody, {
    'Linear-Signature': createHmac('sha256', 'lin-secret').update(linBody).digest('hex'),
    'Linear-Delivery': linId,
    'Linear-Event': 'Issue',
  })
  t.equal(lin.status, 200, 'linear')

  const cuBody = '{"delivery":{"id":"dl_1"},"x":1}'
  const cu = await post(`${base}/webhook/custom`, cuBody, {
    'X-Acme-Signature': `t=${createHmac('sha512', 'cu-secret').update(cuBody).digest('base64')}`,
    'X-Acme-Event': 'thing.made',
  })
  t.equal(cu.status, 200, 'custom sha512/base64 with a prefix and a key field')
  t.match(await relay.journal.getRun('custom', 'dl_1'), { event: 'thing.made' })

  const sent = signFor(verify('custom'), Buffer.from('{"delivery":{"id":"dl_2"}}'), Date.now(), { event: 'thing.sent' })
  t.equal((await post(`${base}/webhook/custom`, '{"delivery":{"id":"dl_2"}}', sent)).status, 200, 'what `hookrelay send` signs')

  const head = relay.journal.head
  const unauthorized = { error: { code: 'HOOKRELAY_INGEST_UNAUTHORIZED', message: 'signature verification failed' } }
  const refusals: Array<[string, string, string, Record<string, string>, number, unknown]> = [
    ['shopify: wrong signature', 'shopify', shopBody, { 'X-Shopify-Hmac-Sha256': createHmac('sha256', 'other').update(shopBody).digest('base64'), 'X-Shopify-Webhook-Id': randomUUID(), 'X-Shopify-Topic': 't' }, 401, unauthorized],
    ['shopify: no signature', 'shopify', shopBody, { 'X-Shopify-Webhook-Id': randomUUID(), 'X-Shopify-Topic': 't' }, 401, unauthorized],
    ['slack: timestamp outside tolerance', 'slack', slackBody, {
      'X-Slack-Signature': `v0=${createHmac('sha256', SLACK_SECRET).update(`v0:${now - 600}:${slackBody}`).digest('hex')}`,
      'X-Slack-Request-Timestamp': String(now - 600),
    }, 401, unauthorized],
    ['slack: body changed', 'slack', slackBody.replace('hi', 'ho'), slackHeaders, 401, unauthorized],
    ['linear: signature of another body', 'linear', linBody, { 'Linear-Signature': createHmac('sha256', 'lin-secret').update('{}').digest('hex'), 'Linear-Delivery': randomUUID(), 'Linear-Event': 'Issue' }, 401, unauthorized],
    ['custom: prefix missing', 'custom', cuBody, { 'X-Acme-Signature': createHmac('sha512', 'cu-secret').update(cuBody).digest('base64'), 'X-Acme-Event': 'e' }, 401, unauthorized],
  ]
  const noKeyBody = '{"delivery":{},"x":1}'
  refusals.push(['custom: key field missing', 'custom', noKeyBody, {
    'X-Acme-Signature': `t=${createHmac('sha512', 'cu-secret').update(noKeyBody).digest('base64')}`,
    'X-Acme-Event': 'e',
  }, 400, { error: { code: 'HOOKRELAY_INGEST_NO_KEY', message: 'the body has no delivery.id field' } }])
  const noEventBody = '{"type":"event_callback","event_id":"Ev2"}'
  refusals.push(['slack: event field missing', 'slack', noEventBody, {
    'X-Slack-Signature': `v0=${createHmac('sha256', SLACK_SECRET).update(`v0:${now}:${noEventBody}`).digest('hex')}`,
    'X-Slack-Request-Timestamp': String(now),
  }, 400, { error: { code: 'HOOKRELAY_INGEST_NO_EVENT', message: 'the callback names no event' } }])
  for (const [what, source, body, headers, status, json] of refusals) {
    const a = await post(`${base}/webhook/${source}`, body, headers)
    t.equal(a.status, status, what)
    t.same(a.json, json, `${what}: the answer says no more than that`)
  }
  t.equal(relay.journal.head, head, 'nothing refused was journaled')
})
