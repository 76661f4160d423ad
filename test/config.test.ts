import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { RelayError } from '../src/errors.js'
import { ensureGeneratedSecrets, readGeneratedSecrets } from '../src/config/generated.js'
import { ConfigError, loadConfig, loadConfigText, type ConfigProblem, type LoadOptions } from '../src/config/load.js'

const DEFAULT_CONFIG = fileURLToPath(new URL('../config/hookrelay.yaml', import.meta.url))
const MiB = 1024 * 1024

/** The config shape the project promised its users from the start (README "Configuration"), verbatim: it must keep loading. */
const CONTRACT_EXAMPLE = `listen: { host: 0.0.0.0, port: 8080 }
data_dir: ./data
sources:
  runflow:
    path: /webhook/runflow
    verify: { scheme: runflow, secrets: ["\${RUNFLOW_WEBHOOK_SECRET:-}"] }
    max_body: 5mb
subscribers:
  - name: app
    token: \${HOOKRELAY_TOKEN:-}
    sources: ["*"]
mirror:
  enabled: false
  endpoint: http://127.0.0.1:9000
  access_key: \${MINIO_ACCESS_KEY}
  secret_key_file: /run/secrets/minio
  bucket: runflow-outputs
  allow_hosts: []          # when set, only these origin hosts are fetched (may include 127.0.0.1)
log: { level: info }
`

function load(lines: string[] | string, opts: LoadOptions = {}) {
  const text = Array.isArray(lines) ? lines.join('\n') + '\n' : lines
  return loadConfigText(text, 'test.yaml', { env: {}, cwd: '/srv/relay', ...opts })
}

