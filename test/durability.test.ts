// Durability, end to end against the built relay in its own process:
// - no 200 before the fdatasync that made the entry durable (injected slow sync);
// - an fsync error stops all acknowledging (fail-stop), never retry-and-pretend;
// - SIGKILL mid-load, three times in a row: every acknowledged callback survives, seqs stay gapless.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import { sampleRunflowCallback, uuidv7 } from '../src/sample.js'
import { postRunflow, testConfigYaml, get } from './helpers/relay.js'
import { buildSlowSync, spawnRelay, writeConfig } from './helpers/spawn.js'

// One shim for the file, built into a temp dir that is removed at the end.
const shimDir = mkdtempSync(join(tmpdir(), 'hookrelay-shim-'))
t.teardown(() => rmSync(shimDir, { recursive: true, force: true }))
const so = buildSlowSync(shimDir)
const needsShim = { skip: so ? false : 'no C compiler (cc) on this machine to build the sync shim' }

const yaml = (dir: string): string => testConfigYaml(join(dir, 'data')).replace('level: silent', 'level: info')

t.test('the 200 leaves only after fdatasync returned (injected 200 ms sync)', needsShim, async (t) => {
  const dir = t.testdir()
  const log = join(dir, 'sync.log')
  const relay = await spawnRelay(writeConfig(dir, yaml(dir)), { LD_PRELOAD: so!, SLOWSYNC_MS: '200', SLOWSYNC_LOG: log })
  t.teardown(() => relay.child.kill('SIGKILL'))
  for (let i = 0; i < 3; i++) {
    writeFileSync(log, '')
    const sent = Date.now()
    const a = await postRunflow(relay.base, sampleRunflowCallback())
    const answered = Date.now()
    t.equal(a.status, 200)
    const syncs = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split(' ')[0]))
    t.ok(syncs.some((s) => s >= sent && s <= answered), `a sync returned between the request (${sent}) and the 200 (${answered}): ${syncs}`)
    t.ok(answered - sent >= 200, `the answer waited for the slow sync (${answered - sent} ms)`)
  }
})

t.test('an fsync I/O error is fail-stop: 503 from then on, /readyz 503, nothing acknowledged lost', needsShim, async (t) => {
  const dir = t.testdir()
  const failFile = join(dir, 'fail-now')
  const relay = await spawnRelay(writeConfig(dir, yaml(dir)), { LD_PRELOAD: so!, SLOWSYNC_FAIL_FILE: failFile })
  t.teardown(() => relay.child.kill('SIGKILL'))
  const ok = sampleRunflowCallback()
  t.equal((await postRunflow(relay.base, ok)).status, 200)
  writeFileSync(failFile, '')
  const failed = await postRunflow(relay.base, sampleRunflowCallback())
  t.equal(failed.status, 503)
  t.equal(failed.headers.get('retry-after'), '5')
  // The disk "recovers", but the relay must not pretend the failed commit happened.
  rmSync(failFile)
  const after = await postRunflow(relay.base, sampleRunflowCallback())
  t.equal(after.status, 503, 'still refusing after the error')
  t.equal(after.json.error.code, 'HOOKRELAY_JOURNAL_FAILED')
  t.equal((await get(`${relay.base}/readyz`)).status, 503)
  relay.child.kill('SIGKILL')
  await relay.exited
  const j = await LmdbJournal.open({ dir: join(dir, 'data'), mapSize: 64 * 1024 * 1024, minFree: 0 })
  t.teardown(() => j.close())
  t.equal(j.head, 1, 'only the acknowledged callback is in the journal')
  t.equal((await j.get(1))?.body.toString(), ok)
})

t.test('SIGKILL mid-load, three times: every acknowledged run_id is there, seqs gapless', async (t) => {
  const dir = t.testdir()
  const file = writeConfig(dir, yaml(dir))
  const acked = new Map<string, number>()
  for (let round = 0; round < 3; round++) {
    const relay = await spawnRelay(file)
    let stop = false
    // Killed mid-load: after a count of acknowledgements this round (a different one each round), not after a time.
    const killAt = acked.size + 60 + round * 40
    let killNow: () => void = () => {}
    const enough = new Promise<void>((r) => (killNow = r))
    const workers = Array.from({ length: 16 }, async () => {
      while (!stop) {
        const runId = uuidv7()
        try {
          const a = await postRunflow(relay.base, sampleRunflowCallback({ runId }))
          if (a.status === 200) acked.set(runId, a.json.seq)
          if (acked.size >= killAt) killNow()
        } catch {
          // The connection died with the relay: not acknowledged, so nothing is owed.
        }
      }
    })
    await enough
    relay.child.kill('SIGKILL')
    stop = true
    await Promise.all(workers)
    await relay.exited
  }
  t.ok(acked.size > 100, `${acked.size} callbacks acknowledged across three kills`)
  const j = await LmdbJournal.open({ dir: join(dir, 'data'), mapSize: 4 * 1024 ** 3, minFree: 0 })
  t.teardown(() => j.close())
  const all = await j.read(0, 1_000_000)
  t.same(
    all.map((e) => e.seq),
    Array.from({ length: all.length }, (_, i) => i + 1),
    'seqs are gapless from 1',
  )
  const keys = new Map(all.map((e) => [e.key, e.seq]))
  let missing = 0
  for (const [runId, seq] of acked) if (keys.get(runId) !== seq) missing++
  t.equal(missing, 0, 'every acknowledged callback is in the journal under the seq it was acknowledged with')
})
