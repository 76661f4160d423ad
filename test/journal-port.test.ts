// One contract suite for every JournalPort: the LMDB journal, and the
// in-memory one unit tests build parts on (test/helpers/memory-journal.ts).
import { hash } from 'node:crypto'
import t, { type Test } from 'tap'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import type { IngestInput, JournalPort } from '../src/journal/port.js'
import { MemoryJournal } from './helpers/memory-journal.js'

type Open = (t: Test) => Promise<JournalPort>

const backends: Array<[string, Open]> = [
  ['LmdbJournal', async (t) => LmdbJournal.open({ dir: t.testdir(), mapSize: 64 * 1024 * 1024, minFree: 0 })],
  ['MemoryJournal', async () => new MemoryJournal()],
]

function callback(key: string, body: string, source = 'runflow'): IngestInput {
  const b = Buffer.from(body)
  return {
    source,
    event: 'run.completed',
    key,
    status: 'succeeded',
    body: b,
    sha256: hash('sha256', b, 'hex'),
    receivedAt: Date.now(),
    requestId: undefined,
    json: JSON.parse(body),
  }
}

function internal(key: string, event: string, updateRow?: Parameters<JournalPort['appendInternal']>[0]['updateRow']) {
  const body = { event, run_id: key }
  return { source: 'runflow', event, key, body: Buffer.from(JSON.stringify(body)), receivedAt: Date.now(), json: body, ...(updateRow ? { updateRow } : {}) }
}

