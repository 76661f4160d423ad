// The data_dir lock and the cursor store, in process (the two-process case is in test/ops-datadir.test.ts).
import { spawnSync } from 'node:child_process'
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { RelayError } from '../src/errors.js'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import { lockDataDir } from '../src/journal/lock.js'

const MiB = 1024 * 1024

function locks(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('relay-') && f.endsWith('.lock'))
}

/** Start time (clock ticks since boot) of `pid`, as /proc/<pid>/stat field 22 gives it. */
function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!
}

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
}

function holderFile(dir: string, pid: number, start: string): void {
  writeFileSync(join(dir, `relay-${pid}-${start}.lock`), JSON.stringify({ pid, start, boot: bootId(), started_at: '2026-01-01T00:00:00.000Z' }))
}

t.test('a live holder refuses; a dead pid, a reused pid (other start time) and another boot are stale and removed', async (t) => {
  const dir = t.testdir()
  // The parent of this process is alive for the whole test and is not this process.
  holderFile(dir, process.ppid, startOf(process.ppid))
  t.throws(() => lockDataDir(dir), { code: 'HOOKRELAY_JOURNAL_LOCKED', message: new RegExp(`in use by another relay \\(pid ${process.ppid}, started 2026-01-01`) })
  t.same(locks(dir), [`relay-${process.ppid}-${startOf(process.ppid)}.lock`], 'the refused starter left nothing behind')

  const stale = t.testdir()
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
  holderFile(stale, Number(dead), '1')
  holderFile(stale, process.ppid, String(Number(startOf(process.ppid)) + 1))
  writeFileSync(
    join(stale, `relay-${process.ppid}-${startOf(process.ppid)}.lock`),
    JSON.stringify({ pid: process.ppid, start: startOf(process.ppid), boot: 'another-boot', started_at: 'x' }),
  )
  const release = lockDataDir(stale)
  t.same(locks(stale), [`relay-${process.pid}-${startOf(process.pid)}.lock`], 'only this process holds it now')
  release()
  t.same(locks(stale), [], 'released')
})

t.test('the CLI and the journal in one process share the lock; it goes with the last release', async (t) => {
  const dir = t.testdir()
  const cli = lockDataDir(dir)
  const j = await LmdbJournal.open({ dir, mapSize: 16 * MiB, minFree: 0 })
  t.equal(locks(dir).length, 1)
  await j.close()
  t.equal(locks(dir).length, 1, 'still held for the CLI')
  cli()
  cli()
  t.same(locks(dir), [], 'a second release of the same hold is a no-op')
  const again = await LmdbJournal.open({ dir, mapSize: 16 * MiB, minFree: 0 })
  t.equal(locks(dir).length, 1, 'reopened')
  await again.close()
  t.same(locks(dir), [])
})

t.test('Journal.open refuses a data_dir another relay holds, and opens nothing', async (t) => {
  const dir = t.testdir()
  holderFile(dir, process.ppid, startOf(process.ppid))
  const err = await LmdbJournal.open({ dir, mapSize: 16 * MiB, minFree: 0 }).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof RelayError)
  t.equal((err as RelayError).code, 'HOOKRELAY_JOURNAL_LOCKED')
  t.notOk(readdirSync(dir).includes('journal.mdb'), 'LMDB was never opened')
})

t.test('deleteCursor forgets a durable consumer and says whether it existed', async (t) => {
  const j = await LmdbJournal.open({ dir: t.testdir(), mapSize: 16 * MiB, minFree: 0 })
  t.teardown(() => j.close())
  await j.saveCursors(new Map([['app', 0], ['ops', 0]]))
  t.same((await j.listCursors()).map((c) => c.name), ['app', 'ops'])
  t.equal(await j.deleteCursor('app'), true)
  t.equal(await j.getCursor('app'), undefined)
  t.same((await j.listCursors()).map((c) => c.name), ['ops'], 'the others stay')
  t.equal(await j.deleteCursor('app'), false, 'a second delete finds nothing')
  t.equal(await j.deleteCursor('never'), false)
})

t.test('an existing journal.mdb (or its lock file) open to others is set back to 0600 at open', async (t) => {
  const dir = t.testdir()
  await (await LmdbJournal.open({ dir, mapSize: 16 * MiB, minFree: 0 })).close()
  for (const f of ['journal.mdb', 'journal.mdb-lock']) chmodSync(join(dir, f), 0o644)
  const j = await LmdbJournal.open({ dir, mapSize: 16 * MiB, minFree: 0 })
  t.teardown(() => j.close())
  for (const f of ['journal.mdb', 'journal.mdb-lock']) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f)
})
