#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { EX_CONFIG, RelayError } from './errors.js'
import { loadConfig, type LoadOptions } from './config/load.js'
import { ensureGeneratedSecrets, readGeneratedSecrets } from './config/generated.js'
import type { Config } from './config/types.js'
import { prepareDataDir } from './journal/data-dir.js'
import { lockDataDir } from './journal/lock.js'
import { sampleRunflowCallback } from './sample.js'

/** The directory holding dist/, config/ and package.json: a checkout, an npm install or a release artifact. */
const INSTALL_DIR = join(import.meta.dirname, '..')
// The working directory's config first (a checkout, `npm start`), else the one shipped beside dist/
// (a release artifact started from anywhere, e.g. through a symlink in /usr/local/bin).
const DEFAULT_CONFIG = existsSync('config/hookrelay.yaml') ? 'config/hookrelay.yaml' : join(INSTALL_DIR, 'config', 'hookrelay.yaml')

const HELP: Record<string, string> = {
  main: `hookrelay — verify, journal and relay signed webhooks

Usage: hookrelay <command> [options]

Commands:
  serve          run the relay
  check-config   validate a config file (exit 0, or 78 with file:line:col errors)
  send           sign a sample (or given) callback with the configured secret and post it
  tail           stream events from a relay to the terminal
  keygen         print a new secret, or an ed25519 key pair
  healthcheck    ask a relay's /readyz; exit 0 when ready, 1 when not
  backup         copy the journal (consistent, while the relay runs) into a directory
  destinations   list, show, replay, pause or resume a relay's destinations
  forward        deliver a relay's events to a local HTTP handler through /v1/stream
  cluster-status cluster mode: the JetStream stream, its replicas and lag, consumers, KV buckets

Run hookrelay <command> --help for its options; hookrelay --version prints the version.`,
  serve: `Usage: hookrelay serve [--config FILE]

Runs the relay on FILE (default ${DEFAULT_CONFIG}). SIGTERM or SIGINT stops it
gracefully (in-flight commits finish, subscribers get 1001); a second signal
forces the exit. SIGHUP re-reads FILE and takes over secrets, tokens, rate
limits and retention without dropping a connection; a file that fails
validation, or a change that needs a restart, is logged and refused.`,
  backup: `Usage: hookrelay backup [--config FILE | --data-dir DIR] [--no-compact] DEST_DIR

Writes a consistent copy of data_dir/journal.mdb to DEST_DIR/journal.mdb (and
generated-secrets.json, when there is one) while the relay keeps running;
DEST_DIR must not hold a journal.mdb yet. --data-dir names the data directory
directly (no config needed). Restore: stop the relay, put journal.mdb into an
empty data_dir, start it.`,
  'check-config': `Usage: hookrelay check-config [--config FILE]

Validates FILE (default ${DEFAULT_CONFIG}) and prints every problem as
file:line:col: key.path: what is wrong. Also checks that it has a source and
that data_dir is usable on this host. Exits 0 when valid, 78 when not.`,
  send: `Usage: hookrelay send [--config FILE] [--source NAME] [--url URL] [FILE.json]

Signs FILE.json (default: a realistic Runflow run.completed callback with a
fresh run_id) with the source's first secret (from the config, or the one the
relay generated in data_dir) and posts it to the relay. Prints the status and
the answer; exits 0 on 2xx, 1 otherwise.

  --source NAME   which source (default: runflow, else the first one)
  --url URL       where to post (default: http://127.0.0.1:<listen.port><source.path>)`,
  tail: `Usage: hookrelay tail [--config FILE] [--url ws://HOST:PORT/v1/stream] [--token T]
                     [--after N|latest] [--consumer NAME] [--sources a,b] [--events 'run.*,batch.*'] [--json]

Prints events as they arrive. --json prints one JSON object per line. Ctrl-C exits.`,
  keygen: `Usage: hookrelay keygen [--ed25519]

Prints a new random secret (whsec_...), usable with every scheme; with
--ed25519, a Standard Webhooks v1a key pair (whsk_... secret, whpk_... public).`,
  destinations: `Usage: hookrelay destinations ACTION [NAME] [--config FILE] [--url http://HOST:PORT] [--token T]

  list                         every destination the token may see: state, lag, dead letters
  show NAME                    one destination, its dead letters and latest attempts (JSON)
  attempts NAME [--seq N] [--limit N]
                               recorded attempts, newest first (of one event with --seq)
  replay NAME --from SEQ       deliver SEQ and everything after it again
  replay NAME --dead-letters   deliver every dead letter again
  pause NAME | resume NAME     stop or restart delivery

replay, pause and resume need an operator's token (subscribers[].role: operator).
Without --url and --token they come from the config (its first operator token).
Exits 0 on success, 1 when the relay refused or did not answer.`,
  forward: `Usage: hookrelay forward --to http://HOST:PORT/PATH [--url ws://RELAY:PORT] [--token T]
                        [--consumer NAME] [--sources a,b] [--events 'run.*'] [--timeout 10s]
                        [--sign runflow|github|stripe|standard-webhooks --secret S] [--config FILE]

Follows the relay's /v1/stream as the durable consumer NAME (default forward)
and POSTs each event to --to, retrying until it answers 2xx; only then is it
acked, so after a sleep, a network loss or a relay restart it resumes where
it stopped. Prints one line per delivery. The body sent is the event's JSON
(compact: the stream does not carry the sender's bytes or headers); --sign
signs it as that scheme's sender would. A 410 from --to stops it (exit 1).`,
  'cluster-status': `Usage: hookrelay cluster-status [--config FILE] [--json] [--monitor http://NODE:8222 ...]

Cluster mode (journal.backend: jetstream): connects with the config's
journal.jetstream block and prints the stream's state (messages, bytes,
first/last seq, created), its leader and replicas (current, lag, last seen),
its consumers, the KV buckets beside it, and the check a relay makes at start.
--json prints the same as one JSON object. --monitor (repeated or
comma-separated) names the nodes' monitoring ports: each node's /varz then
says whether it fsyncs before every PubAck (sync_interval: always), which a
client connection cannot see. Exits 0 when healthy, 2 when degraded (a
replica not current or offline, a KV bucket missing, a monitored node without
sync_interval: always or not answering), 1 when the
stream is missing, has no leader, would be refused, or the cluster cannot be
reached, 78 when the config is not a cluster-mode one.`,
  healthcheck: `Usage: hookrelay healthcheck [--config FILE] [--url http://HOST:PORT/readyz]

Exits 0 when the relay answers /readyz with 200 within 3 s, 1 otherwise.`,
}