for (const [name, open] of backends) {
  t.test(name, async (t) => {
    t.test('seqs are gapless, revisions count per key, a retry of any kept revision is a duplicate', async (t) => {
      const j = await open(t)
      t.teardown(() => j.close())
      t.equal(j.head, 0)
      t.equal(j.earliest, 1, 'empty: earliest is head + 1')
      const [a, b, c] = await Promise.all([
        j.append(callback('r1', '{"n":1}')),
        j.append(callback('r2', '{"n":1}')),
        j.append(callback('r1', '{"n":2}')),
      ])
      t.same([a, b, c], [
        { seq: 1, revision: 1, duplicate: false },
        { seq: 2, revision: 1, duplicate: false },
        { seq: 3, revision: 2, duplicate: false },
      ])
      t.same(await j.append(callback('r1', '{"n":1}')), { seq: 1, revision: 1, duplicate: true }, 'the first revision again')
      const [d, e] = await Promise.all([j.append(callback('r3', '{"x":1}')), j.append(callback('r3', '{"x":1}'))])
      t.same([d, e], [
        { seq: 4, revision: 1, duplicate: false },
        { seq: 4, revision: 1, duplicate: true },
      ], 'two copies in one batch: one entry')
      t.equal(j.head, 4)
      t.same((await j.read(0, 10)).map((x) => [x.seq, x.key, x.revision]), [
        [1, 'r1', 1],
        [2, 'r2', 1],
        [3, 'r1', 2],
        [4, 'r3', 1],
      ])
      t.same((await j.read(1, 2)).map((x) => x.seq), [2, 3], 'after and limit')
      t.same(await j.read(4, 10), [], 'nothing after the head')
      const got = await j.get(3)
      t.equal(got?.body.toString(), '{"n":2}', 'byte-exact body')
      t.equal(got?.private.sha256, hash('sha256', '{"n":2}', 'hex'))
      t.match(got?.fragment.toString(), /^"source":"runflow","event":"run.completed","key":"r1","revision":2,/)
      t.equal(await j.get(99), undefined)
      const row = await j.getRun('runflow', 'r1')
      t.match(row, { source: 'runflow', id: 'r1', seq: 3, revision: 2, status: 'succeeded', parts: {} })
      t.equal(row?.revisions.length, 2)
      t.equal(await j.getRun('runflow', 'nope'), undefined)
    })

    t.test('onCommit runs after the commit, with the new head, once per batch', async (t) => {
      const j = await open(t)
      t.teardown(() => j.close())
      const heads: number[] = []
      const stop = j.onCommit((h) => {
        heads.push(h)
        t.equal(j.head, h, 'the head has moved when listeners run')
      })
      await Promise.all([j.append(callback('a', '{}')), j.append(callback('b', '{}'))])
      t.same(heads, [2])
      stop()
      await j.append(callback('c', '{}'))
      t.same(heads, [2], 'removed')
    })

    t.test('internal entries are never deduplicated and change the row in their transaction', async (t) => {
      const j = await open(t)
      t.teardown(() => j.close())
      await j.append(callback('r1', '{"n":1}'))
      const s1 = await j.appendInternal(internal('r1', 'x.done', (row) => void (row.parts.x = { done: 1 })))
      const s2 = await j.appendInternal(internal('r1', 'x.done'))
      t.same([s1, s2], [2, 3])
      const row = await j.getRun('runflow', 'r1')
      t.match(row, { seq: 1, revision: 1, parts: { x: { done: 1 } } }, 'the callback fields stay; the part is stored')
      await j.append(callback('r1', '{"n":2}'))
      t.same((await j.getRun('runflow', 'r1'))?.parts, { x: { done: 1 } }, 'a new revision keeps the parts')
      await j.appendInternal(internal('ghost', 'x.done'))
      t.match(await j.getRun('runflow', 'ghost'), { revision: 0 }, 'a placeholder row for a run not seen yet')
      const rowCopy = (await j.getRun('runflow', 'r1'))!
      ;(rowCopy.parts.x as { done: number }).done = 99
      t.same((await j.getRun('runflow', 'r1'))?.parts, { x: { done: 1 } }, 'a row read is the caller’s copy')
    })

    t.test('a hook writes jobs with its entry; a hook that throws fails that entry alone', async (t) => {
      const j = await open(t)
      t.teardown(() => j.close())
      j.openQueue('work')
      j.addAppendHook((ctx) => {
        if (ctx.internal) return
        const json = ctx.json as { job?: number; boom?: boolean }
        if (json.boom) throw new Error('hook refused')
        if (json.job === undefined) return
        ctx.row.parts.q = { jobs: json.job }
        return { enqueue: [{ queue: 'work', key: [json.job, ctx.key], job: { seq: ctx.seq, n: json.job } }] }
      })
      const results = await Promise.allSettled([
        j.append(callback('a', '{"job":30}')),
        j.append(callback('b', '{"boom":true}')),
        j.append(callback('c', '{"job":10}')),
        j.append(callback('d', '{}')),
      ])
      t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
      t.match((results[1] as PromiseRejectedResult).reason, { code: 'HOOKRELAY_JOURNAL_ENTRY_REJECTED' })
      t.same((await j.read(0, 10)).map((e) => [e.seq, e.key]), [[1, 'a'], [2, 'c'], [3, 'd']], 'gapless without the failed entry')
      t.equal(await j.getRun('runflow', 'b'), undefined, 'no row for it')
      t.same((await j.getRun('runflow', 'a'))?.parts, { q: { jobs: 30 } })
      t.same(await j.jobs('work'), [
        { key: [10, 'c'], job: { seq: 2, n: 10 } },
        { key: [30, 'a'], job: { seq: 1, n: 30 } },
      ], 'in key order')
      t.same(await j.getJob('work', [30, 'a']), { seq: 1, n: 30 })
      t.equal(await j.getJob('work', [30, 'zz']), undefined)

      t.same(await j.claim('work', { limit: 1 }), [{ key: [10, 'c'], job: { seq: 2, n: 10 } }], 'earliest key first')
      t.same(
        (await j.claim<{ n: number }>('work', { limit: 5, accept: (job) => job.n !== 10 })).map((x) => x.key),
        [[30, 'a']],
        'passes over what it does not accept',
      )
      t.same(await j.claim('work', { limit: 0 }), [])

      await j.changeJobs((view) => {
        const cur = view.getJob<{ seq: number; n: number }>('work', [30, 'a'])!
        return { enqueue: [{ queue: 'work', key: [30, 'a'], job: { ...cur, noted: true } }] }
      })
      t.same(await j.getJob('work', [30, 'a']), { seq: 1, n: 30, noted: true }, 'changed without an entry')
      t.equal(j.head, 3)

      const seq = await j.complete('work', [10, 'c'], internal('c', 'work.completed', (row, view) => {
        t.equal(view.getJob('work', [10, 'c']), undefined, 'the job is gone inside the transaction')
        row.parts.q = { jobs: 0 }
        return { remove: [{ queue: 'work', key: [30, 'a'] }] }
      }))
      t.equal(seq, 4)
      t.same(await j.jobs('work'), [], 'the completed job and the one updateRow removed')
      t.same((await j.getRun('runflow', 'c'))?.parts, { q: { jobs: 0 } })
      t.equal((await j.get(4))?.event, 'work.completed')
    })

    t.test('a job queue is written only once opened', async (t) => {
      const j = await open(t)
      t.teardown(() => j.close())
      j.addAppendHook((ctx) => (ctx.internal ? undefined : { enqueue: [{ queue: 'late', key: [ctx.seq], job: {} }] }))
      await t.rejects(j.append(callback('a', '{}')), { code: 'HOOKRELAY_JOURNAL_ENTRY_REJECTED' }, 'the entry fails alone')
      await t.rejects(j.changeJobs(() => ({ enqueue: [{ queue: 'late', key: [0], job: {} }] })))
      j.openQueue('late')
      t.same(await j.append(callback('a', '{}')), { seq: 1, revision: 1, duplicate: false })
      t.same(await j.jobs('late'), [{ key: [1], job: {} }])
    })

    t.test('cursors: save, read, list, delete', async (t) => {
      const j = await open(t)
      t.teardown(() => j.close())
      await j.saveCursors(new Map([['b', 2], ['a', 5]]))
      t.same(await j.getCursor('a'), { seq: 5, epoch: j.epoch })
      t.same(await j.listCursors(), [{ name: 'a', seq: 5 }, { name: 'b', seq: 2 }])
      await j.saveCursors(new Map([['a', 7]]))
      t.equal((await j.getCursor('a'))?.seq, 7)
      t.equal(await j.deleteCursor('a'), true)
      t.equal(await j.deleteCursor('a'), false)
      t.equal(await j.getCursor('a'), undefined)
      t.same(await j.listCursors(), [{ name: 'b', seq: 2 }])
    })

    t.test('close: idle, then appends are refused as closing', async (t) => {
      const j = await open(t)
      const p = j.append(callback('a', '{}'))
      await j.close()
      t.same(await p, { seq: 1, revision: 1, duplicate: false }, 'what was queued commits before close resolves')
      t.match(j.refusal(), { code: 'HOOKRELAY_JOURNAL_CLOSING' })
      await t.rejects(j.append(callback('b', '{}')), { code: 'HOOKRELAY_JOURNAL_CLOSING' })
      t.equal(j.ready, false)
    })
  })
}

