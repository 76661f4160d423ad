// SIGHUP reload of a spawned `hookrelay serve` (dist/): new secrets and tokens
// take effect without dropping a WebSocket subscriber; an invalid file and a
// restart-only change are refused with a log line and the old config keeps
// running; the reload metrics say so.
import t from 'tap'
import { loadConfigText } from '../src/config/load.js'
import WebSocket from 'ws'
import { signRunflow } from '../src/verify/sign.js'
import { callbackOfSize, metricValue, scrape, waitForMsg } from './helpers/ops.js'
import { get, post, postRunflow, startTestRelay, testConfig, testConfigYaml } from './helpers/relay.js'
import { spawnRelay, writeConfig } from './helpers/spawn.js'

const S1 = 'whsec_reload_first_secret_000000000001'
const S2 = 'whsec_reload_second_secret_00000000002'
const T1 = 'hr_reload_token_one'
const T2 = 'hr_reload_token_two'
/** A second subscriber whose token never changes: its stream must survive every reload. */
const T3 = 'hr_reload_token_stable'

function yaml(dataDir: string, secrets: string[], token: string, port = 0): string {
  return `
listen: { host: 127.0.0.1, port: ${port} }
data_dir: ${dataDir}
sources:
  runflow:
    verify: { scheme: runflow, secrets: ${JSON.stringify(secrets)} }
subscribers:
  - { name: app, token: ${token}, sources: ["*"] }
  - { name: ops, token: ${T3}, sources: ["*"] }
log: { level: info }
`
}

