// Destinations that stay down: dead letters, the delivery.failed entry, replay, the circuit, and a relay killed mid-delivery.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ingestDirect, postRunflow } from './helpers/relay.js'
import { spawnRelay, writeConfig } from './helpers/spawn.js'
import {
  api,
  deliveredCount,
  destinationConfigYaml,
  nextAttempt,
  OPERATOR_TOKEN,
  READER_TOKEN,
  startDestinationRelay,
  startHandler,
} from './destinations-harness.js'

t.test('down for the whole schedule: dead letter and a delivery.failed entry; replay once it is back delivers it', async (t) => {
  const h = await startHandler(t, () => ({ status: 503 }))
  const { relay, base, worker } = await startDestinationRelay(
    t,
    `destinations:
  app:
    url: ${h.url}
    retry: { schedule: [10ms, 10ms], jitter: 0 }`,
  )
  const dead = nextAttempt(worker(), (a) => a.outcome === 'dead')
  await ingestDirect(relay, 'doomed')
  const a = await dead
  t.equal(a.attempt, 3, 'first attempt and one per schedule step')
  t.equal(h.received.length, 3)
  await relay.journal.idle()
  const failed = (await relay.journal.read(1, 10)).find((e) => e.event === 'delivery.failed')
  t.ok(failed, 'a delivery.failed entry in the journal')
  t.match(JSON.parse(failed!.body.toString()), { destination: 'app', seq: 1, source: 'runflow', event: 'run.completed', key: 'doomed', attempts: 3 })
  t.equal(failed!.key, 'doomed')

  const show = await api(base, '/v1/destinations/app', READER_TOKEN)
  t.equal(show.status, 200, 'a reader may look')
  t.equal(show.json.dead_letters, 1)
  t.match(show.json.dead_letter_list, [{ seq: 1, key: 'doomed', attempts: 3 }])
  t.equal(show.json.cursor, 2, 'the cursor went past it (and past the delivery.failed entry, which it does not deliver)')
  t.equal(h.received.length, 3, 'its own delivery.failed entry is not delivered to it')

  const refused = await api(base, '/v1/destinations/app/replay', READER_TOKEN, { method: 'POST', body: { dead_letters: true } })
  t.equal(refused.status, 403)
  t.equal(refused.json.error.code, 'HOOKRELAY_DESTINATION_FORBIDDEN')

  h.script = () => ({ status: 200 })
  const delivered = nextAttempt(worker(), (x) => x.outcome === 'delivered')
  const replay = await api(base, '/v1/destinations/app/replay', OPERATOR_TOKEN, { method: 'POST', body: { dead_letters: true } })
  t.equal(replay.status, 202)
  t.equal(replay.json.queued, 1)
  t.equal((await delivered).seq, 1)
  t.equal(h.received.at(-1)!.headers['hookrelay-seq'], '1')
  t.equal((await api(base, '/v1/destinations/app', OPERATOR_TOKEN)).json.dead_letters, 0, 'the list is empty again')
  const attempts = await api(base, '/v1/destinations/app/attempts?seq=1', READER_TOKEN)
  t.same(attempts.json.attempts.map((x: { outcome: string }) => x.outcome), ['delivered', 'dead', 'retry', 'retry'])
})

t.test('max_age: an event older than max_age at its next attempt is dead-lettered', async (t) => {
  const h = await startHandler(t, () => ({ status: 500 }))
  const { relay, worker } = await startDestinationRelay(
    t,
    `destinations:
  app:
    url: ${h.url}
    retry: { schedule: [1h], max_age: 1m }`,
  )
  const dead = nextAttempt(worker())
  await ingestDirect(relay, 'too-old-soon')
  const a = await dead
  t.equal(a.outcome, 'dead')
  t.equal(a.attempt, 1)
})

t.test('replay from a seq sends it and everything after it again', async (t) => {
  const h = await startHandler(t)
  const { relay, base, worker } = await startDestinationRelay(t, `destinations:\n  app:\n    url: ${h.url}`)
  const three = deliveredCount(worker(), 3)
  for (const k of ['a', 'b', 'c']) await ingestDirect(relay, k)
  await three
  const again = deliveredCount(worker(), 2)
  const r = await api(base, '/v1/destinations/app/replay', OPERATOR_TOKEN, { method: 'POST', body: { from: 2 } })
  t.equal(r.status, 202)
  await again
  t.same(h.received.map((x) => x.headers['hookrelay-seq']), ['1', '2', '3', '2', '3'])
  const bad = await api(base, '/v1/destinations/app/replay', OPERATOR_TOKEN, { method: 'POST', body: { from: 0 } })
  t.equal(bad.status, 400)
  t.equal(bad.json.error.code, 'HOOKRELAY_DESTINATION_BAD_REQUEST')
})

