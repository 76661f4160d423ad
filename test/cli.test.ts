// The command line as an operator meets it: the built dist/cli.js in its own process.
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { CLI, spawnRelay, writeConfig } from './helpers/spawn.js'
import { TOKEN, testConfigYaml, get } from './helpers/relay.js'

const run = promisify(execFile)
const DEFAULT_CONFIG = join(import.meta.dirname, '..', 'config', 'hookrelay.yaml')

async function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: 20000 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

t.test('check-config: the default config is valid with nothing set', async (t) => {
  const r = await cli(['check-config', '--config', DEFAULT_CONFIG], { env: { RUNFLOW_WEBHOOK_SECRET: '', HOOKRELAY_TOKEN: '' } })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /ok/)
})

t.test('check-config: exit 78 and every problem as file:line:col: path: message', async (t) => {
  const dir = t.testdir()
  const file = writeConfig(
    dir,
    `listen: { host: 127.0.0.1, port: 99999 }
sources:
  runflow:
    verify: { scheme: runflow, secrets: ["\${NOT_SET_ANYWHERE}"] }
    max_bod: 5mb
`,
  )
  const r = await cli(['check-config', '--config', file], { env: { NOT_SET_ANYWHERE: undefined } })
  t.equal(r.code, 78)
  const lines = r.stderr.trim().split('\n')
  t.ok(lines.length >= 3, 'all problems reported at once')
  t.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1:\\d+: listen\\.port: `))
  t.match(r.stderr, /:4:\d+: sources\.runflow\.verify\.secrets(\[0\])?: .*NOT_SET_ANYWHERE/)
  t.match(r.stderr, /:5:5: sources\.runflow\.max_bod: unknown key/)
})

t.test('check-config: a missing file exits 78', async (t) => {
  const r = await cli(['check-config', '--config', '/nonexistent/hookrelay.yaml'])
  t.equal(r.code, 78)
  t.match(r.stderr, /nonexistent/)
})

t.test('unknown command: exit 64 with usage; --help for each command', async (t) => {
  const r = await cli(['frobnicate'])
  t.equal(r.code, 64)
  t.match(r.stderr, /unknown command/)
  for (const cmd of ['serve', 'check-config', 'send', 'tail', 'keygen', 'healthcheck']) {
    const h = await cli([cmd, '--help'])
    t.equal(h.code, 0, `${cmd} --help`)
    t.match(h.stdout, new RegExp(`Usage: hookrelay ${cmd}`))
  }
})

t.test('keygen: a secret, and an ed25519 pair', async (t) => {
  const s = await cli(['keygen'])
  t.match(s.stdout.trim(), /^whsec_[A-Za-z0-9+/]{32}$/)
  const p = await cli(['keygen', '--ed25519'])
  t.match(p.stdout, /secret_key: whsk_[A-Za-z0-9+/=]+\n/)
  t.match(p.stdout, /public_key: whpk_[A-Za-z0-9+/=]{44}\n/)
})

t.test('first start with the default config: generated secret and token (0600), send and read work', async (t) => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'config'))
  // The default config as shipped, on a free port, in a scratch working directory.
  const yaml = readFileSync(DEFAULT_CONFIG, 'utf8').replace('port: 8080', 'port: 0')
  writeFileSync(join(dir, 'config', 'hookrelay.yaml'), yaml)
  const env = { RUNFLOW_WEBHOOK_SECRET: '', HOOKRELAY_TOKEN: '' }
  const relay = await spawnRelay(join(dir, 'config', 'hookrelay.yaml'), { ...env }, 15000, dir)
  t.teardown(() => relay.child.kill('SIGKILL'))
  const secrets = join(dir, 'data', 'generated-secrets.json')
  t.equal(statSync(secrets).mode & 0o777, 0o600, 'generated secrets are mode 0600')
  const stored = JSON.parse(readFileSync(secrets, 'utf8'))
  const logged = relay.lines.join('\n')
  t.match(logged, /generated-secrets\.json/, 'the log says where')
  t.notMatch(logged, stored.sources.runflow, 'the log never shows the secret')
  t.notMatch(logged, stored.subscribers.app, 'the log never shows the token')

  // `send` finds the generated secret; the port comes from the config, so point --url at the live one.
  const sent = await cli(['send', '--config', 'config/hookrelay.yaml', '--url', `${relay.base}/webhook/runflow`], { cwd: dir, env })
  t.equal(sent.code, 0, sent.stderr)
  t.match(sent.stdout, /^200 \{"ok":true,"seq":1,"revision":1\}/)
  const runId = (await get(`${relay.base}/v1/events?after=0`, stored.subscribers.app)).json.events[0].key
  const row = await get(`${relay.base}/v1/runs/runflow/${runId}`, stored.subscribers.app)
  t.equal(row.json.status, 'succeeded')

  // healthcheck against the live relay, then against nothing.
  t.equal((await cli(['healthcheck', '--url', `${relay.base}/readyz`])).code, 0)
  relay.child.kill('SIGKILL')
  await relay.exited
  t.equal((await cli(['healthcheck', '--url', `${relay.base}/readyz`])).code, 1)
})

t.test('send with a file and a wrong secret: prints the 401 and exits 1', async (t) => {
  const dir = t.testdir()
  const relay = await spawnRelay(writeConfig(dir, testConfigYaml(join(dir, 'data')).replace('level: silent', 'level: info')))
  t.teardown(() => relay.child.kill('SIGKILL'))
  const body = join(dir, 'cb.json')
  writeFileSync(body, JSON.stringify({ event: 'run.failed', run_id: 'r-1', status: 'failed', output: null }))
  const other = writeConfig(dir, testConfigYaml(join(dir, 'data2')).replace('whsec_hookrelay_test_secret_0123456789', 'whsec_wrong_one'), 'wrong.yaml')
  const bad = await cli(['send', '--config', other, '--url', `${relay.base}/webhook/runflow`, body])
  t.equal(bad.code, 1)
  t.match(bad.stdout, /^401 /)
  const cfg = join(dir, 'hookrelay.yaml')
  const good = await cli(['send', '--config', cfg, '--url', `${relay.base}/webhook/runflow`, body])
  t.equal(good.code, 0, good.stderr)
  t.match(good.stdout, /^200 /)
})

t.test('serve: no uWebSockets.js binary for this platform: one clear line, no fallback server', async (t) => {
  const dir = t.testdir()
  const file = writeConfig(dir, testConfigYaml(join(dir, 'data')))
  const fake = join(import.meta.dirname, 'fixtures', 'fake-arch.cjs')
  const r = await run(process.execPath, ['-r', fake, CLI, 'serve', '--config', file], { timeout: 20000 }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  )
  t.equal(r.code, 1)
  t.match(r.stderr, /HOOKRELAY_UWS_NATIVE: uWebSockets\.js has no working native binary for Node v20\.\d+\.\d+ on linux-mips/)
  t.match(r.stderr, /install Node 20/)
  t.notMatch(r.stderr, /Falling back/, 'never the package\'s pure-JS server')
})

t.test('serve: an unusable data_dir fails at start with a clear message', async (t) => {
  const dir = t.testdir({ 'not-a-dir': 'x' })
  const file = writeConfig(dir, testConfigYaml(join(dir, 'not-a-dir', 'data')))
  const r = await cli(['serve', '--config', file])
  t.equal(r.code, 78, 'a config error: a supervisor must not restart into it')
  t.match(r.stderr, /:3:11: data_dir: .*not-a-dir/)
})

t.test('serve: SIGTERM drains and exits 0; the journal reopens with everything acknowledged', async (t) => {
  const dir = t.testdir()
  const file = writeConfig(dir, testConfigYaml(join(dir, 'data')).replace('level: silent', 'level: info'))
  const relay = await spawnRelay(file)
  const { postRunflow } = await import('./helpers/relay.js')
  const { sampleRunflowCallback } = await import('../src/sample.js')
  const bodies = Array.from({ length: 20 }, () => sampleRunflowCallback())
  let firstAck: () => void = () => {}
  const acknowledged = new Promise<void>((r) => (firstAck = r))
  const inflight = bodies.map((b) =>
    postRunflow(relay.base, b).then(
      (a) => (a.status === 200 && firstAck(), a),
      () => undefined,
    ),
  )
  // SIGTERM once the relay is acknowledging, while the rest are in flight.
  await acknowledged
  relay.child.kill('SIGTERM')
  const answers = await Promise.all(inflight)
  const { code, signal } = await relay.exited
  t.equal(code, 0, `exit code 0 (signal ${signal})`)
  t.match(relay.lines.join('\n'), /hookrelay stopped/)
  const acked = answers.flatMap((a) => (a?.status === 200 ? [a.json.seq as number] : []))
  t.ok(acked.length > 0, `${acked.length} acknowledged before the exit`)
  const again = await spawnRelay(file)
  t.teardown(() => again.child.kill('SIGKILL'))
  const ready = await get(`${again.base}/readyz`)
  t.ok(ready.json.head >= Math.max(...acked), `head ${ready.json.head} covers every acknowledged seq`)
  const events = await get(`${again.base}/v1/events?after=0&limit=100`, TOKEN)
  const stored = new Set(events.json.events.map((e: { seq: number }) => e.seq))
  t.same(
    acked.filter((seq) => !stored.has(seq)),
    [],
    'every acknowledged callback is in the reopened journal',
  )
})

