// `hookrelay healthcheck` exit codes (the Docker HEALTHCHECK), and `hookrelay
// backup` taken from a second process while the relay runs under load, then
// restored into a working journal.
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { LmdbJournal } from '../src/journal/lmdb-journal.js'
import { callbackOfSize } from './helpers/ops.js'
import { TOKEN, get, postRunflow, startTestRelay, testConfigYaml } from './helpers/relay.js'
import { CLI, spawnRelay, writeConfig } from './helpers/spawn.js'

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('healthcheck: 0 while ready, 1 when the relay is down', async (t) => {
  const dir = t.testdir()
  const relay = await spawnRelay(writeConfig(dir, testConfigYaml(join(dir, 'data')).replace('level: silent', 'level: info')))
  t.teardown(() => {
    relay.child.kill('SIGKILL')
  })
  const byUrl = await cli(['healthcheck', '--url', `${relay.base}/readyz`])
  t.equal(byUrl.code, 0, byUrl.stderr)
  t.match(byUrl.stdout, /^200 /)
  // As the container runs it: the URL from the config's listen block (0.0.0.0 → 127.0.0.1).
  const asDocker = writeConfig(dir, testConfigYaml(join(dir, 'data')).replace('host: 127.0.0.1, port: 0', `host: 0.0.0.0, port: ${relay.port}`), 'probe.yaml')
  t.equal((await cli(['healthcheck', '--config', asDocker])).code, 0)

  relay.child.kill('SIGTERM')
  t.same(await relay.exited, { code: 0, signal: null })
  const down = await cli(['healthcheck', '--url', `${relay.base}/readyz`])
  t.equal(down.code, 1)
  t.match(down.stderr, /readyz/)
  t.equal((await cli(['healthcheck', '--config', asDocker])).code, 1)
})

t.test('backup while the relay runs under load; the copy restores into a working journal', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const config = writeConfig(dir, testConfigYaml(data).replace('level: silent', 'level: info'))
  const relay = await spawnRelay(config)
  t.teardown(() => {
    relay.child.kill('SIGKILL')
  })
  const first = callbackOfSize(800)
  t.equal((await postRunflow(relay.base, first)).status, 200)
  for (let i = 0; i < 30; i++) t.equal((await postRunflow(relay.base, callbackOfSize(800))).status, 200)

  // Commits go on while the copy is taken.
  let loading = true
  let acked = 0
  const load = (async () => {
    while (loading) if ((await postRunflow(relay.base, callbackOfSize(800))).status === 200) acked++
  })()
  const dest = join(dir, 'backup')
  const b = await cli(['backup', '--config', config, dest])
  loading = false
  await load
  t.equal(b.code, 0, b.stderr)
  const m = /journal epoch (\w+), head (\d+)/.exec(b.stdout)
  t.ok(m, b.stdout)
  const head = Number(m![2])
  t.ok(head >= 31 && head <= 31 + acked, `the copy holds a committed prefix (head ${head})`)
  t.equal(statSync(join(dest, 'journal.mdb')).mode & 0o777, 0o600, 'as private as the journal')

  const again = await cli(['backup', '--data-dir', data, dest])
  t.equal(again.code, 1, 'an existing copy is not overwritten')
  t.match(again.stderr, /use an empty destination directory/)

  relay.child.kill('SIGTERM')
  t.same(await relay.exited, { code: 0, signal: null })

  // Restore: journal.mdb into an empty data_dir (no lock file), start a relay on it.
  const target = join(dir, 'restored')
  mkdirSync(target)
  copyFileSync(join(dest, 'journal.mdb'), join(target, 'journal.mdb'))
  t.notOk(existsSync(join(target, 'journal.mdb-lock')))
  const { relay: r2, base } = await startTestRelay(t, { dir: target })
  t.equal(r2.journal.epoch, m![1], 'same epoch: subscribers keep their cursors')
  t.equal(r2.journal.head, head)
  t.equal((await r2.journal.read(0, 1000)).length, head, 'every entry, gapless')
  const runId = JSON.parse(first).run_id as string
  t.match((await get(`${base}/v1/runs/runflow/${runId}`, TOKEN)).json, { id: runId, seq: 1, status: 'succeeded' })
  t.equal((await postRunflow(base, first)).json.duplicate, true, 'dedupe state came along')
  t.equal((await postRunflow(base, callbackOfSize(800))).json.seq, head + 1, 'and it takes new callbacks')
})

t.test('Journal.backup in process: the copy opens as a journal with the same entries', async (t) => {
  const { relay, base, dir } = await startTestRelay(t)
  for (let i = 0; i < 3; i++) t.equal((await postRunflow(base, callbackOfSize(500))).status, 200)
  const dest = join(dir, 'copy')
  mkdirSync(dest)
  const file = await relay.journal.backup(dest)
  t.equal(file, join(dest, 'journal.mdb'))
  const { relay: copy } = await startTestRelay(t, { dir: dest })
  t.equal(copy.journal.epoch, relay.journal.epoch)
  t.same(
    (await copy.journal.read(0, 10)).map((e) => e.seq),
    [1, 2, 3],
  )
})

t.test('backup: a destination under /proc or below a file is refused at once, never a spinning mkdir; missing levels are created', async (t) => {
  const dir = t.testdir({ 'a-file': 'x' })
  const data = join(dir, 'data')
  await (await LmdbJournal.open({ dir: data, mapSize: 16 * 1024 * 1024, minFree: 0 })).close()
  for (const [dest, why] of [
    ['/proc/self/nope/deeper', /procfs/],
    [join(dir, 'a-file', 'backup'), /ENOTDIR/],
  ] as const) {
    const r = await cli(['backup', '--data-dir', data, dest])
    t.equal(r.code, 1, dest)
    t.match(r.stderr, why)
    t.match(r.stderr, /DEST_DIR/)
  }
  const nested = join(dir, 'backups', 'hookrelay', '2026-12-04')
  const ok = await cli(['backup', '--data-dir', data, nested])
  t.equal(ok.code, 0, ok.stderr)
  t.ok(existsSync(join(nested, 'journal.mdb')), 'missing levels are created, as in the README example')
})
