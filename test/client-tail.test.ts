// `hookrelay tail` (runTail) against a real relay: flags, output formats, token
// defaults, Ctrl-C.
import t from 'tap'
import { runTail, type TailDeps } from '../src/client/tail.js'
import { ensureGeneratedSecrets } from '../src/config/generated.js'
import { loadConfigText } from '../src/config/load.js'
import type { Config } from '../src/config/types.js'
import { fanoutExtension } from '../src/fanout/hub.js'
import { Relay } from '../src/relay.js'
import { sampleRunflowCallback } from '../src/sample.js'
import { signGithub } from '../src/verify/sign.js'
import { TOKEN, post, postRunflow, silent, testConfig } from './helpers/relay.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

async function start(t: TapLike, config: Config) {
  const relay = await Relay.start(config, { logger: silent, processMetrics: false, extensions: [fanoutExtension()] })
  t.teardown(() => relay.close())
  return { relay, base: `http://127.0.0.1:${relay.port}`, url: `ws://127.0.0.1:${relay.port}/v1/stream` }
}

/** Runs the tail until `lines` lines are printed, then stops it like Ctrl-C. */
async function tail(
  args: string[],
  cfg: Config,
  port: number,
  opts: { lines: number; bySignal?: boolean } = { lines: 1 },
): Promise<{ out: string[]; err: string[]; exitCode: number | undefined }> {
  const out: string[] = []
  const err: string[] = []
  const stop = new AbortController()
  const deps: TailDeps = {
    defaultConfig: 'config/hookrelay.yaml',
    configOrExit: () => cfg,
    localBase: () => `127.0.0.1:${port}`,
    out: (s) => {
      out.push(s)
      if (out.length === opts.lines) {
        if (opts.bySignal) process.emit('SIGINT')
        else stop.abort()
      }
    },
    err: (s) => void err.push(s),
  }
  if (!opts.bySignal) deps.signal = stop.signal
  const before = process.exitCode
  await runTail(args, deps)
  const exitCode = process.exitCode as number | undefined
  process.exitCode = before
  return { out, err, exitCode }
}

t.test('--json prints NDJSON of every event from --after; the token defaults to the config’s', async (t) => {
  const dir = t.testdir()
  const cfg = testConfig(dir)
  const { relay, base } = await start(t, cfg)
  const bodies = [sampleRunflowCallback(), sampleRunflowCallback()]
  for (const b of bodies) await postRunflow(base, b)
  const r = await tail(['--after', '0', '--json'], cfg, relay.port, { lines: 2 })
  t.equal(r.exitCode, 0)
  const events = r.out.map((l) => JSON.parse(l))
  t.match(events, [
    { seq: 1, source: 'runflow', event: 'run.completed', key: JSON.parse(bodies[0]!).run_id, revision: 1, body: JSON.parse(bodies[0]!) },
    { seq: 2, key: JSON.parse(bodies[1]!).run_id },
  ])
})

t.test('readable lines, --url/--token without a config, filters, a consumer resuming, Ctrl-C exits 0', async (t) => {
  const cfg = testConfig(t.testdir())
  const { relay, base, url } = await start(t, cfg)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const b = sampleRunflowCallback()
    ids.push(JSON.parse(b).run_id)
    await postRunflow(base, b)
  }
  const gh = '{"action":"opened"}'
  await post(`${base}/webhook/github`, gh, { ...signGithub('gh-secret', gh), 'x-github-event': 'issues', 'x-github-delivery': 'd-9' })
  const noConfig = (): Config => {
    throw new Error('the config must not be read when --url and --token are given')
  }
  const out: string[] = []
  const r = await runTailWith(['--url', url, '--token', TOKEN, '--after', '0', '--sources', 'gh'], noConfig, relay.port, out, 1)
  t.equal(r, 0)
  t.match(out[0], /^4 gh issues.opened d-9 1 \d{4}-\d\d-\d\dT\S+$/)

  // Readable lines; a consumer acks as it prints, and Ctrl-C (SIGINT) stops cleanly.
  const first = await tail(['--consumer', 'ops', '--events', 'run.*'], cfg, relay.port, { lines: 2, bySignal: true })
  t.equal(first.exitCode, 0, 'SIGINT exits 0')
  t.match(first.out, [new RegExp(`^1 runflow run.completed ${ids[0]} 1 `), new RegExp(`^2 runflow run.completed ${ids[1]} 1 `)])
  t.equal(process.listenerCount('SIGINT'), sigintListeners, 'its SIGINT handler is removed')
  const second = await tail(['--consumer', 'ops', '--events', 'run.*'], cfg, relay.port, { lines: 1 })
  t.match(second.out, [new RegExp(`^3 runflow run.completed ${ids[2]} `)], 'the consumer resumes after what it printed')
})

const sigintListeners = process.listenerCount('SIGINT')

async function runTailWith(args: string[], configOrExit: (f: string) => Config, port: number, out: string[], lines: number): Promise<number | undefined> {
  const stop = new AbortController()
  const before = process.exitCode
  await runTail(args, {
    defaultConfig: 'x.yaml',
    configOrExit,
    localBase: () => `127.0.0.1:${port}`,
    out: (s) => {
      out.push(s)
      if (out.length === lines) stop.abort()
    },
    err: () => undefined,
    signal: stop.signal,
  })
  const code = process.exitCode as number | undefined
  process.exitCode = before
  return code
}

t.test('no token in the config: the one the relay generated in data_dir', async (t) => {
  const dir = t.testdir()
  const yaml = `
listen: { host: 127.0.0.1, port: 0 }
data_dir: ${dir}
sources:
  runflow:
    verify: { scheme: runflow, secrets: ["whsec_tail_test"] }
log: { level: silent }
`
  const loaded = loadConfigText(yaml, '<test>', { env: {} })
  const { config, generated } = ensureGeneratedSecrets(loaded)
  t.ok(generated, 'a token was generated')
  const { relay, base } = await start(t, config)
  await postRunflow(base, sampleRunflowCallback(), 'whsec_tail_test')
  // The tail gets the config as written (no token); it must find the generated one.
  const r = await tail(['--after', '0'], loaded, relay.port, { lines: 1 })
  t.equal(r.exitCode, 0)
  t.match(r.out, [/^1 runflow run.completed /])
})

t.test('bad input: --after garbage exits 64; a bad token exits 1 with the reason', async (t) => {
  const cfg = testConfig(t.testdir())
  const { relay } = await start(t, cfg)
  const a = await tail(['--after', 'yesterday'], cfg, relay.port)
  t.equal(a.exitCode, 64)
  t.match(a.err, [/--after must be/])
  const b = await tail(['--token', 'wrong'], cfg, relay.port)
  t.equal(b.exitCode, 1)
  t.match(b.err.join('\n'), /HOOKRELAY_CLIENT_UNAUTHORIZED/)
})
