// Faults of the NATS cluster under the JetStream journal (a real 3-node
// nats-server cluster on loopback): quorum lost and regained, and the stream
// leader SIGKILLed mid-load. Never a 200 for a callback that is not in the
// stream; nothing acknowledged lost; no callback journaled twice.
import { jetstreamManager } from '@nats-io/jetstream'
import { connect as natsConnect } from '@nats-io/transport-node'
import { pino } from 'pino'
import t from 'tap'
import { fanoutExtension } from '../src/fanout/hub.js'
import { Relay } from '../src/relay.js'
import { sampleRunflowCallback } from '../src/sample.js'
import { startNatsCluster, type NatsCluster } from './helpers/nats.js'
import { TOKEN, get, onJetStream, postRunflow, silent, testConfig, type Answer } from './helpers/relay.js'
import { connect } from './helpers/ws-conn.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

const cluster: NatsCluster = await startNatsCluster(t, { dir: t.testdir() })

async function startRelay(t: TapLike, stream: string, name: string): Promise<{ relay: Relay; base: string }> {
  const dir = `${t.testdir()}/${name}`
  const config = onJetStream(testConfig(dir), cluster.urls, dir, { stream })
  // A node restarted by the test before may still count as offline for placing a new stream's replicas.
  const opts = { logger: process.env.HOOKRELAY_TEST_LOG ? pino({ level: 'warn' }, pino.destination(2)).child({ relay: name }) : silent, processMetrics: false, extensions: [fanoutExtension()] }
  let relay: Relay
  for (let attempt = 1; ; attempt++) {
    try {
      relay = await Relay.start(config, opts)
      break
    } catch (err) {
      if (attempt >= 40 || !/peer offline|no suitable peers/.test((err as Error).message)) throw err
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  t.teardown(() => relay.close())
  return { relay, base: `http://127.0.0.1:${relay.port}` }
}

/** The index of the node that leads `stream` now. */
async function streamLeader(stream: string): Promise<number> {
  const nc = await natsConnect({ servers: cluster.urls.filter((_, i) => cluster.nodes[i]!.proc !== undefined) })
  try {
    const jsm = await jetstreamManager(nc)
    for (;;) {
      const leader = (await jsm.streams.info(stream)).cluster?.leader
      const i = cluster.nodes.findIndex((n) => n.name === leader)
      if (i >= 0) return i
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    await nc.close()
  }
}

t.test('SIGKILL of the stream leader mid-load: every acknowledged callback is in the stream once, and reaches a subscriber in one order', async (t) => {
  const a = await startRelay(t, 'LOAD', 'a')
  const b = await startRelay(t, 'LOAD', 'b')
  const bases = [a.base, b.base]
  const leader = await streamLeader('LOAD')
  const total = 240
  const bodies = Array.from({ length: total }, () => sampleRunflowCallback())
  const acked = new Map<string, number>()
  let ackedAfterKill = 0
  let killed: Promise<void> | undefined
  let next = 0
  // 8 senders, each sending its callbacks to alternating relays and retrying a 503 (as a sender does).
  const sender = async (w: number): Promise<void> => {
    while (next < total) {
      const i = next++
      for (let attempt = 0; ; attempt++) {
        const r = await postRunflow(bases[(i + attempt + w) % 2]!, bodies[i]!)
        if (r.status === 200) {
          acked.set(JSON.parse(bodies[i]!).run_id, r.json.seq)
          if (killed !== undefined) ackedAfterKill++
          if (acked.size === 60 && killed === undefined) {
            killed = cluster.kill(leader)
          }
          break
        }
        t.equal(r.status, 503, 'a callback not taken is answered 503')
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, (_, w) => sender(w)))
  await killed
  t.equal(acked.size, total, 'every callback acknowledged in the end')
  t.ok(ackedAfterKill > 0, `${ackedAfterKill} acknowledged after the leader was killed`)
  t.equal(a.relay.journal.failed, undefined, 'relay A did not take the leader change for a stream gone backwards')
  t.equal(b.relay.journal.failed, undefined, 'nor did relay B')

  const head = Math.max(a.relay.journal.head, b.relay.journal.head)
  const entries = await b.relay.journal.read(0, head + 10)
  const keys = entries.map((e) => e.key)
  t.equal(new Set(keys).size, keys.length, 'no callback journaled twice')
  for (const [key, seq] of acked) {
    if (entries.find((e) => e.seq === seq)?.key !== key) {
      const onA = (await a.relay.journal.get(seq))?.key
      const nc = await natsConnect({ servers: cluster.urls.filter((_, i) => cluster.nodes[i]!.proc !== undefined) })
      const m = await (await jetstreamManager(nc)).streams.getMessage('LOAD', { seq })
      await nc.close()
      t.fail(`acknowledged ${key} at seq ${seq} is not there: B has ${entries.find((e) => e.seq === seq)?.key} there, A ${onA}, the leader ${m ? JSON.stringify(m.subject) + ' ' + Buffer.from(m.data).toString('utf8', 4, 120) : 'nothing'}; the key is at ${entries.find((e) => e.key === key)?.seq}`)
    }
  }
  t.equal(entries.length, total, 'the stream holds exactly the acknowledged callbacks')
  t.same(entries.map((e) => e.seq), Array.from({ length: entries.length }, (_, i) => i + 1), 'gapless')

  const c = await connect(t, `ws://127.0.0.1:${b.relay.port}/v1/stream`, TOKEN)
  await c.next()
  c.send({ type: 'subscribe', after: 0 })
  await c.next()
  const seen: string[] = []
  for (let i = 0; i < entries.length; i++) seen.push((await c.next()).key)
  t.same(seen, keys, 'a subscriber on the other relay gets them all, in stream order')
  await cluster.start(leader)
  await cluster.waitForMeta()
})

t.test('the cluster losing quorum: ingest answers 503 with Retry-After, never 200; 200 again once it is back', async (t) => {
  const { relay, base } = await startRelay(t, 'QUORUM', 'a')
  for (let i = 0; i < 3; i++) t.equal((await postRunflow(base, sampleRunflowCallback())).status, 200)
  const headBefore = relay.journal.head
  await Promise.all([cluster.kill(1), cluster.kill(2)])

  // Until the relay itself sees the loss, callbacks wait for a PubAck that cannot come; either way: 503.
  const during: Answer[] = []
  for (let i = 0; i < 6; i++) during.push(await postRunflow(base, sampleRunflowCallback()))
  t.same(during.map((a) => a.status), during.map(() => 503), 'every callback without quorum: 503')
  t.ok(during.every((a) => a.headers.get('retry-after') !== null), 'each with Retry-After')
  t.same([...new Set(during.map((a) => a.json.error?.code))], ['HOOKRELAY_JOURNAL_UNAVAILABLE'], 'the stream is unavailable (not changed, not failed)')
  for (;;) {
    const r = await get(`${base}/readyz`)
    if (r.status === 503) {
      t.match(r.json, { error: { code: 'HOOKRELAY_NOT_READY' } }, '/readyz: 503 without quorum')
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  await Promise.all([cluster.start(1), cluster.start(2)])
  await cluster.waitForMeta()
  let back: Answer | undefined
  for (let i = 0; ; i++) {
    const a = await postRunflow(base, sampleRunflowCallback())
    if (a.status === 200) {
      back = a
      break
    }
    t.equal(a.status, 503, `while the cluster recovers: 503 (try ${i + 1})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(back!.json.seq > headBefore, 'a 200 again, with a new seq')
  for (;;) {
    if ((await get(`${base}/readyz`)).status === 200) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.pass('/readyz 200 again')
})