/** The ConfigError a load throws (fails the test when it loads). */
function failure(lines: string[] | string, opts: LoadOptions = {}): ConfigError {
  try {
    load(lines, opts)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

function problems(lines: string[] | string, opts: LoadOptions = {}): readonly ConfigProblem[] {
  const err = failure(lines, opts)
  if (err.code !== 'HOOKRELAY_CONFIG_INVALID') throw new Error(`unexpected code ${err.code}`)
  return err.problems
}

/** `sources:` with one valid runflow source, then `rest`. */
function withSource(...rest: string[]): string[] {
  return ['sources:', '  runflow:', '    verify: { scheme: runflow }', ...rest]
}

t.test('the default config/hookrelay.yaml loads with an empty environment', async (t) => {
  const cwd = t.testdir()
  const c = loadConfig(DEFAULT_CONFIG, { env: {}, cwd })
  t.equal(c.file, DEFAULT_CONFIG)
  t.same(c.listen, { host: '0.0.0.0', port: 8080 })
  t.equal(c.data_dir, join(cwd, 'data'))
  t.match(c.sources.runflow, {
    name: 'runflow',
    path: '/webhook/runflow',
    verify: { scheme: 'runflow', secrets: [], public_keys: [], tolerance_ms: 300_000 },
    max_body: 5 * MiB,
  })
  t.same(c.subscribers, [{ name: 'app', token: '', sources: ['*'], role: 'operator' }])
  t.match(c.mirror, { enabled: false, endpoint: 'http://127.0.0.1:9000', bucket: 'runflow-outputs', access_key: '', secret_key: '' })
  t.equal(c.log.level, 'info')
  t.equal(c.journal.map_size, 4 * 1024 * MiB)
})

t.test('the default config picks up the documented variables', async (t) => {
  const c = loadConfig(DEFAULT_CONFIG, {
    env: { RUNFLOW_WEBHOOK_SECRET: 'whsec_abc', HOOKRELAY_TOKEN: 'tok', MINIO_ACCESS_KEY: 'ak' },
  })
  t.same(c.sources.runflow?.verify.secrets, ['whsec_abc'])
  t.equal(c.subscribers[0]?.token, 'tok')
  t.equal(c.mirror.access_key, 'ak')
})

t.test('the original config contract example loads verbatim', async (t) => {
  const c = loadConfigText(CONTRACT_EXAMPLE, 'design.yaml', { env: {}, cwd: '/srv/relay' })
  t.equal(c.data_dir, '/srv/relay/data')
  t.equal(c.sources.runflow?.path, '/webhook/runflow')
  t.same(c.mirror.allow_hosts, [])
  t.equal(c.file, '/srv/relay/design.yaml')
})

t.test('a file with just `sources:` (or nothing) takes every default', async (t) => {
  for (const text of ['sources:\n', '', '# nothing\n']) {
    const c = load(text)
    t.same(c.sources, {})
    t.same(c.subscribers, [])
    t.same(c.listen, { host: '0.0.0.0', port: 8080 })
    t.equal(c.data_dir, '/srv/relay/data')
    t.match(c.mirror, { enabled: false, region: 'us-east-1', concurrency: 2, max_bytes: 1024 * MiB, default_deadline_ms: 3_600_000 })
    t.same(c.mirror.timeouts, { connect_ms: 10_000, headers_ms: 30_000, total_ms: 1_800_000 })
    t.same(c.journal, { backend: 'lmdb', jetstream: undefined, map_size: 4096 * MiB, retention: { max_age_ms: 7 * 86_400_000, max_bytes: 2048 * MiB }, min_free: 256 * MiB })
    t.same(c.stream, { max_inflight: 1000, high_water: MiB, hard_limit: 16 * MiB, max_connections_per_ip: 100, max_payload: 64 * 1024 })
    t.same(c.rate_limit, { ingest_per_second: 0, ingest_burst: 0, limit_loopback: false, trusted_proxies: [] })
    t.same(c.shutdown, { drain_ms: 10_000 })
    t.equal(c.log.level, 'info')
  }
})

t.test('defaults that depend on other keys', async (t) => {
  const c = load([
    'sources:',
    '  github-app: { verify: { scheme: github } }',
    'subscribers:',
    '  - name: ci',
    'rate_limit: { ingest_per_second: 50 }',
    'data_dir: /var/lib/hookrelay',
  ])
  t.equal(c.sources['github-app']?.path, '/webhook/github-app', 'path defaults to /webhook/<name>')
  t.same(c.subscribers, [{ name: 'ci', token: '', sources: ['*'], role: 'reader' }], 'sources default to ["*"], role to reader')
  t.equal(c.rate_limit.ingest_burst, 100, 'burst defaults to 2 × rate')
  t.equal(c.data_dir, '/var/lib/hookrelay', 'absolute data_dir kept')
})

t.test('the result is deeply frozen', async (t) => {
  const c = load(withSource())
  t.ok(Object.isFrozen(c))
  t.ok(Object.isFrozen(c.sources.runflow?.verify.secrets))
  t.ok(Object.isFrozen(c.mirror.timeouts))
  t.throws(() => {
    ;(c.listen as { port: number }).port = 1
  }, TypeError)
})

t.test('unknown key at depth 1, positioned on the key', async (t) => {
  const ps = problems(['listn: { port: 1 }', 'sources:'])
  t.match(ps, [{ line: 1, col: 1, path: 'listn', message: /^unknown key; expected one of listen, data_dir, sources,/ }])
  t.match(ps[0]?.message, /did you mean listen\?/)
})

t.test('unknown key at depth 3, as in the format example', async (t) => {
  const err = failure([
    'listen: { host: 0.0.0.0, port: 8080 }',
    'data_dir: ./data',
    'sources:',
    '  runflow:',
    '    path: /webhook/runflow',
    '    verify: { scheme: runflow }',
    '    max_bod: 5mb',
  ])
  t.equal(err.code, 'HOOKRELAY_CONFIG_INVALID')
  t.ok(err instanceof RelayError)
  t.match(err.problems, [{ line: 7, col: 5, path: 'sources.runflow.max_bod', message: /^unknown key; expected one of path, verify, max_body/ }])
  t.equal(err.problems.length, 1)
  t.match(err.format(), /^test\.yaml:7:5: sources\.runflow\.max_bod: unknown key; /)
})

t.test('unknown key inside a subscriber and inside verify', async (t) => {
  const ps = problems([...withSource(), 'subscribers:', '  - name: app', '    tokn: x'])
  t.match(ps, [{ line: 6, col: 5, path: 'subscribers[0].tokn', message: /expected one of name, token, token_file, sources/ }])
  const ps2 = problems(['sources:', '  a:', '    verify:', '      scheme: github', '      secret: x'])
  t.match(ps2, [{ line: 5, col: 7, path: 'sources.a.verify.secret', message: /did you mean secrets\?/ }])
})

t.test('wrong types', async (t) => {
  t.match(problems(['listen:', '  port: "8080x"']), [{ line: 2, col: 9, path: 'listen.port', message: /expected an integer/ }])
  t.match(problems(['listen: [1, 2]']), [{ line: 1, col: 9, path: 'listen', message: /expected a mapping/ }])
  t.match(problems(['listen: { host: 12 }']), [{ line: 1, col: 17, path: 'listen.host', message: /expected a string, got number 12; quote it/ }])
  t.match(problems(['sources: [a]']), [{ line: 1, col: 10, path: 'sources', message: /expected a mapping/ }])
  t.match(problems([...withSource(), 'subscribers: { name: app }']), [{ line: 4, col: 14, path: 'subscribers', message: /expected a list/ }])
  t.match(problems(['sources:', '  a:', '    verify: { scheme: github, secrets: abc }']), [
    { line: 3, col: 40, path: 'sources.a.verify.secrets', message: /expected a list, got "abc"; write it as \["abc"\]/ },
  ])
  t.match(problems(['mirror: { enabled: yes }']), [{ line: 1, col: 20, path: 'mirror.enabled', message: /expected true or false/ }])
  t.match(problems(['log: { level: [info] }']), [{ line: 1, col: 15, path: 'log.level', message: /^expected one of trace, .*, got a list$/ }])
  t.match(problems(['listen: { port: 70000 }']), [{ line: 1, col: 17, path: 'listen.port', message: /out of range; use an integer from 0 to 65535/ }])
})

t.test('bad enum value', async (t) => {
  const ps = problems(['sources:', '  a:', '    verify:', '      scheme: githb', 'log: { level: loud }'])
  t.match(ps, [
    { line: 4, col: 15, path: 'sources.a.verify.scheme', message: /not allowed; use one of runflow, github, stripe, standard-webhooks, hmac \(did you mean github\?\)/ },
    { line: 5, col: 15, path: 'log.level', message: /use one of trace, debug, info/ },
  ])
})

t.test('bad size and bad duration, and their ranges', async (t) => {
  const ps = problems([
    ...withSource('    max_body: 5 megs'),
    'shutdown: { drain: soon }',
    'mirror: { max_bytes: 6gb }',
    'stream: { max_payload: 1gb }',
  ])
  t.match(ps, [
    { line: 4, col: 15, path: 'sources.runflow.max_body', message: /not a size/ },
    { line: 5, col: 20, path: 'shutdown.drain', message: /not a duration/ },
    { line: 6, col: 22, path: 'mirror.max_bytes', message: /out of range/ },
    { line: 7, col: 24, path: 'stream.max_payload', message: /out of range/ },
  ])
  t.match(problems(withSource('    max_body: 65mb')), [{ path: 'sources.runflow.max_body', message: /out of range; use from 1b to 64mb/ }])
})

t.test('sizes and durations as numbers mean bytes and milliseconds', async (t) => {
  const c = load(withSource('    max_body: 1024', 'shutdown: { drain: 1500 }'))
  t.equal(c.sources.runflow?.max_body, 1024)
  t.equal(c.shutdown.drain_ms, 1500)
})

t.test('an unset ${VAR} without a default is a positioned error', async (t) => {
  const ps = problems(['sources:', '  a:', '    verify:', '      scheme: github', '      secrets: ["x", "${GITHUB_SECRET}"]'])
  t.match(ps, [{ line: 5, col: 22, path: 'sources.a.verify.secrets[1]', message: /\$\{GITHUB_SECRET\} is not set; set GITHUB_SECRET/ }])
  t.match(problems(['data_dir: ${STATE_DIRECTORY}/x']), [{ line: 1, col: 11, path: 'data_dir', message: /STATE_DIRECTORY/ }])
  t.match(problems(['data_dir: "${1X}"']), [{ line: 1, col: 11, path: 'data_dir', message: /does not name a variable/ }])
})

t.test('${VAR}, ${VAR:-default} and $${ in values', async (t) => {
  const c = load(
    [
      'listen: { host: "${HOST:-127.0.0.1}", port: "${PORT:-9090}" }',
      'data_dir: ${STATE_DIRECTORY}/relay',
      'sources:',
      '  a:',
      '    verify: { scheme: runflow, secrets: ["${S1}", "${S2:-}", "lit$${S1}"] }',
      'mirror: { enabled: "${MIRROR:-false}", selectors: ["$${not.a.var}"] }',
    ],
    { env: { STATE_DIRECTORY: '/var/lib/hr', S1: 'one' } },
  )
  t.same(c.listen, { host: '127.0.0.1', port: 9090 }, 'numbers from ${...} are numbers')
  t.equal(c.data_dir, '/var/lib/hr/relay')
  t.same(c.sources.a?.verify.secrets, ['one', 'lit${S1}'], 'empty ${S2:-} dropped, $${ literal')
  t.equal(c.mirror.enabled, false)
  t.same(c.mirror.selectors, ['${not.a.var}'])
  t.match(problems(['listen: { port: "${PORT:-eighty}" }']), [{ path: 'listen.port', message: /expected an integer/ }])
  t.match(problems(['listen: { port: "8080" }']), [{ path: 'listen.port', message: /expected an integer/ }], 'a quoted literal stays a string')
})

t.test('*_file secrets are read, trimmed, one per line for lists', async (t) => {
  const dir = t.testdir({
    'secrets.txt': 'whsec_one\n\n  whsec_two  \r\n',
    'token.txt': '  hr_token\n',
    secrets: { 'ak.txt': 'minio-ak\n', 'sk.txt': 'minio-sk' },
  })
  const c = load(
    [
      'sources:',
      '  a:',
      '    verify: { scheme: runflow, secrets_file: secrets.txt }',
      'subscribers:',
      `  - { name: app, token_file: ${join(dir, 'token.txt')} }`,
      'mirror:',
      '  enabled: true',
      '  endpoint: https://s3.example.com',
      '  bucket: outputs',
      '  access_key_file: ${CREDS}/ak.txt',
      '  secret_key_file: secrets/sk.txt',
    ],
    { cwd: dir, env: { CREDS: join(dir, 'secrets') } },
  )
  t.same(c.sources.a?.verify.secrets, ['whsec_one', 'whsec_two'])
  t.equal(c.subscribers[0]?.token, 'hr_token')
  t.equal(c.mirror.access_key, 'minio-ak')
  t.equal(c.mirror.secret_key, 'minio-sk')
})

t.test('x and x_file both set is an error on the later key', async (t) => {
  const dir = t.testdir({ 't.txt': 'tok' })
  const ps = problems(
    [...withSource(), 'subscribers:', '  - name: app', '    token: abc', '    token_file: t.txt'],
    { cwd: dir },
  )
  t.match(ps, [{ line: 7, col: 5, path: 'subscribers[0].token_file', message: /both token and token_file are set; keep one/ }])
})

t.test('a missing or unreadable *_file names the path and the fix', async (t) => {
  const dir = t.testdir({ adir: {} })
  const ps = problems(
    ['sources:', '  a:', '    verify:', '      scheme: github', '      secrets_file: nope.txt', '  b:', '    verify: { scheme: github, secrets_file: adir }'],
    { cwd: dir },
  )
  t.match(ps, [
    { line: 5, col: 21, path: 'sources.a.verify.secrets_file', message: `cannot read ${join(dir, 'nope.txt')} (no such file); create it or set secrets instead` },
    { line: 7, col: 45, path: 'sources.b.verify.secrets_file', message: /it is a directory/ },
  ])
})

t.test('mirror disabled: keys must be known, but unset vars and missing files are fine', async (t) => {
  const c = load([
    'mirror:',
    '  enabled: false',
    '  endpoint: ${MINIO_URL}',
    '  access_key: ${MINIO_ACCESS_KEY}',
    '  secret_key_file: /nonexistent/minio',
    '  bucket: ${BUCKET}',
  ])
  t.match(c.mirror, { enabled: false, endpoint: '', access_key: '', secret_key: '', bucket: '' })
  t.match(problems(['mirror:', '  enabled: false', '  bucketz: x']), [{ line: 3, col: 3, path: 'mirror.bucketz', message: /unknown key/ }])
  t.match(problems(['mirror:', '  access_key: a', '  access_key_file: /x']), [{ line: 3, path: 'mirror.access_key_file', message: /both/ }])
  t.match(problems(['mirror:', '  allow_hosts:', '    - files.example.com', '    -', '    - http://x/']), [
    { line: 4, col: 6, path: 'mirror.allow_hosts[1]', message: /empty list item/ },
    { line: 5, col: 7, path: 'mirror.allow_hosts[2]', message: /not a host name/ },
  ])
  t.match(problems(['mirror: { concurrency: many }']), [{ path: 'mirror.concurrency', message: /expected an integer/ }], 'literal values are still checked')
})

t.test('mirror enabled: unset vars, missing files and required keys are reported', async (t) => {
  const ps = problems([
    'mirror:',
    '  enabled: true',
    '  endpoint: ftp://files',
    '  access_key: ${MINIO_ACCESS_KEY}',
    '  secret_key_file: /nonexistent/minio',
  ])
  t.match(ps, [
    { line: 1, col: 1, path: 'mirror.bucket', message: /required when mirror.enabled is true/ },
    { line: 3, col: 13, path: 'mirror.endpoint', message: /not an http\(s\) URL/ },
    { line: 4, col: 15, path: 'mirror.access_key', message: /MINIO_ACCESS_KEY/ },
    { line: 5, col: 20, path: 'mirror.secret_key_file', message: /cannot read \/nonexistent\/minio/ },
  ])
  t.equal(ps.length, 4, 'no second "required" problem for keys already reported')
  t.match(problems(['mirror: { enabled: true }']).map((p) => p.path), ['mirror.endpoint', 'mirror.bucket', 'mirror.access_key', 'mirror.secret_key'])
  t.match(problems(['mirror: { enabled: true, endpoint: "http://x", access_key: a, secret_key: b, bucket: Bad_Bucket }']), [
    { path: 'mirror.bucket', message: /not a valid bucket name/ },
  ])
})

t.test('source paths: shape, reserved, duplicates', async (t) => {
  const ps = problems([
    'sources:',
    '  a: { path: /hooks/x, verify: { scheme: github } }',
    '  b:',
    '    path: /hooks/x',
    '    verify: { scheme: github }',
    '  c: { path: hooks, verify: { scheme: github } }',
    '  d: { path: /v1/events, verify: { scheme: github } }',
    '  e: { path: /metrics, verify: { scheme: github } }',
    '  webhook-f: { verify: { scheme: github } }',
    '  f: { path: /webhook/webhook-f, verify: { scheme: github } }',
    '  Bad: { verify: { scheme: github } }',
  ])
  t.match(ps, [
    { line: 4, col: 11, path: 'sources.b.path', message: /\/hooks\/x is also the path of sources.a/ },
    { line: 6, col: 14, path: 'sources.c.path', message: /does not start with "\/"/ },
    { line: 7, col: 14, path: 'sources.d.path', message: /reserved/ },
    { line: 8, col: 14, path: 'sources.e.path', message: /reserved/ },
    { line: 10, col: 14, path: 'sources.f.path', message: /also the path of sources.webhook-f/ },
    { line: 11, col: 3, path: 'sources.Bad', message: /is not a valid name/ },
  ])
})

t.test('source paths are literal: no router pattern, query or other special character', async (t) => {
  const ps = problems([
    'sources:',
    '  a: { path: "/webhook/:id", verify: { scheme: github } }',
    '  b: { path: "/webhook/*", verify: { scheme: github } }',
    '  c: { path: "/webhook/a?x=1", verify: { scheme: github } }',
    '  d: { path: "/webhook/a%20b", verify: { scheme: github } }',
    '  e: { path: /hooks/e_1.v2-x~y, verify: { scheme: github } }',
  ])
  t.match(ps, [
    { line: 2, col: 14, path: 'sources.a.path', message: /holds ":"; a source path is literal/ },
    { line: 3, col: 14, path: 'sources.b.path', message: /holds "\*"; a source path is literal/ },
    { line: 4, col: 14, path: 'sources.c.path', message: /"\?"/ },
    { line: 5, col: 14, path: 'sources.d.path', message: /holds "%"/ },
  ])
})

t.test('serving: at least one source, and a data_dir this host can use', async (t) => {
  const dir = t.testdir({ file: 'x' })
  t.match(problems('', { serving: true, cwd: dir }), [{ line: 1, col: 1, path: 'sources', message: /no source is configured/ }])
  t.match(problems(['log: { level: info }', 'sources: {}'], { serving: true, cwd: dir }), [{ line: 2, col: 1, path: 'sources' }])
  t.same(load('', { serving: false }).sources, {}, 'only when serving')
  t.match(problems(withSource(`data_dir: ${join(dir, 'file')}`), { serving: true, cwd: dir }), [
    { line: 4, col: 11, path: 'data_dir', message: /is a regular file/ },
  ])
  t.match(problems(withSource('data_dir: nope/data'), { serving: true, cwd: dir }), [
    { line: 4, col: 11, path: 'data_dir', message: new RegExp(`${join(dir, 'nope')}; create`) },
  ])
  t.equal(load(withSource('data_dir: data'), { serving: true, cwd: dir }).data_dir, join(dir, 'data'), 'a missing data_dir in an existing parent is fine')
})

t.test('subscribers: unknown sources, duplicate names and tokens', async (t) => {
  const ps = problems([
    ...withSource(),
    'subscribers:',
    '  - name: app',
    '    token: same',
    '    sources: [runflow, gihub]',
    '  - { name: app, token: same, sources: [] }',
    '  - sources: ["*"]',
  ])
  t.match(ps, [
    { line: 7, col: 24, path: 'subscribers[0].sources[1]', message: /"gihub" is not a configured source; use "\*" or one of runflow/ },
    { line: 8, col: 13, path: 'subscribers[1].name', message: /also the name of subscribers\[0\]/ },
    { line: 8, col: 25, path: 'subscribers[1].token', message: /same token as subscribers\[0\]/ },
    { line: 8, col: 31, path: 'subscribers[1].sources', message: /lists no source/ },
    { line: 9, col: 5, path: 'subscribers[2].name', message: /missing; add name:/ },
  ])
  t.notMatch(ps.map((p) => p.message).join('\n'), /same"?;/, 'the token is not echoed')
})

t.test('scheme-specific secrets and public keys', async (t) => {
  const pk = 'whpk_' + Buffer.alloc(32, 7).toString('base64')
  const sk = 'whsec_' + Buffer.alloc(24, 1).toString('base64')
  const c = load(['sources:', '  sw:', `    verify: { scheme: standard-webhooks, secrets: [${sk}], public_keys: ["${pk}"] }`])
  t.same(c.sources.sw?.verify.public_keys, [pk])
  const ps = problems([
    'sources:',
    '  sw:',
    '    verify:',
    '      scheme: standard-webhooks',
    '      secrets: [not-whsec, whsec_abc]',
    '      public_keys: [whpk_AAAA]',
    '  rf:',
    `    verify: { scheme: runflow, public_keys: ["${pk}"] }`,
    '  missing: {}',
  ])
  t.match(ps, [
    { line: 5, col: 17, path: 'sources.sw.verify.secrets[0]', message: /whsec_<base64>/ },
    { line: 5, col: 28, path: 'sources.sw.verify.secrets[1]', message: /whsec_<base64>/ },
    { line: 6, col: 21, path: 'sources.sw.verify.public_keys[0]', message: /32 bytes/ },
    { line: 8, col: 32, path: 'sources.rf.verify.public_keys', message: /only to scheme standard-webhooks/ },
    { line: 9, col: 3, path: 'sources.missing.verify', message: /missing; add verify:/ },
  ])
  t.match(problems(['sources:', '  a: { verify: { secrets: [x] } }']), [{ path: 'sources.a.verify.scheme', message: /missing; add scheme/ }])
})

t.test('limits that must hold between keys', async (t) => {
  t.match(problems(['stream: { high_water: 16mb }']), [{ line: 1, col: 23, path: 'stream.high_water', message: /below stream.hard_limit/ }])
  t.match(problems(['journal: { map_size: 1gb }']), [{ line: 1, path: 'journal.retention.max_bytes', message: /below journal.map_size/ }])
  t.match(problems(['rate_limit: { ingest_per_second: 5, ingest_burst: 0 }']), [{ path: 'rate_limit.ingest_burst' }])
  t.match(problems(['rate_limit: { trusted_proxies: [10.0.0.1, proxy.lan] }']), [{ path: 'rate_limit.trusted_proxies[1]', message: /not an IP address/ }])
})

t.test('YAML syntax errors are positioned', async (t) => {
  const err = failure(['sources:', '  a: [1, 2', 'b: 2'])
  t.equal(err.code, 'HOOKRELAY_CONFIG_INVALID')
  t.ok(err.problems.length >= 1)
  t.match(err.problems[0], { line: 3, col: 1, path: '', message: /fix the YAML syntax$/ })
  t.match(err.format(), /^test\.yaml:3:1: [a-z]/)
  t.match(problems(['listen: {}', 'listen: {}']), [{ line: 2, col: 1, message: /unique/ }], 'duplicate keys')
  t.match(problems(['x: !secret abc']), [{ line: 1, col: 4, message: /tag/ }], 'unknown tags')
})

t.test('several problems are all reported at once, in file order', async (t) => {
  const err = failure([
    'listen: { port: -1 }',
    'sources:',
    '  runflow:',
    '    verify: { scheme: nope }',
    '    max_body: huge',
    'subscribers:',
    '  - name: app',
    '    sources: [elsewhere]',
    'log: { level: chatty }',
    'extra: 1',
  ])
  t.same(
    err.problems.map((p) => `${p.line}:${p.col} ${p.path}`),
    [
      '1:17 listen.port',
      '4:23 sources.runflow.verify.scheme',
      '5:15 sources.runflow.max_body',
      '8:15 subscribers[0].sources[0]',
      '9:15 log.level',
      '10:1 extra',
    ],
  )
  const lines = err.format().split('\n')
  t.equal(lines.length, 6)
  t.match(lines[1], /^test\.yaml:4:23: sources\.runflow\.verify\.scheme: /)
  t.match(err.message, /^6 problems in test\.yaml\n/)
})

t.test('aliases resolve to their anchors', async (t) => {
  const c = load([
    'sources:',
    '  a: { verify: &v { scheme: github, secrets: [s] } }',
    '  b: { verify: *v }',
  ])
  t.same(c.sources.b?.verify.secrets, ['s'])
})

t.test('loadConfig reads from disk relative to cwd, and says when it cannot', async (t) => {
  const dir = t.testdir({ 'relay.yaml': 'sources:\n  a: { verify: { scheme: stripe, secrets: [whsec_x] } }\n' })
  const c = loadConfig('relay.yaml', { cwd: dir, env: {} })
  t.equal(c.file, join(dir, 'relay.yaml'))
  t.equal(c.data_dir, join(dir, 'data'))
  t.same(c.sources.a?.verify.secrets, ['whsec_x'])
  try {
    loadConfig('missing.yaml', { cwd: dir, env: {} })
    t.fail('expected a ConfigError')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.equal((err as ConfigError).code, 'HOOKRELAY_CONFIG_UNREADABLE')
    t.match((err as ConfigError).format(), /^missing\.yaml: cannot read the config file \(ENOENT\)/)
  }
})

t.test('ensureGeneratedSecrets', async (t) => {
  const mode = (f: string) => statSync(f).mode & 0o777

  t.test('creates a 0600 file, reuses it, fills only what is missing', async (t) => {
    const dir = t.testdir()
    // data_dir is created (0700) in an existing parent; a missing parent is an error (test/ops-datadir.test.ts).
    const dataDir = join(dir, 'data')
    const config = load(
      [
        'sources:',
        '  runflow: { verify: { scheme: runflow } }',
        '  gh: { verify: { scheme: github, secrets: [given] } }',
        '  sw: { verify: { scheme: standard-webhooks } }',
        '  swpk:',
        `    verify: { scheme: standard-webhooks, public_keys: ["whpk_${Buffer.alloc(32).toString('base64')}"] }`,
        'subscribers:',
        '  - { name: app }',
        '  - { name: ops, token: ops-token, sources: [gh] }',
        `data_dir: ${dataDir}`,
      ],
      { cwd: dir },
    )
    const first = ensureGeneratedSecrets(config)
    const file = join(dataDir, 'generated-secrets.json')
    t.same(first.generated, { file, sources: ['runflow', 'sw'], subscribers: ['app'] })
    t.equal(mode(file), 0o600)
    t.equal(mode(dataDir), 0o700, 'data_dir owner-only')
    t.not(first.config, config, 'a new config')
    t.ok(Object.isFrozen(first.config.sources.runflow?.verify.secrets))
    t.same(config.sources.runflow?.verify.secrets, [], 'the input is untouched')

    const runflowSecret = first.config.sources.runflow?.verify.secrets[0] ?? ''
    t.match(runflowSecret, /^whsec_[A-Za-z0-9+/]{32}$/, '24 random bytes, base64')
    t.equal(Buffer.from(runflowSecret.slice(6), 'base64').length, 24)
    t.match(first.config.sources.sw?.verify.secrets[0], /^whsec_/)
    t.same(first.config.sources.gh?.verify.secrets, ['given'])
    t.same(first.config.sources.swpk?.verify.secrets, [], 'public keys are enough for standard-webhooks')
    const appToken = first.config.subscribers[0]?.token ?? ''
    t.match(appToken, /^hr_[A-Za-z0-9_-]{32}$/)
    t.equal(first.config.subscribers[1]?.token, 'ops-token')
    t.equal(first.config.subscribers.length, 2, 'no default subscriber when some are configured')

    const stored = JSON.parse(readFileSync(file, 'utf8'))
    t.same(stored.sources, { runflow: runflowSecret, sw: first.config.sources.sw?.verify.secrets[0] })
    t.same(stored.subscribers, { app: appToken })
    t.same(readGeneratedSecrets(dataDir), stored)

    chmodSync(file, 0o644)
    const before = readFileSync(file, 'utf8')
    const second = ensureGeneratedSecrets(config)
    t.equal(second.config.sources.runflow?.verify.secrets[0], runflowSecret, 'same secret on the second start')
    t.equal(second.config.subscribers[0]?.token, appToken, 'same token on the second start')
    t.equal(readFileSync(file, 'utf8'), before, 'nothing new to write')
    t.equal(mode(file), 0o600, 'a looser mode is tightened')
  })

  t.test('adds a default subscriber when none is configured', async (t) => {
    const dir = t.testdir()
    const config = load(['sources:', '  runflow: { verify: { scheme: runflow, secrets: [s] } }'], { cwd: dir })
    const { config: next, generated } = ensureGeneratedSecrets(config)
    t.same(generated?.sources, [])
    t.same(generated?.subscribers, ['default'])
    t.match(next.subscribers, [{ name: 'default', sources: ['*'], token: /^hr_/ }])
    t.same(readGeneratedSecrets(next.data_dir)?.subscribers, { default: next.subscribers[0]?.token })
  })

  t.test('nothing missing: same config, no file', async (t) => {
    const dir = t.testdir()
    const config = load(['sources:', '  a: { verify: { scheme: github, secrets: [s] } }', 'subscribers: [{ name: x, token: t }]'], { cwd: dir })
    const result = ensureGeneratedSecrets(config)
    t.equal(result.config, config)
    t.equal(result.generated, null)
    t.equal(readGeneratedSecrets(config.data_dir), null)
  })

  t.test('keeps stored values it does not need now and adds new ones', async (t) => {
    const dir = t.testdir({ data: { 'generated-secrets.json': JSON.stringify({ version: 1, sources: { old: 'whsec_old' }, subscribers: { app: 'hr_kept' } }) } })
    const config = load(['sources:', '  a: { verify: { scheme: github } }', 'subscribers: [{ name: app }]'], { cwd: dir })
    const { config: next } = ensureGeneratedSecrets(config)
    t.equal(next.subscribers[0]?.token, 'hr_kept')
    const stored = readGeneratedSecrets(join(dir, 'data'))
    t.equal(stored?.sources.old, 'whsec_old')
    t.equal(stored?.sources.a, next.sources.a?.verify.secrets[0])
    t.equal(mode(join(dir, 'data', 'generated-secrets.json')), 0o600)
  })

  t.test('a malformed file is an error, never overwritten', async (t) => {
    const dir = t.testdir({ data: { 'generated-secrets.json': '{"version":1,"sources":[]' } })
    const config = load(['sources:', '  a: { verify: { scheme: github } }'], { cwd: dir })
    t.throws(() => ensureGeneratedSecrets(config), { code: 'HOOKRELAY_CONFIG_GENERATED_INVALID' })
    writeFileSync(join(dir, 'data', 'generated-secrets.json'), '{"version":2,"sources":{},"subscribers":{}}')
    t.throws(() => readGeneratedSecrets(join(dir, 'data')), { code: 'HOOKRELAY_CONFIG_GENERATED_INVALID' })
    t.equal(readFileSync(join(dir, 'data', 'generated-secrets.json'), 'utf8'), '{"version":2,"sources":{},"subscribers":{}}')
  })
})
