// journal.backend and the journal.jetstream block: every bad input is a
// positioned problem like any other key, and check-config exits 78 on them.
import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createUser } from '@nats-io/nkeys'
import t from 'tap'
import { ConfigError, loadConfigText, type ConfigProblem, type LoadOptions } from '../src/config/load.js'
import { CLI } from './helpers/spawn.js'

const run = promisify(execFile)

function load(lines: string[], opts: LoadOptions = {}) {
  return loadConfigText(lines.join('\n') + '\n', 'test.yaml', { env: {}, cwd: '/srv/relay', ...opts })
}

function problems(lines: string[], opts: LoadOptions = {}): readonly ConfigProblem[] {
  try {
    load(lines, opts)
  } catch (err) {
    if (err instanceof ConfigError && err.code === 'HOOKRELAY_CONFIG_INVALID') return err.problems
    throw err
  }
  throw new Error('expected a ConfigError')
}

/** A config with one source and `journal:` followed by `journal` (lines indented under it). Line 4 is the first journal line. */
function withJournal(...journal: string[]): string[] {
  return ['sources:', '  runflow: { verify: { scheme: runflow } }', 'journal:', ...journal.map((l) => `  ${l}`)]
}

const SERVERS = 'servers: ["nats://127.0.0.1:4222"]'

/** Writes a file into dir and returns its name. */
function put(dir: string, name: string, text: string, mode?: number): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  if (mode !== undefined) chmodSync(file, mode)
  return file
}

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n'

t.test('the default stays lmdb with no jetstream block', async (t) => {
  const c = load(['sources:', '  runflow: { verify: { scheme: runflow } }'])
  t.equal(c.journal.backend, 'lmdb')
  t.equal(c.journal.jetstream, undefined)
})

t.test('a full jetstream block maps onto JetStreamConfig', async (t) => {
  const dir = t.testdir()
  const seed = new TextDecoder().decode(createUser().getSeed())
  put(dir, 'user.nk', seed + '\n')
  put(dir, 'ca.pem', CERT)
  put(dir, 'c.pem', CERT)
  put(dir, 'k.pem', KEY)
  const c = load(
    withJournal(
      'backend: jetstream',
      'jetstream:',
      '  servers: ["nats://10.0.0.1:4222", "tls://nats2.example.com:4443"]',
      '  stream: RELAY_prod-1',
      '  replicas: 5',
      '  timeout: 750ms',
      '  duplicate_window: 10m',
      '  nkey_seed_file: user.nk',
      '  tls: { ca_file: ca.pem, cert_file: ./c.pem, key_file: k.pem }',
    ),
    { cwd: dir },
  )
  t.equal(c.journal.backend, 'jetstream')
  t.same(c.journal.jetstream, {
    servers: ['nats://10.0.0.1:4222', 'tls://nats2.example.com:4443'],
    stream: 'RELAY_prod-1',
    replicas: 5,
    timeout_ms: 750,
    duplicate_window_ms: 600_000,
    auth: { kind: 'nkey', seed_file: join(dir, 'user.nk') },
    tls: { ca_file: join(dir, 'ca.pem'), cert_file: join(dir, 'c.pem'), key_file: join(dir, 'k.pem') },
  })
})

t.test('defaults: stream HOOKRELAY, 3 replicas, 5s timeout, 2m duplicate window, no auth, no TLS', async (t) => {
  const c = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS} }`))
  t.same(c.journal.jetstream, {
    servers: ['nats://127.0.0.1:4222'],
    stream: 'HOOKRELAY',
    replicas: 3,
    timeout_ms: 5000,
    duplicate_window_ms: 120_000,
    auth: { kind: 'none' },
    tls: undefined,
  })
  const onlyCa = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, tls: {} }`))
  t.same(onlyCa.journal.jetstream?.tls, { ca_file: '', cert_file: '', key_file: '' }, 'an empty tls block means TLS with the system CAs')
})

t.test('${ENV} interpolation works in the block as elsewhere', async (t) => {
  const c = load(
    withJournal('backend: ${HOOKRELAY_BACKEND:-lmdb}', 'jetstream:', '  servers: ["${NATS_URL}"]', '  token: ${NATS_TOKEN}', '  replicas: ${NATS_REPLICAS:-3}'),
    { env: { HOOKRELAY_BACKEND: 'jetstream', NATS_URL: 'nats://192.0.2.7:4222', NATS_TOKEN: 's3cret', NATS_REPLICAS: '1' } },
  )
  t.match(c.journal.jetstream, { servers: ['nats://192.0.2.7:4222'], replicas: 1, auth: { kind: 'token', token: 's3cret' } })
  t.match(problems(withJournal('backend: jetstream', 'jetstream:', '  servers: ["${NATS_URL}"]')), [
    { line: 6, col: 15, path: 'journal.jetstream.servers[0]', message: /\$\{NATS_URL\} is not set/ },
  ])
})

