// Destinations write their attempt records and cursors in batches (one journal
// transaction for many deliveries) and read the journal many events at a time:
// what batching could break (a lost or repeated record number, a cursor that
// skips, the order with concurrency 1) checked on a real journal and a real relay.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { JournalDestinationStore, cursorName } from '../src/destinations/store.js'
import type { AttemptRecord } from '../src/destinations/store.js'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import type { JournalPort } from '../src/journal/port.js'
import { postRunflow } from './helpers/relay.js'
import { buildSlowSync, spawnRelay, writeConfig } from './helpers/spawn.js'
import { api, destinationConfigYaml, OPERATOR_TOKEN, startHandler } from './destinations-harness.js'

const shimDir = mkdtempSync(join(tmpdir(), 'hookrelay-shim-'))
t.teardown(() => rmSync(shimDir, { recursive: true, force: true }))
const so = buildSlowSync(shimDir)
const needsShim = { skip: so ? false : 'no C compiler (cc) on this machine to build the sync shim' }

function record(seq: number, attempt: number): AttemptRecord {
  return { seq, attempt, at: 1000 + seq, status: 200, latency_ms: 1, error: null, outcome: 'delivered', next_at: null }
}

/** The real journal, with its `changeJobs` and `saveCursors` calls counted (each is one transaction). */
async function countedJournal(t: Test): Promise<{ journal: JournalPort; lmdb: LmdbJournal; calls: { changeJobs: number; saveCursors: number } }> {
  const lmdb = await LmdbJournal.open({ dir: join(t.testdir(), 'data'), mapSize: 64 * 1024 * 1024, minFree: 0 })
  t.teardown(() => lmdb.close())
  const calls = { changeJobs: 0, saveCursors: 0 }
  const journal = new Proxy(lmdb, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown
      if (typeof v !== 'function') return v
      if (prop === 'changeJobs' || prop === 'saveCursors') calls[prop]++
      return (v as (...a: unknown[]) => unknown).bind(target)
    },
  }) as JournalPort
  return { journal, lmdb, calls }
}

t.test('store: records and cursors asked for in one turn are one transaction each; all of them durable', async (t) => {
  const { journal, lmdb, calls } = await countedJournal(t)
  const store = new JournalDestinationStore(journal)
  await store.attempts('app', { limit: 1 }) // keys loaded: what follows counts only the batch
  const before = { ...calls }
  const writes: Array<Promise<void>> = []
  for (let seq = 1; seq <= 200; seq++) {
    writes.push(store.recordAttempt('app', record(seq, 1), 1000))
    writes.push(store.saveCursor('app', seq))
  }
  await Promise.all(writes)
  t.equal(calls.changeJobs - before.changeJobs, 1, '200 records, one changeJobs')
  t.equal(calls.saveCursors - before.saveCursors, 1, '200 cursor moves, one saveCursors')
  t.equal((await lmdb.getCursor(cursorName('app')))?.seq, 200, 'the last cursor asked for is stored')
  const kept = await store.attempts('app', { limit: 1000 })
  t.equal(kept.length, 200)
  t.same(kept.slice(0, 3).map((a) => a.seq), [200, 199, 198], 'newest first')
  t.same(await store.attempts('app', { seq: 7, limit: 10 }), [record(7, 1)])
})

t.test('store: asked for while a batch commits, the next batch; cursors land in the order asked (a replay lowering it wins)', async (t) => {
  const { journal, lmdb, calls } = await countedJournal(t)
  const store = new JournalDestinationStore(journal)
  const first = store.saveCursor('app', 50)
  // The first batch is taken after this turn; these join the second one.
  await Promise.resolve()
  await Promise.resolve()
  const second = [store.saveCursor('app', 80), store.recordAttempt('app', record(80, 1), 10)]
  const third = new Promise<void>((resolve, reject) => {
    void first.then(() => store.saveCursor('app', 3).then(resolve, reject))
  })
  await Promise.all([first, ...second, third])
  t.equal((await lmdb.getCursor(cursorName('app')))?.seq, 3, 'the cursor asked for last is the one stored')
  t.ok(calls.saveCursors >= 2, `more than one batch (${calls.saveCursors} saveCursors)`)
  const fresh = new JournalDestinationStore(lmdb)
  t.equal(await fresh.cursor('app'), 3, 'and after a reopen of the store')
  t.equal(await fresh.lastAttempt('app', 80), 1)
})

t.test('store: lastAttempt counts records still waiting for their batch, so a re-sent event never reuses a number', async (t) => {
  const { journal } = await countedJournal(t)
  const store = new JournalDestinationStore(journal)
  t.equal(await store.lastAttempt('app', 5), 0)
  const a = store.recordAttempt('app', record(5, 1), 100)
  const b = store.recordAttempt('app', record(5, 2), 100)
  t.equal(await store.lastAttempt('app', 5), 2, 'queued, not yet written')
  await Promise.all([a, b])
  t.equal(await store.lastAttempt('app', 5), 2, 'written')
  t.equal(await store.lastAttempt('app', 4), 0)
  t.equal(await store.lastAttempt('app', 6), 0)
  t.equal(await store.lastAttempt('other', 5), 0, 'per destination')
  t.same((await store.attempts('app', { seq: 5, limit: 10 })).map((x) => x.attempt), [2, 1])
})

