// The destinations block: defaults, positioned errors, and what a reload takes over.
import t from 'tap'
import { ConfigError, loadConfigText } from '../src/config/load.js'
import { RelayError } from '../src/errors.js'
import { generateEd25519, generateSecret } from '../src/verify/keys.js'
import { ingestDirect } from './helpers/relay.js'
import { destinationConfigYaml, nextAttempt, startDestinationRelay, startHandler } from './destinations-harness.js'

const SOURCES = `sources:\n  runflow: { verify: { scheme: runflow, secrets: [s] } }\n`

function thrown(fn: () => unknown): RelayError | undefined {
  try {
    fn()
  } catch (e) {
    if (e instanceof RelayError) return e
    throw e
  }
  return undefined
}

function problems(yaml: string): string[] {
  try {
    loadConfigText(yaml, 'test.yaml', { env: {} })
  } catch (e) {
    if (e instanceof ConfigError) return e.format().split('\n')
    throw e
  }
  return []
}

t.test('defaults: DESIGN.md example shape', async (t) => {
  const c = loadConfigText(
    `${SOURCES}destinations:
  app:
    url: http://127.0.0.1:3000/webhook/runflow
    sources: [runflow]
    events: ["run.*"]
    signing: original
    headers: { X-Environment: prod }
    timeout: 10s
    concurrency: 1
    retry: { schedule: [5s, 30s, 2m, 10m, 1h, 6h], max_age: 3d }
`,
    'test.yaml',
    { env: {} },
  )
  t.same(c.destinations.app, {
    name: 'app',
    url: 'http://127.0.0.1:3000/webhook/runflow',
    sources: ['runflow'],
    events: ['run.*'],
    signing: { mode: 'original' },
    headers: { 'x-environment': 'prod' },
    timeout_ms: 10_000,
    concurrency: 1,
    retry: { schedule_ms: [5000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000], jitter: 0.2, max_age_ms: 3 * 86_400_000 },
    circuit: { failures: 10, cooldown_ms: 30_000, max_cooldown_ms: 600_000 },
    attempts_kept: 10_000,
  })
  t.same(loadConfigText(SOURCES, 'test.yaml', { env: {} }).destinations, {}, 'none by default')
})

t.test('re-signing keys: secret for v1, private_key (or _file) for v1a', async (t) => {
  const secret = generateSecret()
  const pair = generateEd25519()
  const c = loadConfigText(
    `${SOURCES}destinations:\n  a:\n    url: https://example.com/hook\n    signing: { scheme: standard-webhooks, secret: "${secret}", private_key: "${pair.secretKey}" }\n`,
    'test.yaml',
    { env: {} },
  )
  t.same(c.destinations.a!.signing, { mode: 'standard-webhooks', secret, private_key: pair.secretKey })
})

t.test('problems are positioned: file:line:col: path: what to do', async (t) => {
  const got = problems(`${SOURCES}destinations:
  app:
    url: ftp://nowhere
    sources: [nope]
    signing: { scheme: standard-webhooks, secret: "whsec_!!" }
    headers: { Content-Length: "3" }
    retry: { schedule: [] }
    concurency: 2
  Bad_Name:
    url: http://127.0.0.1:1/
  nokey:
    url: http://127.0.0.1:1/
    signing: { scheme: standard-webhooks }
  weird:
    url: http://user:pw@127.0.0.1:1/
    signing: originl
  missing: {}
`)
  const want = [
    /^test\.yaml:5:10: destinations\.app\.url: "ftp:\/\/nowhere" is not an http\(s\) URL/,
    /^test\.yaml:11:3: destinations\.Bad_Name: "Bad_Name" is not a valid name/,
    /^test\.yaml:10:5: destinations\.app\.concurency: unknown key; .*\(did you mean concurrency\?\)/,
    /^test\.yaml:15:5: destinations\.nokey\.signing: has no key to sign with/,
    /^test\.yaml:17:10: destinations\.weird\.url: holds credentials/,
    /^test\.yaml:18:14: destinations\.weird\.signing: "originl" is not allowed; use one of original/,
    /^test\.yaml:19:3: destinations\.missing\.url: missing; add url:/,
    /^test\.yaml:6:15: destinations\.app\.sources\[0\]: "nope" is not a configured source/,
    /^test\.yaml:9:14: destinations\.app\.retry\.schedule: is empty/,
    /^test\.yaml:8:16: destinations\.app\.headers\.Content-Length: the relay sets content-length itself/,
    /^test\.yaml:7:51: destinations\.app\.signing\.secret: is not a Standard Webhooks secret/,
  ]
  for (const re of want) t.ok(got.some((line) => re.test(line)), re.source)
  t.equal(got.length, want.length, 'nothing else')
})

t.test('reload: url, headers and retry are taken over; concurrency needs a restart', async (t) => {
  const a = await startHandler(t)
  const b = await startHandler(t)
  const { relay, worker, dir } = await startDestinationRelay(t, `destinations:\n  app:\n    url: ${a.url}`)
  const first = nextAttempt(worker())
  await ingestDirect(relay, 'before')
  await first
  const next = loadConfigText(
    destinationConfigYaml(dir, `destinations:\n  app:\n    url: ${b.url}\n    headers: { x-env: test }\n    retry: { schedule: [1s] }`),
    '<test>',
    { env: {} },
  )
  const { changed } = relay.reload(next)
  t.match(changed, ['destinations (url, headers, timeout, retry, circuit, signing keys, attempts_kept)'])
  const second = b.next()
  await ingestDirect(relay, 'after')
  const r = await second
  t.equal(r.headers['x-env'], 'test', 'the new url with the new headers')
  t.equal(a.received.length, 1)
  t.same(worker().config.retry.schedule_ms, [1000])

  const refused = loadConfigText(destinationConfigYaml(dir, `destinations:\n  app:\n    url: ${b.url}\n    concurrency: 4`), '<test>', { env: {} })
  t.match(thrown(() => relay.reload(refused)), { code: 'HOOKRELAY_CONFIG_RESTART_REQUIRED', message: /destinations \(names/ })
  const added = loadConfigText(destinationConfigYaml(dir, `destinations:\n  app:\n    url: ${b.url}\n  other:\n    url: ${b.url}`), '<test>', { env: {} })
  t.match(thrown(() => relay.reload(added)), { code: 'HOOKRELAY_CONFIG_RESTART_REQUIRED' }, 'adding a destination too')
})
