// log.format: auto (pretty on a terminal, JSON lines otherwise), json, pretty. The formatter
// unit-tested, then `hookrelay serve` from dist/ on a pipe and on a pseudo-terminal (script(1)).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import t from 'tap'
import { loadConfigText } from '../src/config/load.js'
import { RelayError } from '../src/errors.js'
import { prettyLine } from '../src/log.js'
import { CLI, writeConfig } from './helpers/spawn.js'

t.test('prettyLine: time, level, message, fields; the stack of an error below', async (t) => {
  const time = Date.UTC(2026, 4, 6, 10, 1, 42, 123)
  t.equal(
    prettyLine(JSON.stringify({ level: 30, time, pid: 1, hostname: 'h', name: 'hookrelay', msg: 'hookrelay listening', address: '127.0.0.1:8080', head: 3, note: 'two words' }), false),
    '10:01:42.123 INFO  hookrelay listening address=127.0.0.1:8080 head=3 note="two words"\n',
  )
  const err = prettyLine(JSON.stringify({ level: 60, time, msg: 'could not start', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.js:1:1)' } }), false)
  t.equal(err, '10:01:42.123 FATAL could not start\n    Error: boom\n        at x (y.js:1:1)\n')
  t.match(prettyLine(JSON.stringify({ level: 40, time, msg: 'w' }), true), /\x1b\[33mWARN \x1b\[0m w/, 'colored level on a color terminal')
  t.equal(prettyLine('not json\n', false), 'not json\n', 'other text passes through')
})

t.test('log.format is auto, json or pretty; anything else is an error at its position', async (t) => {
  const base = 'sources: { a: { verify: { scheme: github, secrets: ["s"] } } }\n'
  t.equal(loadConfigText(base, 'x.yaml', { env: {} }).log.format, 'auto')
  t.equal(loadConfigText(`${base}log: { format: pretty }\n`, 'x.yaml', { env: {} }).log.format, 'pretty')
  try {
    loadConfigText(`${base}log: { format: colour }\n`, 'x.yaml', { env: {} })
    t.fail('accepted log.format: colour')
  } catch (e) {
    t.ok(e instanceof RelayError)
    t.match((e as { problems: unknown }).problems, [{ line: 2, col: 16, path: 'log.format', message: /use one of auto, json, pretty/ }])
  }
})

function config(dir: string, format?: string): string {
  return writeConfig(
    dir,
    `listen: { host: 127.0.0.1, port: 0 }
data_dir: ${dir}/data
sources:
  runflow: { path: /webhook/runflow, verify: { scheme: runflow, secrets: ["whsec_log_format_test_0123456789"] } }
subscribers: [{ name: app, token: hr_log_test, sources: ["*"] }]
${format === undefined ? '' : `log: { format: ${format} }`}
`,
  )
}

/** Runs serve until its first line that mentions "listening", then SIGTERM; resolves with that line. */
async function firstListeningLine(cmd: string, args: string[]): Promise<string> {
  const env = { ...process.env }
  delete env.NO_COLOR
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], env })
  let out = ''
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += String(d)
      const l = out.split(/\r?\n/).find((x) => x.includes('listening'))
      if (l !== undefined) resolve(l)
    })
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)))
  })
  child.kill('SIGTERM')
  await once(child, 'exit')
  return line
}

t.test('serve on a pipe: JSON lines by default, person-readable with log.format: pretty', async (t) => {
  const json = await firstListeningLine(process.execPath, [CLI, 'serve', '--config', config(t.testdir())])
  t.match(JSON.parse(json), { level: 30, msg: 'hookrelay listening' })
  const pretty = await firstListeningLine(process.execPath, [CLI, 'serve', '--config', config(t.testdir(), 'pretty')])
  t.match(pretty, /^\d\d:\d\d:\d\d\.\d{3} INFO  hookrelay listening address=127\.0\.0\.1:\d+ /)
})

t.test('serve on a terminal: pretty by default, JSON with log.format: json', { skip: existsSync('/usr/bin/script') ? false : 'no script(1)' }, async (t) => {
  // script(1) gives the relay a pseudo-terminal as stdout.
  const onTty = (cfg: string): Promise<string> =>
    firstListeningLine('/usr/bin/script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} serve --config ${JSON.stringify(cfg)}`, '/dev/null'])
  const pretty = await onTty(config(t.testdir()))
  // eslint-disable-next-line no-control-regex
  t.match(pretty.replace(/\x1b\[[0-9;]*m/g, ''), /^\d\d:\d\d:\d\d\.\d{3} INFO  hookrelay listening address=/)
  t.match(pretty, /\x1b\[32mINFO /, 'colored')
  const json = await onTty(config(t.testdir(), 'json'))
  t.match(JSON.parse(json), { msg: 'hookrelay listening' })
})