t.test('store: attempts_kept across batches drops the oldest events first, never a record of the batch being written', async (t) => {
  const { journal, lmdb } = await countedJournal(t)
  const store = new JournalDestinationStore(journal)
  const keep = 10
  // Three batches: 1..8, 9..20, then a new attempt of old seq 2 (older than everything kept).
  await Promise.all(Array.from({ length: 8 }, (_, i) => store.recordAttempt('app', record(i + 1, 1), keep)))
  await Promise.all(Array.from({ length: 12 }, (_, i) => store.recordAttempt('app', record(i + 9, 1), keep)))
  let kept = await store.attempts('app', { limit: 100 })
  t.same(kept.map((a) => a.seq), [20, 19, 18, 17, 16, 15, 14, 13, 12, 11], 'the newest ten')
  await store.recordAttempt('app', record(2, 2), keep)
  kept = await store.attempts('app', { limit: 100 })
  t.equal(kept.length, keep, 'still ten')
  t.same(kept.map((a) => a.seq), [20, 19, 18, 17, 16, 15, 14, 13, 12, 2], 'the old event’s new attempt is kept, the oldest other one dropped')
  // The queue itself matches what the store says it keeps.
  const stored = (await lmdb.jobs<AttemptRecord>('destination-attempts')).map(({ job }) => `${job.seq}/${job.attempt}`)
  t.same(stored.sort(), kept.map((a) => `${a.seq}/${a.attempt}`).sort(), 'no orphan records left in the journal')
})

/**
 * A relay whose syncs take `syncMs` (the shim): each batch of cursor writes
 * takes that long to commit, so many deliveries are answered while the
 * cursor that covers them is not yet durable. The handler SIGKILLs the relay
 * when request `killAt` arrives, before answering it.
 */
async function killMidBatch(t: Test, concurrency: number, events: number, killAt: number): Promise<{ before: number[]; after: number[]; answered: Set<number> }> {
  const dir = t.testdir()
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir, { mode: 0o700 })
  let killer: (() => void) | undefined
  const answered = new Set<number>()
  const seqs: number[] = []
  const h = await startHandler(t, (r) => {
    const seq = Number(r.headers['hookrelay-seq'])
    seqs.push(seq)
    if (killer !== undefined && seqs.length === killAt) {
      killer()
      return 'hang'
    }
    if (killer !== undefined && seqs.length > killAt) return 'hang'
    answered.add(seq)
    return { status: 200 }
  })
  const yaml = destinationConfigYaml(dataDir, `destinations:\n  app:\n    url: ${h.url}\n    concurrency: ${concurrency}\n    timeout: 1m`).replace(
    'log: { level: silent }',
    'log: { level: info }',
  )
  const file = writeConfig(dir, yaml)
  const first = await spawnRelay(file, { LD_PRELOAD: so!, SLOWSYNC_MS: '150' })
  t.teardown(() => first.child.kill('SIGKILL'))
  const killed = new Promise<void>((resolve) => {
    killer = () => {
      first.child.kill('SIGKILL')
      resolve()
    }
  })
  // All journaled while paused (a few group commits), then delivered as fast as the handler answers.
  t.equal((await api(first.base, '/v1/destinations/app/pause', OPERATOR_TOKEN, { method: 'POST' })).status, 200)
  const posted = await Promise.all(Array.from({ length: events }, (_, i) => postRunflow(first.base, `{"event":"run.completed","run_id":"b-${i}"}`)))
  t.ok(posted.every((p) => p.status === 200), 'all journaled')
  t.equal((await api(first.base, '/v1/destinations/app/resume', OPERATOR_TOKEN, { method: 'POST' })).status, 200)
  await killed
  await first.exited
  const before = seqs.splice(0)
  const answeredBefore = new Set(answered)
  killer = undefined

  const all = new Promise<void>((resolve) => {
    const check = (): void => {
      const got = new Set([...answeredBefore, ...seqs])
      if (got.size === events) resolve()
    }
    h.events.on('request', check)
  })
  const second = await spawnRelay(file)
  t.teardown(() => second.child.kill('SIGKILL'))
  await all
  second.child.kill('SIGTERM')
  await second.exited
  return { before, after: seqs, answered: answeredBefore }
}

t.test('SIGKILL between a batch of deliveries and its cursor write, concurrency 1: repeated from the durable cursor, in order, nothing skipped', needsShim, async (t) => {
  const events = 200
  const { before, after, answered } = await killMidBatch(t, 1, events, 150)
  t.same(before, Array.from({ length: 150 }, (_, i) => i + 1), 'in journal order before the kill')
  t.equal(answered.size, 149, 'the 150th was never answered')
  const start = after[0]!
  t.same(after, Array.from({ length: events - start + 1 }, (_, i) => start + i), `after the restart: in order from ${start} to the end, each once`)
  t.ok(start <= 150, 'nothing skipped: it starts at or before the unanswered one')
  t.ok(start >= 1)
  t.comment(`${150 - start} delivered events sent again (their cursor write was not durable yet)`)
})

t.test('SIGKILL between a batch of deliveries and its cursor write, concurrency 16: every event not answered before is delivered after', needsShim, async (t) => {
  const events = 200
  const { before, after, answered } = await killMidBatch(t, 16, events, 100)
  t.ok(before.length >= 100, 'the kill came with the 100th request (and any sent meanwhile)')
  const missing = Array.from({ length: events }, (_, i) => i + 1).filter((s) => !answered.has(s) && !after.includes(s))
  t.same(missing, [], 'at least once: nothing lost')
  t.equal(new Set(after).size, after.length, 'each sent once after the restart')
  const unanswered = before.filter((s) => !answered.has(s))
  t.ok(unanswered.length >= 1, `in flight at the kill: ${unanswered.join(',')}`)
  t.comment(`${after.filter((s) => answered.has(s)).length} answered events sent again`)
})
