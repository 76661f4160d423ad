import { execFileSync } from 'node:child_process'
import { hash } from 'node:crypto'
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { RelayError } from '../src/errors.js'
import { minFreeWarning } from '../src/journal/data-dir.js'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import { callbackOfSize } from './helpers/ops.js'
import { get, postRunflow, startTestRelay, type Answer } from './helpers/relay.js'

const MiB = 1024 * 1024

/** Why a tmpfs cannot be mounted here (the tests need a real small filesystem), or false. */
function cannotMount(): string | false {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-mount-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' })
    execFileSync('umount', [dir])
    return false
  } catch (e) {
    return `cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Mounts a tmpfs of `size` on a fresh directory, unmounted at teardown. */
function smallDisk(tt: Test, size: string): string {
  // Outside t.testdir(): tap removes that before later teardowns could unmount.
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-disk-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' })
  tt.teardown(() => {
    execFileSync('umount', ['-l', dir])
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

const skip = cannotMount()

function entry(i: number, body: Buffer) {
  return {
    source: 'runflow',
    event: 'run.completed',
    key: `run-${i}`,
    status: 'succeeded',
    body,
    sha256: hash('sha256', body, 'hex'),
    receivedAt: Date.now(),
    requestId: undefined,
    json: {},
  }
}

t.test('min_free: commits between disk readings count, so DISK_FULL comes before ENOSPC, and ingest resumes once space is freed', { skip: skip }, async (t) => {
  const disk = smallDisk(t, '40m')
  const dir = join(disk, 'data')
  const minFree = 8 * MiB
  // ~16 MiB free at open: the journal's own writes reach ENOSPC well within the second before it reads the disk again.
  const filler = join(disk, 'filler')
  writeFileSync(filler, Buffer.alloc(24 * MiB, 1))
  const j = await LmdbJournal.open({ dir, mapSize: 64 * MiB, minFree })
  t.teardown(() => j.close())
  const body = Buffer.alloc(MiB, 'x')
  let refused: RelayError | undefined
  let acked = 0
  // 40 entries of 1 MiB is more than the disk holds: the loop ends on a refusal or an error, never by count.
  for (let i = 0; i < 40 && refused === undefined; i += 4) {
    const results = await Promise.allSettled([0, 1, 2, 3].map((k) => j.append(entry(i + k, body))))
    for (const r of results) {
      if (r.status === 'fulfilled') acked++
      else refused ??= r.reason as RelayError
    }
  }
  t.ok(refused, `refused after ${acked} MiB`)
  t.equal(refused?.code, 'HOOKRELAY_JOURNAL_DISK_FULL', 'refused for disk space, not by a failed commit')
  t.equal(j.failed, undefined, 'the journal did not go fail-stop')
  const s = statfsSync(disk)
  t.ok(s.bavail * s.bsize > 0, 'the disk never filled')

  rmSync(filler)
  // The next disk reading (once a second) gives the space back; polled, bounded in count.
  let polls = 0
  while (j.refusal(MiB) !== undefined && j.failed === undefined && polls++ < 600) await new Promise((r) => setTimeout(r, 100))
  t.equal(j.refusal(MiB), undefined, 'ready again without a restart')
  const again = await j.append(entry(1000, body))
  t.equal(again.duplicate, false, 'a new entry is journaled after space was freed')
})

t.test('over HTTP at full speed: 503 DISK_FULL with Retry-After before the disk fills, and recovers', { skip: skip }, async (t) => {
  const disk = smallDisk(t, '40m')
  const minFree = 8 * MiB
  // ~3 MiB above min_free when the relay first reads the disk.
  const s0 = statfsSync(disk)
  const filler = join(disk, 'filler')
  writeFileSync(filler, Buffer.alloc(s0.bavail * s0.bsize - minFree - 3 * MiB, 1))
  const { relay, base } = await startTestRelay(t, {
    dir: join(disk, 'data'),
    extra: `journal: { map_size: 64mb, min_free: ${minFree}, retention: { max_bytes: 32mb } }`,
  })
  let full: Answer | undefined
  let sent = 0
  const other: number[] = []
  // 16 posters of ~60 KiB; 400 callbacks (24 MiB) is far more than the disk holds, so the count never ends the loop first.
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (full === undefined && sent < 400) {
        sent++
        const a = await postRunflow(base, callbackOfSize(60 * 1024))
        if (a.status === 503 && a.json.error?.code === 'HOOKRELAY_JOURNAL_DISK_FULL') full ??= a
        else if (a.status !== 200) other.push(a.status)
      }
    }),
  )
  t.ok(full, `503 DISK_FULL after ${sent} posts`)
  t.equal(full?.headers.get('retry-after'), '5')
  t.same(other, [], 'nothing but 200 and DISK_FULL')
  t.equal(relay.journal.failed, undefined, 'not fail-stop')
  rmSync(filler)
  let polls = 0
  while (relay.journal.failed === undefined && (await get(`${base}/readyz`)).status !== 200 && polls++ < 600) await new Promise((r) => setTimeout(r, 100))
  t.equal((await get(`${base}/readyz`)).status, 200, 'ready again without a restart')
  t.equal((await postRunflow(base, callbackOfSize(60 * 1024))).status, 200)
})

t.test('minFreeWarning: a min_free the disk can never satisfy is named; one it can is not', { skip: skip }, async (t) => {
  const disk = smallDisk(t, '40m')
  t.match(minFreeWarning(disk, 64 * MiB), /journal\.min_free \(67108864 bytes\) is not below the size of the disk holding .* \(41943040 bytes\)/)
  t.match(minFreeWarning(disk, 40 * MiB), /lower journal\.min_free/, 'equal to the disk is never satisfiable either')
  t.equal(minFreeWarning(disk, 8 * MiB), undefined)
  t.equal(minFreeWarning(join(disk, 'missing'), 64 * MiB), undefined, 'nothing to say about a path that is not there (data_dir checks report it)')
})
