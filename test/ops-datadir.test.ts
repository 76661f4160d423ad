// data_dir as an operator meets it through dist/cli.js: checked before use (exit 78, positioned, never a
// spin), created owner-only whatever the umask, and held by one relay at a time.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { testConfigYaml } from './helpers/relay.js'
import { CLI, spawnRelay, writeConfig } from './helpers/spawn.js'

/** Runs the CLI; a generous kill timeout turns a spin into a failure instead of a hung suite. */
function cli(args: string[], opts: { umask?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, argv] =
    opts.umask === undefined ? [process.execPath, [CLI, ...args]] : ['/bin/sh', ['-c', `umask ${opts.umask}; exec "$0" "$@"`, process.execPath, CLI, ...args]]
  return new Promise((resolve) => {
    execFile(cmd, argv as string[], { timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })
    })
  })
}

function mode(p: string): string {
  return (statSync(p).mode & 0o777).toString(8).padStart(4, '0')
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** A config whose data_dir is `dataDir`, written on line 3 (testConfigYaml's layout). */
function configWith(dir: string, dataDir: string, name = 'hookrelay.yaml'): string {
  return writeConfig(dir, testConfigYaml(dataDir).replace('level: silent', 'level: info'), name)
}

t.test('check-config and serve: an unusable data_dir is exit 78 at data_dir\'s position, never 1, never a spin', async (t) => {
  const dir = t.testdir({ 'a-file': 'x' })
  const cases: Array<[string, string, RegExp]> = [
    ['a regular file', join(dir, 'a-file'), /is a regular file/],
    ['a missing parent', join(dir, 'missing', 'data'), /neither does its parent/],
    ['under /proc', '/proc/self/nope', /procfs/],
  ]
  // A read-only filesystem: the one read-only directory that refuses root too.
  const ro = mkdtempSync(join(tmpdir(), 'hookrelay-ro-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { stdio: 'pipe' })
    t.teardown(() => {
      execFileSync('umount', ['-l', ro])
      rmSync(ro, { recursive: true, force: true })
    })
    cases.push(['a read-only directory', ro, /not writable \(EROFS\)/], ['missing, in a read-only directory', join(ro, 'data'), /cannot be created/])
  } catch {
    rmSync(ro, { recursive: true, force: true })
    t.comment('cannot mount a read-only tmpfs here: the read-only cases are not run')
  }
  for (const [what, dataDir, why] of cases) {
    const file = configWith(dir, dataDir)
    for (const cmd of ['check-config', 'serve']) {
      const r = await cli([cmd, '--config', file])
      t.equal(r.code, 78, `${cmd}, ${what}: exit 78 (${r.stderr.trim()})`)
      t.match(r.stderr, new RegExp(`^${esc(file)}:3:11: data_dir: .*${why.source}`, 'm'), `${cmd}, ${what}: positioned, says why`)
    }
  }
})

t.test('check-config: a config with no source is refused with a position', async (t) => {
  const dir = t.testdir()
  for (const text of ['', `data_dir: ${join(dir, 'data')}\n`, 'sources:\n']) {
    const file = writeConfig(dir, text)
    const r = await cli(['check-config', '--config', file])
    t.equal(r.code, 78, JSON.stringify(text))
    t.match(r.stderr, new RegExp(`^${esc(file)}:1:1: sources: no source is configured`, 'm'))
  }
})

t.test('umask 000: data_dir 0700, journal, its lock, the relay lock and generated secrets 0600', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  // No secrets configured, so the first start generates them.
  const file = writeConfig(dir, `listen: { host: 127.0.0.1, port: 0 }\ndata_dir: ${data}\nsources:\n  runflow: { verify: { scheme: runflow } }\n`)
  const child = execFile('/bin/sh', ['-c', `umask 000; exec "$0" "$@"`, process.execPath, CLI, 'serve', '--config', file])
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('"hookrelay listening"')) resolve()
    })
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)))
  })
  t.equal(mode(data), '0700', 'data_dir')
  const files = readdirSync(data)
  for (const f of ['journal.mdb', 'journal.mdb-lock', 'generated-secrets.json']) t.equal(mode(join(data, f)), '0600', f)
  const lock = files.find((f) => /^relay-\d+-\d+\.lock$/.test(f))
  t.ok(lock, `a relay lock file among ${files.join(', ')}`)
  if (lock !== undefined) t.equal(mode(join(data, lock)), '0600', 'relay lock')
  child.kill('SIGTERM')
  await new Promise((r) => child.on('exit', r))
})

t.test('an existing data_dir open to other users: a warning at start', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  mkdirSync(data)
  chmodSync(data, 0o755)
  const relay = await spawnRelay(configWith(dir, data), {}, 30_000)
  t.teardown(() => {
    relay.child.kill('SIGKILL')
  })
  const warning = relay.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => /mode 0755/.test(l.msg))
  t.ok(warning, 'a log line names the mode')
  t.equal(warning?.level, 40, 'at warn level')
  t.match(warning?.msg, /chmod 700/)
  t.equal(mode(data), '0755', 'the operator\'s mode is left as it is')
})

t.test('a second relay on the same data_dir (another port) is refused; a SIGKILLed one does not block the restart', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const first = await spawnRelay(configWith(dir, data, 'one.yaml'), {}, 30_000)
  t.teardown(() => {
    first.child.kill('SIGKILL')
  })
  const second = await cli(['serve', '--config', configWith(dir, data, 'two.yaml')])
  t.equal(second.code, 1, 'exit 1, like the other start failures (a supervisor may retry once the other stops)')
  t.match(second.stderr, new RegExp(`HOOKRELAY_JOURNAL_LOCKED: data_dir ${esc(data)} is in use by another relay \\(pid ${first.child.pid},`))
  t.notMatch(second.stdout, /hookrelay listening/)

  first.child.kill('SIGKILL')
  await first.exited
  t.ok(readdirSync(data).some((f) => f.endsWith('.lock') && f.startsWith('relay-')), 'the killed relay left its lock file')
  const restarted = await spawnRelay(configWith(dir, data, 'one.yaml'), {}, 30_000)
  t.teardown(() => {
    restarted.child.kill('SIGKILL')
  })
  t.pass('restarted over the stale lock')
  restarted.child.kill('SIGTERM')
  t.same(await restarted.exited, { code: 0, signal: null })
  t.same(
    readdirSync(data).filter((f) => f.endsWith('.lock') && f.startsWith('relay-')),
    [],
    'a clean stop leaves no lock file, and the stale one was removed',
  )
})
