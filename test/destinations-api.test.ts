// /v1/destinations and `hookrelay destinations ...` with operator and reader tokens, and the metrics.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { ingestDirect, TOKEN_GH } from './helpers/relay.js'
import { CLI } from './helpers/spawn.js'
import { api, deliveredCount, nextAttempt, OPERATOR_TOKEN, READER_TOKEN, startDestinationRelay, startHandler } from './destinations-harness.js'

const run = promisify(execFile)

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args])
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

t.test('API: readers look, operators manage; tokens see only destinations of their sources', async (t) => {
  const h = await startHandler(t)
  const { relay, base, worker } = await startDestinationRelay(t, `destinations:\n  app:\n    url: ${h.url}\n    sources: [runflow]\n    events: ["run.*"]`)
  const one = deliveredCount(worker(), 1)
  await ingestDirect(relay, 'r-1')
  await ingestDirect(relay, 'b-1', { event: 'batch.completed' })
  await one

  const anon = await fetch(`${base}/v1/destinations`)
  t.equal(anon.status, 401)
  t.equal(((await anon.json()) as { error: { code: string } }).error.code, 'HOOKRELAY_API_UNAUTHORIZED')

  const list = await api(base, '/v1/destinations', READER_TOKEN)
  t.equal(list.status, 200)
  t.match(list.json.destinations, [{ name: 'app', url: h.url, paused: false, circuit: 'closed', cursor: 2, head: 2, lag: 0, dead_letters: 0 }])
  t.equal(h.received.length, 1, 'batch.completed is not in the events globs')
  t.same((await api(base, '/v1/destinations', TOKEN_GH)).json.destinations, [], 'a gh-only token sees none')
  t.equal((await api(base, '/v1/destinations/app', TOKEN_GH)).status, 404, 'nor this one by name')
  t.equal((await api(base, '/v1/destinations/nope', OPERATOR_TOKEN)).json.error.code, 'HOOKRELAY_DESTINATION_NOT_FOUND')
  t.equal((await api(base, '/v1/destinations/app/nope', OPERATOR_TOKEN)).status, 404)
  t.equal((await api(base, '/v1/destinations/app/attempts?seq=x', READER_TOKEN)).status, 400)
  const attempts = await api(base, '/v1/destinations/app/attempts?seq=1', READER_TOKEN)
  t.match(attempts.json.attempts, [{ seq: 1, attempt: 1, status: 200, outcome: 'delivered', error: null, next_at: null }])

  for (const action of ['pause', 'resume', 'replay']) {
    const r = await api(base, `/v1/destinations/app/${action}`, READER_TOKEN, { method: 'POST', body: { from: 1 } })
    t.equal(r.status, 403, `${action} refused to a reader`)
  }
  const paused = await api(base, '/v1/destinations/app/pause', OPERATOR_TOKEN, { method: 'POST' })
  t.equal(paused.status, 200)
  t.match(paused.json, { paused: true, paused_reason: 'operator' })
  await ingestDirect(relay, 'r-2')
  await relay.journal.idle()
  t.equal((await api(base, '/v1/destinations/app', READER_TOKEN)).json.lag, 1, 'paused: the new event waits')
  const delivered = nextAttempt(worker(), (a) => a.seq === 3)
  t.equal((await api(base, '/v1/destinations/app/resume', OPERATOR_TOKEN, { method: 'POST' })).status, 200)
  t.equal((await delivered).outcome, 'delivered')

  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /hookrelay_destination_attempts_total\{destination="app",outcome="delivered"\} 2/)
  t.match(metrics, /hookrelay_destination_lag\{destination="app"\} 0/)
  t.match(metrics, /hookrelay_destination_dead_letters\{destination="app"\} 0/)
  t.match(metrics, /hookrelay_destination_paused\{destination="app"\} 0/)
  t.match(metrics, /hookrelay_destination_delivery_seconds_count\{destination="app"\} 2/)
})

