// Job queues of the JetStream journal across relays (two JetStreamJournal
// instances on one stream of a real 3-node nats-server cluster): a job written
// with an entry is seen by both, `claim` leases it to one, the lease of a relay
// that is gone runs out and the other relay takes the job over, `complete`
// appends the outcome entry and removes the job for everyone.
import { hash } from 'node:crypto'
import t from 'tap'
import { JetStreamJournal } from '../src/journal/jetstream/journal.js'
import type { IngestInput } from '../src/journal/types.js'
import { startNatsCluster, type NatsCluster } from './helpers/nats.js'
import { onJetStream, silent, testConfig } from './helpers/relay.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

const cluster: NatsCluster = await startNatsCluster(t, { dir: t.testdir() })
const QUEUE = 'work'
const LEASE_MS = 1500

async function open(t: TapLike, stream: string): Promise<JetStreamJournal> {
  const dir = t.testdir()
  const config = onJetStream(testConfig(dir), cluster.urls, dir, { stream })
  const j = await JetStreamJournal.open(config.journal, { log: silent, leaseMs: LEASE_MS })
  j.openQueue(QUEUE)
  // Every callback of run `job-*` enqueues one job, in the entry's "transaction" (as the mirror's outbox does).
  j.addAppendHook((ctx) => (ctx.internal || !ctx.key.startsWith('job-') ? undefined : { enqueue: [{ queue: QUEUE, key: [ctx.key], job: { seq: ctx.seq } }] }))
  t.teardown(() => j.close())
  return j
}

function input(key: string): IngestInput {
  const body = Buffer.from(JSON.stringify({ event: 'run.completed', run_id: key }))
  return { source: 'runflow', event: 'run.completed', key, status: 'succeeded', body, sha256: hash('sha256', body, 'hex'), receivedAt: Date.now(), requestId: undefined, json: JSON.parse(body.toString()) }
}

/** Resolves once `pred` holds, checked as the journal's jobs bucket copy changes (polled; bounded by the tap timeout). */
async function until(pred: () => Promise<boolean>): Promise<void> {
  while (!(await pred())) await new Promise((resolve) => setTimeout(resolve, 20))
}

t.test('a job is leased to one relay; when that relay is gone its lease runs out and the other takes it; complete removes it', async (t) => {
  const a = await open(t, 'JOBS1')
  const b = await open(t, 'JOBS1')
  const r = await a.append(input('job-1'))
  t.same(await b.getJob(QUEUE, ['job-1']), { seq: r.seq }, 'the job exists with its entry, on the other relay too')
  await until(async () => (await b.jobs(QUEUE)).length === 1)

  const onA = await a.claim<{ seq: number }>(QUEUE, { limit: 10 })
  t.same(onA.map((j) => j.key), [['job-1']], 'relay A claims it')
  t.same(await b.claim(QUEUE, { limit: 10 }), [], 'relay B cannot while A holds the lease')
  // A keeps renewing while it lives: past one lease period B still cannot take it.
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 1.5))
  t.same(await b.claim(QUEUE, { limit: 10 }), [], 'A renewed its lease')

  // Relay A goes away without completing the job (its connection and renewals stop).
  await a.close()
  let taken: Array<{ key: unknown }> = []
  await until(async () => (taken = await b.claim(QUEUE, { limit: 10 })).length > 0)
  t.same(taken.map((j) => j.key), [['job-1']], 'relay B takes the job over once A\'s lease ran out')

  const seq = await b.complete(QUEUE, ['job-1'], { source: 'runflow', event: 'job.done', key: 'job-1', body: Buffer.from('{"done":true}'), receivedAt: Date.now(), json: { done: true } })
  t.ok(seq > r.seq, 'the outcome entry follows the callback')
  t.equal(await b.getJob(QUEUE, ['job-1']), undefined, 'the job is gone')
  t.same(await b.jobs(QUEUE), [])
  t.match(await b.get(seq), { event: 'job.done', key: 'job-1', revision: 1 })
  t.match(await b.getRun('runflow', 'job-1'), { revision: 1, seq: r.seq }, 'the run row still points at the callback')
})

t.test('claim hands out jobs in key order, each to one relay only, and skips what `accept` refuses', async (t) => {
  const a = await open(t, 'JOBS2')
  const b = await open(t, 'JOBS2')
  for (const k of ['job-c', 'job-a', 'job-b', 'job-d']) await a.append(input(k))
  await until(async () => (await b.jobs(QUEUE)).length === 4)
  t.same((await b.jobs(QUEUE)).map((j) => j.key), [['job-a'], ['job-b'], ['job-c'], ['job-d']], 'key order')
  const [x, y] = await Promise.all([
    a.claim(QUEUE, { limit: 4, accept: (_job, key) => key[0] !== 'job-d' }),
    b.claim(QUEUE, { limit: 4, accept: (_job, key) => key[0] !== 'job-d' }),
  ])
  const all = [...x, ...y].map((j) => String(j.key[0])).sort()
  t.same(all, ['job-a', 'job-b', 'job-c'], 'every accepted job claimed exactly once across both relays')
  t.same(await a.claim(QUEUE, { limit: 4 }), (await a.claim(QUEUE, { limit: 4 })), 'a relay gets its own leases back')
})

t.test('changeJobs and cursors are shared by every relay on the stream', async (t) => {
  const a = await open(t, 'JOBS3')
  const b = await open(t, 'JOBS3')
  await a.changeJobs(() => ({ enqueue: [{ queue: QUEUE, key: ['x', 2], job: { n: 2 } }, { queue: QUEUE, key: ['x', 10], job: { n: 10 } }] }))
  await until(async () => (await b.jobs(QUEUE)).length === 2)
  t.same((await b.jobs(QUEUE)).map((j) => j.key), [['x', 2], ['x', 10]], 'numbers compare as numbers')
  await b.changeJobs((jobs) => (jobs.getJob(QUEUE, ['x', 2]) ? { remove: [{ queue: QUEUE, key: ['x', 2] }] } : undefined))
  t.equal(await a.getJob(QUEUE, ['x', 2]), undefined)

  await a.saveCursors(new Map([['app/one', 7], ['app/two', 3]]))
  t.same(await b.getCursor('app/one'), { seq: 7, epoch: a.epoch })
  t.same(await b.listCursors(), [{ name: 'app/one', seq: 7 }, { name: 'app/two', seq: 3 }])
  t.equal(await b.deleteCursor('app/two'), true)
  t.equal(await a.deleteCursor('app/two'), false)
  t.same(await a.listCursors(), [{ name: 'app/one', seq: 7 }])
})