t.test('LmdbJournal reads run rows the previous version stored (the mirror state under `mirror`) as parts', async (t) => {
  const dir = t.testdir()
  const j = await LmdbJournal.open({ dir, mapSize: 64 * 1024 * 1024, minFree: 0 })
  await j.append(callback('r1', '{"n":1}'))
  const current = (await j.getRun('runflow', 'r1'))!
  await j.close()
  // The row as the previous version wrote it, straight into the same environment.
  const { open } = await import('lmdb')
  const env = open({ path: `${dir}/journal.mdb`, maxDbs: 12 })
  const { parts: _parts, ...rest } = current
  const mirror = { state: 'completed', objects: [{ index: 0, url: 'https://files.example/a', state: 'completed', bucket: 'b', key: 'k' }] }
  await env.openDB('runs', {}).put(['runflow', 'r1'], { ...rest, mirror })
  await env.close()
  const again = await LmdbJournal.open({ dir, mapSize: 64 * 1024 * 1024, minFree: 0 })
  t.teardown(() => again.close())
  const row = await again.getRun('runflow', 'r1')
  t.same(row?.parts, { mirror }, 'the stored mirror state is the mirror part')
  t.notOk(row && 'mirror' in row, 'no field of the old shape left')
  await again.append(callback('r1', '{"n":2}'))
  t.same((await again.getRun('runflow', 'r1'))?.parts, { mirror }, 'kept by the next revision, stored in the new shape')
  t.same(await again.append(callback('r1', '{"n":1}')), { seq: 1, revision: 1, duplicate: true }, 'its revisions still deduplicate')
})