function out(s: string): void {
  process.stdout.write(`${s}\n`)
}

function fail(s: string, code = 1): never {
  process.stderr.write(`hookrelay: ${s}\n`)
  process.exit(code)
}

/** Loads the config or exits 78 with every problem on stderr. */
function configOrExit(file: string, opts: LoadOptions = {}): Config {
  try {
    return loadConfig(file, opts)
  } catch (e) {
    if (e instanceof RelayError && typeof (e as { format?: () => string }).format === 'function') {
      process.stderr.write(`${(e as unknown as { format: () => string }).format()}\n`)
      process.exit(EX_CONFIG)
    }
    if (e instanceof RelayError) fail(e.message, EX_CONFIG)
    throw e
  }
}

function localBase(cfg: Config): string {
  const host = cfg.listen.host === '0.0.0.0' || cfg.listen.host === '' ? '127.0.0.1' : cfg.listen.host === '::' ? '[::1]' : cfg.listen.host
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${cfg.listen.port}`
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: DEFAULT_CONFIG }, help: { type: 'boolean' } } })
  if (values.help) return out(HELP.serve!)
  const loaded = configOrExit(values.config, { serving: true })
  const { createLogger } = await import('./log.js')
  const log = createLogger(loaded.log.level, undefined, loaded.log.format)
  try {
    const { warning } = prepareDataDir(loaded.data_dir)
    if (warning !== undefined) log.warn({ data_dir: loaded.data_dir }, warning)
  } catch (e) {
    fail(e instanceof RelayError ? `${e.code}: ${e.message}` : `cannot prepare data_dir ${loaded.data_dir}: ${(e as Error).message}`, EX_CONFIG)
  }
  // Held until the process exits; taken before generated secrets are written so two starters cannot both write them.
  // Exit 1 like the other start failures: the other relay may stop, and a supervisor's retry then succeeds.
  try {
    lockDataDir(loaded.data_dir)
  } catch (e) {
    fail(e instanceof RelayError ? `${e.code}: ${e.message}` : (e as Error).message)
  }
  let config: Config
  try {
    const g = ensureGeneratedSecrets(loaded)
    config = g.config
    if (g.generated) {
      log.info(
        { file: g.generated.file, sources: g.generated.sources, subscribers: g.generated.subscribers },
        'no secret or token configured for these: generated them and stored them (mode 0600) in this file; `hookrelay send` and `hookrelay tail` read it',
      )
    }
  } catch (e) {
    fail(`cannot prepare data_dir ${loaded.data_dir}: ${(e as Error).message}`, EX_CONFIG)
  }
  const { startAppliance, reloadFromFile } = await loadNativeParts()
  // SIGHUP's default action ends the process: until the relay runs, there is nothing to reload into.
  let onHangup = (): void => log.warn('SIGHUP before the relay started: ignored')
  process.on('SIGHUP', () => onHangup())
  let relay
  try {
    relay = await startAppliance(config, { logger: log, configFile: values.config })
  } catch (e) {
    log.fatal({ err: e }, 'hookrelay could not start')
    log.flush()
    fail(e instanceof RelayError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e))
  }
  process.on('unhandledRejection', (err: unknown) => {
    // lmdb-js rejects one internal promise per failed commit besides the one
    // the journal handles; the journal has already gone fail-stop for it.
    if (relay.journal.handledRejection(err)) return
    log.fatal({ err }, 'unhandled rejection')
    log.flush()
    process.exit(1)
  })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now')
      log.flush()
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'stopping: draining in-flight commits')
    const deadline = setTimeout(() => {
      log.error('drain deadline passed: exiting now')
      log.flush()
      process.exit(1)
    }, relay.config.shutdown.drain_ms)
    deadline.unref()
    relay.close().then(
      () => {
        log.flush()
        process.exit(0)
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping')
        log.flush()
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  onHangup = () => {
    if (stopping) return
    log.info({ file: values.config }, 'SIGHUP: reloading the config')
    reloadFromFile(relay, values.config)
  }
}

/**
 * Loads the parts with native modules, uWebSockets.js first, and turns a
 * missing binary into one clear line (what is missing, on what, what to do)
 * instead of a loader stack trace.
 */
async function loadNativeParts(): Promise<typeof import('./appliance.js')> {
  try {
    await import('./http/uws.js')
    return await import('./appliance.js')
  } catch (e) {
    if (e instanceof RelayError) fail(`${e.code}: ${e.message}`)
    const msg = e instanceof Error ? e.message : String(e)
    if (/No native build was found/.test(msg)) {
      fail(
        `HOOKRELAY_LMDB_NATIVE: lmdb has no native build for Node ${process.version} on ${process.platform}-${process.arch}: ` +
          `${msg.split('\n')[0]}. hookrelay runs on Node 20 on linux x64, arm64 or armv7: install Node 20 and run \`npm ci\` again.`,
      )
    }
    throw e
  }
}

