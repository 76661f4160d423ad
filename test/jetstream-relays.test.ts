// Two relays on one JetStream stream (a real 3-node nats-server cluster on
// loopback): dedupe and revisions hold across relays, subscribers on either
// relay see one order, and a durable consumer moves between relays.
import t from 'tap'
import { fanoutExtension } from '../src/fanout/hub.js'
import { Relay } from '../src/relay.js'
import { sampleRunflowCallback, uuidv7 } from '../src/sample.js'
import { startNatsCluster, type NatsCluster } from './helpers/nats.js'
import { consumerKey } from '../src/fanout/subscribe-decision.js'
import { TOKEN, get, onJetStream, postRunflow, silent, testConfig } from './helpers/relay.js'
import { connect, type Conn } from './helpers/ws-conn.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

const cluster: NatsCluster = await startNatsCluster(t, { dir: t.testdir() })

let streams = 0
/** Two relays (with the hub) on one fresh stream. */
async function pair(t: TapLike): Promise<{ a: Relay; b: Relay; bases: [string, string] }> {
  const stream = `PAIR${++streams}`
  const dir = t.testdir()
  const start = async (name: string): Promise<Relay> => {
    const config = onJetStream(testConfig(`${dir}/${name}`), cluster.urls, `${dir}/${name}`, { stream })
    const relay = await Relay.start(config, { logger: silent, processMetrics: false, extensions: [fanoutExtension()] })
    t.teardown(() => relay.close())
    return relay
  }
  const a = await start('a')
  const b = await start('b')
  return { a, b, bases: [`http://127.0.0.1:${a.port}`, `http://127.0.0.1:${b.port}`] }
}

async function subscribed(c: Conn, sub: Record<string, unknown>): Promise<any> {
  await c.next() // welcome
  c.send({ type: 'subscribe', ...sub })
  return c.next()
}

t.test('50 identical copies of one callback split across two relays: one entry, one seq', async (t) => {
  const { a, b, bases } = await pair(t)
  const body = sampleRunflowCallback()
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => postRunflow(bases[i % 2]!, body)))
  t.ok(answers.every((r) => r.status === 200), 'all 200')
  t.same([...new Set(answers.map((r) => `${r.json.seq}/${r.json.revision}`))], ['1/1'], 'every answer names seq 1, revision 1')
  t.equal(answers.filter((r) => r.json.duplicate !== true).length, 1, 'exactly one answer is not a duplicate')
  t.equal(a.journal.head, 1)
  t.equal(b.journal.head, 1)
  t.equal((await a.journal.read(0, 100)).length, 1, 'one entry in the stream')
  // Long after JetStream's duplicate window would matter, the run row still knows the body.
  t.same((await postRunflow(bases[1], body)).json, { ok: true, seq: 1, revision: 1, duplicate: true })
})

t.test('different bodies for one key split across two relays: revisions 1..n, no gap, no repeat, in stream order', async (t) => {
  const { a, b, bases } = await pair(t)
  const runId = uuidv7()
  // The run row remembers the last 16 bodies (REVISIONS_KEPT), as on LMDB.
  const n = 16
  const bodies = Array.from({ length: n }, (_, i) => sampleRunflowCallback({ runId, outputUrls: [`https://storage.example/${i}.png?sig=${i}`] }))
  const answers = await Promise.all(bodies.map((body, i) => postRunflow(bases[i % 2]!, body)))
  t.ok(answers.every((r) => r.status === 200), 'all 200')
  const revisions = answers.map((r) => r.json.revision as number).sort((x, y) => x - y)
  t.same(revisions, Array.from({ length: n }, (_, i) => i + 1), 'each revision once')
  const entries = await b.journal.read(0, 100)
  t.equal(entries.length, n, 'one entry per body')
  t.same(
    entries.map((e) => e.revision),
    Array.from({ length: n }, (_, i) => i + 1),
    'the stream holds them in revision order',
  )
  for (const r of answers) t.equal(entries.find((e) => e.seq === r.json.seq)?.revision, r.json.revision, `seq ${r.json.seq} is revision ${r.json.revision}`)
  const row = await get(`${bases[0]}/v1/runs/runflow/${runId}`, TOKEN)
  t.equal(row.json.revision, n, 'the run row is at the last revision')
  t.equal(row.json.seq, entries[n - 1]!.seq)
  // Every body is still recognised, on either relay.
  const again = await Promise.all(bodies.map((body, i) => postRunflow(bases[(i + 1) % 2]!, body)))
  t.ok(again.every((r, i) => r.json.duplicate === true && r.json.revision === answers[i]!.json.revision), 'retries are duplicates of their own revision')
  t.equal(a.journal.head, n)
})