t.test('circuit: opens after N consecutive failures, probes, closes; exactly one warn line per state change', async (t) => {
  let failuresLeft = 6
  const h = await startHandler(t, () => (failuresLeft-- > 0 ? { status: 500 } : { status: 200 }))
  const { relay, worker, logs } = await startDestinationRelay(
    t,
    `destinations:
  app:
    url: ${h.url}
    concurrency: 2
    retry: { schedule: [5ms, 5ms, 5ms, 5ms, 5ms, 5ms, 5ms, 5ms, 5ms, 5ms], jitter: 0 }
    circuit: { failures: 3, cooldown: 40ms, max_cooldown: 80ms }`,
  )
  // Read the gauge the moment the circuit opens: a probe after the cooldown makes it half-open.
  const opened = new Promise<Promise<string>>((resolve) => {
    const on = (): void => {
      if (worker().summary().circuit === 'open') {
        worker().off('attempt', on)
        resolve(relay.metrics.registry.getSingleMetricAsString('hookrelay_destination_circuit_state'))
      }
    }
    worker().on('attempt', on)
  })
  const both = deliveredCount(worker(), 2)
  await ingestDirect(relay, 'c-1')
  await ingestDirect(relay, 'c-2')
  const gauge = await (await opened)
  const circuitMetric = gauge.match(/hookrelay_destination_circuit_state\{destination="app"\} (\d)/)
  t.equal(circuitMetric?.[1], '1', 'the metric says open')
  await both
  const open = logs.filter((l) => l.msg.startsWith('destination circuit open'))
  const closed = logs.filter((l) => l.msg.startsWith('destination circuit closed'))
  t.equal(open.length, 1, 'one line when it opened')
  t.equal(closed.length, 1, 'one line when it closed')
  t.equal(open[0]!.level, 40, 'warn')
  t.equal(closed[0]!.level, 40, 'warn')
  t.equal(worker().summary().circuit, 'closed')
  // 6 failures then 2 deliveries; while open, one probe per cooldown instead of one request per event per step.
  t.equal(h.received.length, 8)
  const attempts = await worker().attempts(undefined, 100)
  t.equal(attempts.length, 8, 'every attempt recorded')
})

t.test('SIGKILL mid-delivery: the restarted relay resumes from the durable cursor, nothing lost', async (t) => {
  const dir = t.testdir()
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir, { mode: 0o700 })
  let hang = false
  const h = await startHandler(t, () => (hang ? 'hang' : { status: 200 }))
  const yaml = destinationConfigYaml(dataDir, `destinations:\n  app:\n    url: ${h.url}\n    timeout: 1m`).replace('log: { level: silent }', 'log: { level: info }')
  const file = writeConfig(dir, yaml)
  const first = await spawnRelay(file)
  t.teardown(() => first.child.kill('SIGKILL'))
  const seqs = (): string[] => h.received.map((r) => r.headers['hookrelay-seq'] as string)
  const five = new Promise<void>((resolve) => h.events.on('request', () => h.received.length === 5 && resolve()))
  for (let i = 1; i <= 5; i++) t.equal((await postRunflow(first.base, `{"event":"run.completed","run_id":"k-${i}"}`)).status, 200)
  await five
  hang = true
  const stuck = h.next()
  t.equal((await postRunflow(first.base, `{"event":"run.completed","run_id":"k-6"}`)).status, 200)
  await stuck
  for (let i = 7; i <= 8; i++) t.equal((await postRunflow(first.base, `{"event":"run.completed","run_id":"k-${i}"}`)).status, 200)
  first.child.kill('SIGKILL')
  await first.exited
  const before = seqs()
  t.same(before, ['1', '2', '3', '4', '5', '6'], 'six requests before the kill (the sixth unanswered)')

  hang = false
  const all = new Promise<void>((resolve) => h.events.on('request', (r) => r.headers['hookrelay-seq'] === '8' && resolve()))
  const second = await spawnRelay(file)
  t.teardown(() => second.child.kill('SIGKILL'))
  await all
  const after = seqs().slice(before.length)
  t.same(after.slice(-3), ['6', '7', '8'], 'the unanswered one and the ones after it, in order')
  const repeated = after.slice(0, -3)
  t.ok(repeated.length <= 2, `at most the last ones whose cursor write was in flight are repeated (${repeated.join(',')})`)
  t.same(repeated, before.slice(5 - repeated.length, 5), 'any repeat is a tail of what was delivered')
  second.child.kill('SIGTERM')
  await second.exited
})