function checkConfig(args: string[]): void {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: DEFAULT_CONFIG }, help: { type: 'boolean' } } })
  if (values.help) return out(HELP['check-config']!)
  const cfg = configOrExit(values.config, { serving: true })
  out(`${values.config}: ok (${Object.keys(cfg.sources).length} source(s), ${cfg.subscribers.length} subscriber(s), mirror ${cfg.mirror.enabled ? 'on' : 'off'})`)
}

async function send(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG },
      source: { type: 'string' },
      url: { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  if (values.help) return out(HELP.send!)
  const cfg = configOrExit(values.config)
  const names = Object.keys(cfg.sources)
  const name = values.source ?? (names.includes('runflow') ? 'runflow' : names[0])
  const source = name === undefined ? undefined : cfg.sources[name]
  if (!source) fail(`no source ${String(name)} in ${values.config}; sources: ${names.join(', ') || 'none'}`)
  let verify = source.verify
  if (verify.secrets.length === 0) {
    const stored = readGeneratedSecrets(cfg.data_dir)?.sources[source.name]
    if (stored) verify = { ...verify, secrets: [stored] }
  }
  const { signFor } = await import('./verify/sign.js')
  const body = positionals[0] !== undefined ? readFileSync(positionals[0]) : Buffer.from(sampleRunflowCallback())
  let headers: Record<string, string>
  try {
    headers = signFor(verify, body, Date.now())
  } catch (e) {
    fail(`${(e as Error).message}; set a secret for source ${source.name} or start the relay once so it generates one`)
  }
  const url = values.url ?? `http://${localBase(cfg)}${source.path}`
  let res: Response
  try {
    res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })
  } catch (e) {
    fail(`cannot reach ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}; is the relay running?`)
  }
  out(`${res.status} ${await res.text()}`)
  process.exitCode = res.ok ? 0 : 1
}

async function keygen(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { ed25519: { type: 'boolean' }, help: { type: 'boolean' } } })
  if (values.help) return out(HELP.keygen!)
  const { generateEd25519, generateSecret } = await import('./verify/keys.js')
  if (values.ed25519) {
    const pair = generateEd25519()
    out(`secret_key: ${pair.secretKey}`)
    out(`public_key: ${pair.publicKey}`)
  } else {
    out(generateSecret())
  }
}