t.test('paused state survives a restart', async (t) => {
  const h = await startHandler(t)
  const dir = t.testdir()
  const yaml = `destinations:\n  app:\n    url: ${h.url}`
  const first = await startDestinationRelay(t, yaml, { dir })
  await api(first.base, '/v1/destinations/app/pause', OPERATOR_TOKEN, { method: 'POST' })
  await first.relay.close()
  const second = await startDestinationRelay(t, yaml, { dir })
  t.match((await api(second.base, '/v1/destinations/app', READER_TOKEN)).json, { paused: true, paused_reason: 'operator' })
})

t.test('CLI: hookrelay destinations list|show|attempts|pause|resume|replay with reader and operator tokens', async (t) => {
  const h = await startHandler(t)
  const { relay, base, worker } = await startDestinationRelay(t, `destinations:\n  app:\n    url: ${h.url}`)
  const one = deliveredCount(worker(), 1)
  await ingestDirect(relay, 'cli-1')
  await one
  const as = (token: string, ...args: string[]) => cli(['destinations', ...args, '--url', base, '--token', token])

  const list = await as(READER_TOKEN, 'list')
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /^app {2}circuit closed {2}lag 0 {2}dead letters 0 {2}http:\/\/127\.0\.0\.1:\d+\/webhook\/runflow$/m)
  const show = await as(READER_TOKEN, 'show', 'app')
  t.equal(show.code, 0)
  t.match(JSON.parse(show.stdout), { name: 'app', cursor: 1, recent_attempts: [{ seq: 1, outcome: 'delivered' }] })
  const attempts = await as(READER_TOKEN, 'attempts', 'app', '--seq', '1')
  t.match(JSON.parse(attempts.stdout), { attempts: [{ seq: 1 }] })

  const refused = await as(READER_TOKEN, 'pause', 'app')
  t.equal(refused.code, 1)
  t.match(refused.stderr, /403 HOOKRELAY_DESTINATION_FORBIDDEN/)
  const pause = await as(OPERATOR_TOKEN, 'pause', 'app')
  t.equal(pause.code, 0, pause.stderr)
  t.match(JSON.parse(pause.stdout), { paused: true })
  t.match((await as(READER_TOKEN, 'list')).stdout, /^app {2}paused \(operator\)/m)
  t.equal((await as(OPERATOR_TOKEN, 'resume', 'app')).code, 0)

  const again = nextAttempt(worker(), (a) => a.outcome === 'delivered')
  const replay = await as(OPERATOR_TOKEN, 'replay', 'app', '--from', '1')
  t.equal(replay.code, 0, replay.stderr)
  t.match(JSON.parse(replay.stdout), { replay: 'from', from: 1 })
  t.equal((await again).attempt, 2, 'the replay is the second attempt of seq 1')

  t.equal((await as(OPERATOR_TOKEN, 'replay', 'app')).code, 64, 'replay without --from or --dead-letters')
  t.equal((await as(OPERATOR_TOKEN, 'frobnicate')).code, 64)
  const unknown = await as(OPERATOR_TOKEN, 'show', 'nope')
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /404 HOOKRELAY_DESTINATION_NOT_FOUND/)
})

t.test('attempts_kept bounds the records: the oldest events go first', async (t) => {
  const h = await startHandler(t)
  const { relay, worker } = await startDestinationRelay(t, `destinations:\n  app:\n    url: ${h.url}\n    attempts_kept: 10`)
  const all = deliveredCount(worker(), 15)
  for (let i = 1; i <= 15; i++) await ingestDirect(relay, `kept-${i}`)
  await all
  const kept = await worker().attempts(undefined, 100)
  t.equal(kept.length, 10)
  t.same(kept.map((a) => a.seq), [15, 14, 13, 12, 11, 10, 9, 8, 7, 6], 'the newest ten, newest first')
  t.same(await worker().attempts(1, 10), [], 'seq 1 dropped')
})