t.test('user + password, and token / password from files', async (t) => {
  const dir = t.testdir()
  put(dir, 'pw', 'hunter2\n')
  put(dir, 'tok', 'tok-123\n')
  const u = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, user: relay, password_file: pw }`), { cwd: dir })
  t.same(u.journal.jetstream?.auth, { kind: 'user', user: 'relay', password: 'hunter2' })
  const k = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, token_file: tok }`), { cwd: dir })
  t.same(k.journal.jetstream?.auth, { kind: 'token', token: 'tok-123' })
})

t.test('a creds file maps to auth creds', async (t) => {
  const dir = t.testdir()
  const creds = [
    '-----BEGIN NATS USER JWT-----',
    'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig',
    '------END NATS USER JWT------',
    '',
    '-----BEGIN USER NKEY SEED-----',
    new TextDecoder().decode(createUser().getSeed()),
    '------END USER NKEY SEED------',
    '',
  ].join('\n')
  put(dir, 'relay.creds', creds)
  const c = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, credentials_file: relay.creds }`), { cwd: dir })
  t.same(c.journal.jetstream?.auth, { kind: 'creds', file: join(dir, 'relay.creds') })
})

t.test('backend: jetstream without the block, and the block with backend lmdb', async (t) => {
  t.match(problems(withJournal('backend: jetstream')), [
    { line: 4, col: 12, path: 'journal.backend', message: /is jetstream but journal.jetstream is missing; add journal.jetstream:/ },
  ])
  t.match(problems(withJournal(`jetstream: { ${SERVERS} }`)), [
    { line: 4, col: 3, path: 'journal.jetstream', message: /is set but journal.backend is lmdb \(the default\); set journal.backend: jetstream, or remove the block/ },
  ])
  t.match(problems(withJournal('backend: lmdb', `jetstream: { ${SERVERS} }`)), [{ line: 5, col: 3, path: 'journal.jetstream' }])
  t.match(problems(withJournal('backend: jetsream')), [
    { line: 4, col: 12, path: 'journal.backend', message: /"jetsream" is not allowed; use one of lmdb, jetstream \(did you mean jetstream\?\)/ },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream: nats://127.0.0.1:4222')), [
    { line: 5, col: 14, path: 'journal.jetstream', message: /expected a mapping/ },
  ])
})

t.test('servers: required, a non-empty list of nats:// or tls:// URLs without credentials or paths', async (t) => {
  t.match(problems(withJournal('backend: jetstream', 'jetstream: { stream: X }')), [
    { line: 5, col: 3, path: 'journal.jetstream', message: /missing servers; add servers: \["nats:\/\/127.0.0.1:4222"/ },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream: { servers: [] }')), [
    { line: 5, col: 16, path: 'journal.jetstream.servers', message: /lists no server/ },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream: { servers: nats://127.0.0.1:4222 }')), [
    { line: 5, col: 25, path: 'journal.jetstream.servers', message: /expected a list, got "nats:\/\/127.0.0.1:4222"; write it as \["nats:\/\/127.0.0.1:4222"\]/ },
  ])
  t.match(
    problems(
      withJournal(
        'backend: jetstream',
        'jetstream:',
        '  servers:',
        '    - http://127.0.0.1:4222',
        '    - nats://relay:pw@127.0.0.1:4222',
        '    - nats://127.0.0.1:4222/x',
        '    - 127.0.0.1:4222',
        '    - 4222',
      ),
    ),
    [
      { line: 7, col: 9, path: 'journal.jetstream.servers[0]', message: /"http:\/\/127.0.0.1:4222" is not a nats:\/\/ or tls:\/\/ URL; write it like nats:\/\/127.0.0.1:4222/ },
      { line: 8, col: 9, path: 'journal.jetstream.servers[1]', message: /holds credentials; remove them from the URL/ },
      { line: 9, col: 9, path: 'journal.jetstream.servers[2]', message: /has a path or query/ },
      { line: 10, col: 9, path: 'journal.jetstream.servers[3]', message: /not a nats:\/\/ or tls:\/\/ URL/ },
      { line: 11, col: 9, path: 'journal.jetstream.servers[4]', message: /expected a string, got number 4222; quote it/ },
    ],
  )
})

t.test('stream, replicas, timeout, duplicate_window: ranges and names', async (t) => {
  const ps = problems(
    withJournal(
      'backend: jetstream',
      'jetstream:',
      `  ${SERVERS}`,
      '  stream: relay.journal',
      '  replicas: 6',
      '  timeout: 10ms',
      '  duplicate_window: soon',
      '  tokn: x',
    ),
  )
  t.match(ps, [
    { line: 7, col: 13, path: 'journal.jetstream.stream', message: /"relay.journal" is not a valid stream name; use 1-64 letters, digits, "_" and "-"/ },
    { line: 8, col: 15, path: 'journal.jetstream.replicas', message: /6 is out of range; use an integer from 1 to 5/ },
    { line: 9, col: 14, path: 'journal.jetstream.timeout', message: /out of range/ },
    { line: 10, col: 23, path: 'journal.jetstream.duplicate_window', message: /not a duration/ },
    { line: 11, col: 5, path: 'journal.jetstream.tokn', message: /unknown key; expected one of servers, .*\(did you mean token\?\)/ },
  ])
  t.match(problems(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, replicas: 0 }`)), [
    { path: 'journal.jetstream.replicas', message: /0 is out of range/ },
  ])
  t.match(problems(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, stream: "" }`)), [
    { path: 'journal.jetstream.stream', message: /"" is not a valid stream name/ },
  ])
})

t.test('duplicate_window may not be longer than journal.retention.max_age', async (t) => {
  t.match(
    problems(withJournal('retention: { max_age: 1m }', 'backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  duplicate_window: 5m')),
    [{ line: 8, col: 23, path: 'journal.jetstream.duplicate_window', message: /5m is longer than journal.retention.max_age \(1m\); JetStream refuses/ }],
  )
  // The default 2m against a 1m max_age: reported at the block (the key is not written).
  t.match(problems(withJournal('retention: { max_age: 1m }', 'backend: jetstream', `jetstream: { ${SERVERS} }`)), [
    { line: 6, col: 3, path: 'journal.jetstream.duplicate_window', message: /2m is longer/ },
  ])
})

t.test('credentials: at most one way, and each complete', async (t) => {
  t.match(
    problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  token: abc', '  user: relay', '  password: pw')),
    [{ line: 8, col: 11, path: 'journal.jetstream.user', message: /token and user are both set; keep one way to authenticate/ }],
  )
  t.match(problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  user: relay')), [
    { line: 7, col: 11, path: 'journal.jetstream.user', message: /is set without a password; add password \(or password_file\)/ },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  password: pw')), [
    { line: 7, col: 15, path: 'journal.jetstream.password', message: /is set without a user; add user/ },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  user: relay', '  password: pw', '  user: again')), [
    { path: '', message: /unique/i },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  token: abc', '  token_file: /nowhere')), [
    { line: 8, col: 5, path: 'journal.jetstream.token_file', message: /both token and token_file are set; keep one/ },
  ])
  t.match(problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  token_file: /nowhere/tok')), [
    { line: 7, col: 17, path: 'journal.jetstream.token_file', message: /cannot read \/nowhere\/tok \(no such file\)/ },
  ])
})

t.test('nkey seed and creds files must exist, be readable and hold what they claim', async (t) => {
  const dir = t.testdir()
  put(dir, 'notaseed.nk', 'UABC123\n')
  put(dir, 'empty.nk', '\n')
  put(dir, 'bad.creds', 'just text\n')
  mkdirSync(join(dir, 'adir'))
  const at = (key: string, value: string) =>
    problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, `  ${key}: ${value}`), { cwd: dir })
  t.match(at('nkey_seed_file', 'missing.nk'), [
    { line: 7, col: 21, path: 'journal.jetstream.nkey_seed_file', message: new RegExp(`cannot read ${join(dir, 'missing.nk')} \\(no such file\\)`) },
  ])
  t.match(at('nkey_seed_file', 'notaseed.nk'), [{ line: 7, col: 21, message: /does not hold an nkey user seed \(one line SU\.\.\./ }])
  t.match(at('nkey_seed_file', 'empty.nk'), [{ line: 7, col: 21, message: /empty\.nk is empty/ }])
  t.match(at('nkey_seed_file', 'adir'), [{ line: 7, col: 21, message: /it is a directory/ }])
  t.match(at('credentials_file', 'bad.creds'), [
    { line: 7, col: 23, path: 'journal.jetstream.credentials_file', message: /is not a NATS \.creds file/ },
  ])
  t.match(at('credentials_file', '/nowhere.creds'), [{ line: 7, col: 23, message: /cannot read \/nowhere\.creds \(no such file\)/ }])
  if (process.getuid?.() !== 0) {
    put(dir, 'locked.nk', new TextDecoder().decode(createUser().getSeed()), 0o000)
    t.match(at('nkey_seed_file', 'locked.nk'), [{ line: 7, col: 21, message: /permission denied for this user/ }])
  } else {
    t.comment('running as root: an unreadable file cannot be made, the permission case is not exercised')
  }
  t.match(
    problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, '  nkey_seed_file: a.nk', '  credentials_file: b.creds'), { cwd: dir }),
    [
      { line: 7, col: 21, message: /cannot read/ },
      { line: 8, col: 23, message: /cannot read/ },
      { line: 8, col: 23, path: 'journal.jetstream.credentials_file', message: /nkey_seed_file and credentials_file are both set/ },
    ],
  )
})

t.test('tls: files must be readable PEM; a client certificate needs its key and the other way round', async (t) => {
  const dir = t.testdir()
  put(dir, 'ca.pem', CERT)
  put(dir, 'c.pem', CERT)
  put(dir, 'k.pem', KEY)
  put(dir, 'der.bin', 'binary garbage')
  const tls = (v: string) => problems(withJournal('backend: jetstream', 'jetstream:', `  ${SERVERS}`, `  tls: ${v}`), { cwd: dir })
  t.match(tls('{ ca_file: nope.pem }'), [{ line: 7, col: 21, path: 'journal.jetstream.tls.ca_file', message: /cannot read .*nope\.pem \(no such file\)/ }])
  t.match(tls('{ ca_file: der.bin }'), [{ line: 7, col: 21, path: 'journal.jetstream.tls.ca_file', message: /is not a PEM file/ }])
  t.match(tls('{ cert_file: c.pem }'), [{ line: 7, col: 23, path: 'journal.jetstream.tls.cert_file', message: /is set without key_file/ }])
  t.match(tls('{ key_file: k.pem }'), [{ line: 7, col: 22, path: 'journal.jetstream.tls.key_file', message: /is set without cert_file/ }])
  t.match(tls('{ ca: ca.pem }'), [{ line: 7, col: 12, path: 'journal.jetstream.tls.ca', message: /unknown key; expected one of ca_file, cert_file, key_file/ }])
  t.match(tls('yes'), [{ line: 7, col: 10, path: 'journal.jetstream.tls', message: /expected a mapping/ }])
})

t.test('with backend lmdb, map_size still bounds retention; with jetstream it does not (a stream has no map)', async (t) => {
  t.match(problems(withJournal('map_size: 1gb', 'retention: { max_bytes: 2gb }')), [{ path: 'journal.retention.max_bytes' }])
  const c = load(withJournal('map_size: 1gb', 'retention: { max_bytes: 2gb }', 'backend: jetstream', `jetstream: { ${SERVERS} }`))
  t.equal(c.journal.retention.max_bytes, 2 * 1024 ** 3)
})

async function cli(args: string[], cwd: string) {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd, env: { ...process.env }, timeout: 20000 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

t.test('check-config through the CLI: exit 78 with file:line:col for a bad jetstream block, exit 0 for a good one', async (t) => {
  const dir = t.testdir()
  const bad = put(
    dir,
    'bad.yaml',
    [
      'data_dir: ./data',
      ...withJournal('backend: jetstream', 'jetstream:', '  servers: ["http://127.0.0.1:4222"]', '  replicas: 9', '  nkey_seed_file: nope.nk'),
    ].join('\n') + '\n',
  )
  const r = await cli(['check-config', '--config', bad], dir)
  t.equal(r.code, 78, 'exit 78') || t.comment(r.stderr)
  t.match(r.stderr, `${bad}:7:15: journal.jetstream.servers[0]: "http://127.0.0.1:4222" is not a nats:// or tls:// URL`)
  t.match(r.stderr, `${bad}:8:15: journal.jetstream.replicas: 9 is out of range`)
  t.match(r.stderr, `${bad}:9:21: journal.jetstream.nkey_seed_file: cannot read ${join(dir, 'nope.nk')} (no such file)`)

  const good = put(dir, 'good.yaml', ['data_dir: ./data', ...withJournal('backend: jetstream', `jetstream: { ${SERVERS}, token: abc }`)].join('\n') + '\n')
  const ok = await cli(['check-config', '--config', good], dir)
  t.equal(ok.code, 0, 'exit 0') || t.comment(ok.stderr)
  t.match(ok.stdout, /ok/)
})

t.test('a reload cannot switch the backend or the cluster: both need a restart', async (t) => {
  const { restartRequired } = await import('../src/reload-diff.js')
  const lmdb = load(withJournal('backend: lmdb'))
  const js = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS} }`))
  const otherStream = load(withJournal('backend: jetstream', `jetstream: { ${SERVERS}, stream: OTHER }`))
  t.same(restartRequired(lmdb, js), ['journal.backend, journal.jetstream'])
  t.same(restartRequired(js, otherStream), ['journal.backend, journal.jetstream'])
  t.same(restartRequired(js, load(withJournal('backend: jetstream', `jetstream: { ${SERVERS} }`))), [])
})