async function healthcheck(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', default: DEFAULT_CONFIG }, url: { type: 'string' }, help: { type: 'boolean' } },
  })
  if (values.help) return out(HELP.healthcheck!)
  const url = values.url ?? `http://${localBase(configOrExit(values.config))}/readyz`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) })
    out(`${res.status} ${await res.text()}`)
    process.exitCode = res.status === 200 ? 0 : 1
  } catch (e) {
    process.stderr.write(`hookrelay: ${url}: ${(e as Error).message}\n`)
    process.exitCode = 1
  }
}

async function backup(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG },
      'data-dir': { type: 'string' },
      'no-compact': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  })
  if (values.help) return out(HELP.backup!)
  const dest = positionals[0]
  if (dest === undefined) fail(`name a destination directory\n\n${HELP.backup}`, 64)
  const { join, resolve } = await import('node:path')
  const dataDir = values['data-dir'] !== undefined ? resolve(values['data-dir']) : configOrExit(values.config).data_dir
  const { backupJournal } = await import('./journal/backup.js')
  const { chmodSync, copyFileSync, existsSync } = await import('node:fs')
  const { generatedSecretsPath, GENERATED_SECRETS_FILE } = await import('./config/generated.js')
  const destDir = resolve(dest)
  try {
    const r = await backupJournal(dataDir, destDir, !values['no-compact'])
    // The copy holds every callback body: as private as the journal itself.
    chmodSync(r.file, 0o600)
    const secrets = generatedSecretsPath(dataDir)
    if (existsSync(secrets)) {
      copyFileSync(secrets, join(destDir, GENERATED_SECRETS_FILE))
      chmodSync(join(destDir, GENERATED_SECRETS_FILE), 0o600)
    }
    out(`${r.file}: journal epoch ${r.epoch}, head ${r.head}`)
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e))
  }
}

async function tail(args: string[]): Promise<void> {
  if (args.includes('--help')) return out(HELP.tail!)
  const { runTail } = await import('./client/tail.js')
  await runTail(args, { defaultConfig: DEFAULT_CONFIG, configOrExit, localBase })
}

/** `--url` and `--token` for the API commands when not given: the config's listener and its first operator token. */
function apiDefaults(file: string | undefined, scheme: 'http' | 'ws'): { url?: string; token?: string } {
  const cfg = configOrExit(file ?? DEFAULT_CONFIG)
  const generated = readGeneratedSecrets(cfg.data_dir)?.subscribers ?? {}
  const withToken = cfg.subscribers.map((s) => ({ ...s, token: s.token || generated[s.name] || '' })).filter((s) => s.token !== '')
  const token = (withToken.find((s) => s.role === 'operator') ?? withToken[0])?.token
  return { url: `${scheme}://${localBase(cfg)}`, token }
}

async function destinations(args: string[]): Promise<void> {
  if (args.includes('--help')) return out(HELP.destinations!)
  const { runDestinations } = await import('./destinations/cli.js')
  const io = { out, err: (s: string) => void process.stderr.write(`${s}\n`) }
  process.exitCode = await runDestinations(args, io, (file) => apiDefaults(file, 'http'))
}

async function forward(args: string[]): Promise<void> {
  if (args.includes('--help')) return out(HELP.forward!)
  const { runForward } = await import('./destinations/forward.js')
  const io = { out, err: (s: string) => void process.stderr.write(`${s}\n`) }
  process.exitCode = await runForward(args, io, (file) => apiDefaults(file, 'ws'))
}

async function clusterStatus(args: string[]): Promise<void> {
  if (args.includes('--help')) return out(HELP['cluster-status']!)
  // Loaded only here: an LMDB relay never loads the NATS client.
  const { runClusterStatus } = await import('./journal/jetstream/cluster-status.js')
  const io = { out, err: (s: string) => void process.stderr.write(`${s}\n`) }
  process.exitCode = await runClusterStatus(args, io, (file) => configOrExit(file ?? DEFAULT_CONFIG))
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'serve':
      return serve(rest)
    case 'check-config':
      return checkConfig(rest)
    case 'send':
      return send(rest)
    case 'tail':
      return tail(rest)
    case 'keygen':
      return keygen(rest)
    case 'healthcheck':
      return healthcheck(rest)
    case 'backup':
      return backup(rest)
    case 'destinations':
      return destinations(rest)
    case 'forward':
      return forward(rest)
    case 'cluster-status':
      return clusterStatus(rest)
    case '--version':
    case '-v': {
      const { version } = JSON.parse(readFileSync(join(INSTALL_DIR, 'package.json'), 'utf8')) as { version: string }
      return out(`hookrelay ${version} (node ${process.version}, ${process.platform}-${process.arch})`)
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      return out(HELP.main!)
    default:
      fail(`unknown command ${cmd}\n\n${HELP.main}`, 64)
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) fail(`${e.message} (see --help)`, 64)
  fail(e instanceof Error ? (e.stack ?? e.message) : String(e))
})