t.test('SIGHUP: good, invalid and restart-only configs', async (t) => {
  const dir = t.testdir()
  const data = `${dir}/data`
  const file = writeConfig(dir, yaml(data, [S1], T1))
  const relay = await spawnRelay(file)
  t.teardown(() => {
    relay.child.kill('SIGKILL')
  })
  const url = `${relay.base}/webhook/runflow`
  const send = async (secret: string): Promise<{ status: number; json: any }> => {
    const body = callbackOfSize(300)
    return post(url, body, signRunflow(secret, body))
  }
  t.equal((await send(S1)).status, 200)

  // A subscriber on the rotated token: its stream is cut with 4401 (a leaked token must stop reading).
  const rotated = new WebSocket(`ws://127.0.0.1:${relay.port}/v1/stream`, { headers: { authorization: `Bearer ${T1}` } })
  t.teardown(() => rotated.terminate())
  const rotatedClosed = new Promise<number>((resolve) => rotated.on('close', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    rotated.on('error', reject)
    rotated.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string }
      if (f.type === 'welcome') rotated.send(JSON.stringify({ type: 'subscribe', after: 'latest' }))
      if (f.type === 'subscribed') resolve()
    })
  })

  // A subscriber that must survive every reload.
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/v1/stream`, { headers: { authorization: `Bearer ${T3}` } })
  t.teardown(() => ws.terminate())
  let closed = false
  ws.on('close', () => (closed = true))
  const seen: number[] = []
  const waiters: Array<() => void> = []
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject)
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string; seq?: number }
      if (f.type === 'welcome') ws.send(JSON.stringify({ type: 'subscribe', after: 'latest' }))
      if (f.type === 'subscribed') resolve()
      if (f.type === 'event') {
        seen.push(f.seq!)
        for (const w of waiters.splice(0)) w()
      }
    })
  })

  // Rotation: S2 replaces S1, T2 replaces T1.
  writeConfig(dir, yaml(data, [S2], T2))
  let logged = waitForMsg(relay.child, 'config reloaded')
  relay.child.kill('SIGHUP')
  const ok = await logged
  t.match(ok, { changed: ['sources (secrets, keys, tolerance, max_body)', 'subscribers'] })
  t.equal((await send(S1)).status, 401, 'the old secret no longer verifies')
  const event = new Promise<void>((resolve) => waiters.push(resolve))
  const a = await send(S2)
  t.equal(a.status, 200, 'the new secret verifies')
  await event
  t.same(seen, [a.json.seq], 'the subscriber connected before the reload got the event')
  t.equal(closed, false, 'the stable subscriber kept its connection')
  t.equal(await rotatedClosed, 4401, 'the stream opened with the rotated-out token was closed')
  t.equal((await get(`${relay.base}/v1/events?after=0`, T1)).status, 401, 'old token refused')
  t.equal((await get(`${relay.base}/v1/events?after=0`, T2)).status, 200, 'new token accepted')
  let text = await scrape(relay.base)
  t.equal(metricValue(text, 'hookrelay_config_reload_last_success'), 1)
  t.equal(metricValue(text, 'hookrelay_config_reloads_total{result="ok"}'), 1)

  // A file that fails validation: refused, the old config keeps running.
  writeConfig(dir, `${yaml(data, [S1], T1)}\nbogus_key: 1\n`)
  logged = waitForMsg(relay.child, 'config reload refused: the file is not valid; the running config stays')
  relay.child.kill('SIGHUP')
  const invalid = await logged
  t.match(invalid, { level: 50, problems: [/hookrelay\.yaml:\d+:\d+: bogus_key: /] })
  t.equal((await send(S2)).status, 200, 'still the config before')
  t.equal((await send(S1)).status, 401)
  text = await scrape(relay.base)
  t.equal(metricValue(text, 'hookrelay_config_reload_last_success'), 0)
  t.equal(metricValue(text, 'hookrelay_config_reloads_total{result="invalid"}'), 1)

  // A change that needs a restart: refused as a whole (the new secret is not taken either).
  writeConfig(dir, yaml(data, [S1], T2, relay.port + 1))
  logged = waitForMsg(relay.child, 'config reload refused; the running config stays')
  relay.child.kill('SIGHUP')
  const refused = await logged
  t.match(refused, { code: 'HOOKRELAY_CONFIG_RESTART_REQUIRED', reason: /changed listen: .*restart/ })
  t.equal((await send(S2)).status, 200)
  text = await scrape(relay.base)
  t.equal(metricValue(text, 'hookrelay_config_reloads_total{result="refused"}'), 1)

  // Back to a good file: success again.
  writeConfig(dir, yaml(data, [S1, S2], T2))
  logged = waitForMsg(relay.child, 'config reloaded')
  relay.child.kill('SIGHUP')
  await logged
  t.equal((await send(S1)).status, 200, 'two secrets during a cutover: both verify')
  t.equal((await send(S2)).status, 200)
  t.equal(metricValue(await scrape(relay.base), 'hookrelay_config_reload_last_success'), 1)
  t.equal(closed, false, 'the subscriber is still connected')

  relay.child.kill('SIGTERM')
  t.same(await relay.exited, { code: 0, signal: null })
})

t.test('relay.reload in process: rate limits, max_body, retention and min_free take effect at once', async (t) => {
  const { relay, base, dir } = await startTestRelay(t)
  const body = callbackOfSize(300)
  t.equal((await postRunflow(base, body)).status, 200)

  const summary = relay.reload(
    testConfig(
      dir,
      `rate_limit: { ingest_per_second: 1, ingest_burst: 1, limit_loopback: true }
journal: { retention: { max_age: 1h, max_bytes: 1mb }, min_free: 0 }`,
    ),
  )
  t.same(summary.changed, ['rate_limit', 'journal.retention', 'journal.min_free'])
  t.equal(relay.retention.limits.maxAgeMs, 3_600_000)
  t.equal(relay.retention.limits.maxBytes, 1024 * 1024)
  t.equal((await postRunflow(base, callbackOfSize(300))).status, 200, 'the burst')
  const limited = await postRunflow(base, callbackOfSize(300))
  t.equal(limited.status, 429)
  t.equal(limited.json.error.code, 'HOOKRELAY_HTTP_RATE_LIMITED')

  const smaller = loadConfigText(testConfigYaml(dir).replace('max_body: 64kb', 'max_body: 2kb'), '<test>', { env: {} })
  t.same(relay.reload(smaller).changed, ['sources (secrets, keys, tolerance, max_body)', 'rate_limit', 'journal.retention', 'journal.min_free'])
  t.equal((await postRunflow(base, callbackOfSize(300))).status, 200, 'rate limit off again')
  t.equal((await postRunflow(base, callbackOfSize(3000))).status, 413, 'max_body lowered to 2kb')
})