t.test('a subscriber on relay B sees what relay A ingested, in stream order, live', async (t) => {
  const { a, b, bases } = await pair(t)
  const first = [sampleRunflowCallback(), sampleRunflowCallback()]
  for (const body of first) t.equal((await postRunflow(bases[0], body)).status, 200)
  const c = await connect(t, `ws://127.0.0.1:${b.port}/v1/stream`, TOKEN)
  t.match(await subscribed(c, { after: 0 }), { type: 'subscribed', epoch: a.journal.epoch, after: 0 })
  t.equal(a.journal.epoch, b.journal.epoch, 'one epoch for the stream')
  t.match(await c.next(), { type: 'event', seq: 1, key: JSON.parse(first[0]!).run_id })
  t.match(await c.next(), { type: 'event', seq: 2, key: JSON.parse(first[1]!).run_id })
  t.match(await c.next(), { type: 'live' })
  // Live: callbacks on both relays at once; B's subscriber gets every one, in seq order.
  const more = Array.from({ length: 20 }, () => sampleRunflowCallback())
  const answers = await Promise.all(more.map((body, i) => postRunflow(bases[i % 2]!, body)))
  const bySeq = new Map(answers.map((r, i) => [r.json.seq as number, JSON.parse(more[i]!).run_id as string]))
  const seen: number[] = []
  for (let i = 0; i < 20; i++) {
    const e = await c.next()
    t.equal(e.key, bySeq.get(e.seq), `seq ${e.seq} is the callback acknowledged with it`)
    seen.push(e.seq)
  }
  t.same(seen, Array.from({ length: 20 }, (_, i) => i + 3), 'gapless, in stream order')
})

/** The durable consumer `billing` of the test token's subscriber, as the hub stores it. */
const BILLING = consumerKey('app', 'billing')

t.test('a durable consumer moved from relay A to relay B resumes exactly after its ack', async (t) => {
  const { a, b, bases } = await pair(t)
  for (let i = 0; i < 6; i++) t.equal((await postRunflow(bases[i % 2]!, sampleRunflowCallback())).status, 200)
  const onA = await connect(t, `ws://127.0.0.1:${a.port}/v1/stream`, TOKEN)
  await subscribed(onA, { consumer: 'billing', after: 0, ack: true })
  for (let i = 1; i <= 4; i++) t.match(await onA.next(), { type: 'event', seq: i })
  onA.send({ type: 'ack', seq: 4 })
  // The ack is stored when the hub flushes it (batched) or at the latest when the connection closes.
  onA.ws.close()
  await onA.closed
  for (;;) {
    const c = await b.journal.getCursor(BILLING)
    if (c?.seq === 4) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const onB = await connect(t, `ws://127.0.0.1:${b.port}/v1/stream`, TOKEN)
  t.match(await subscribed(onB, { consumer: 'billing', ack: true }), { type: 'subscribed', after: 4 })
  t.match(await onB.next(), { type: 'event', seq: 5 })
  t.match(await onB.next(), { type: 'event', seq: 6 })
  onB.send({ type: 'ack', seq: 6 })
  onB.ws.close()
  await onB.closed
  for (;;) {
    const c = await a.journal.getCursor(BILLING)
    if (c?.seq === 6) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.same(await a.journal.listCursors(), [{ name: BILLING, seq: 6 }], 'relay A lists the ack relay B stored')
})
