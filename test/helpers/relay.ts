import { hash } from 'node:crypto'
import { pino } from 'pino'
import { loadConfigText } from '../../src/config/load.js'
import type { Config } from '../../src/config/types.js'
import type { IngestResult } from '../../src/journal/types.js'
import { Relay, type RelayOptions } from '../../src/relay.js'
import { signRunflow } from '../../src/verify/sign.js'

export const SECRET = 'whsec_hookrelay_test_secret_0123456789'
export const SECRET_OLD = 'whsec_hookrelay_rotated_out_secret_987'
export const TOKEN = 'hr_test_token_app'
export const TOKEN_GH = 'hr_test_token_github_only'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

/**
 * Ingest threads of the relays the tests start: 1 (the main thread alone)
 * unless HOOKRELAY_TEST_THREADS says otherwise, so that the black-box suites
 * can be run again with `HOOKRELAY_TEST_THREADS=2`.
 */
export function testThreads(): number {
  const n = Number(process.env.HOOKRELAY_TEST_THREADS ?? '1')
  return Number.isInteger(n) && n >= 1 ? n : 1
}

/** `extra` with `http.threads` set (into its `http: { … }` when it has one), unless it sets it itself. */
export function withThreads(extra: string, threads = testThreads()): string {
  if (/\bthreads:/.test(extra)) return extra
  const flow = /^http:\s*\{/m
  if (flow.test(extra)) return extra.replace(flow, (m) => `${m} threads: ${threads},`)
  return `${extra}\nhttp: { threads: ${threads} }`
}

/** The config the black-box tests run: the default config's shape on port 0, plus a GitHub source. */
export function testConfigYaml(dataDir: string, extra = '', threads?: number): string {
  return `
listen: { host: 127.0.0.1, port: 0 }
data_dir: ${dataDir}
sources:
  runflow:
    path: /webhook/runflow
    verify: { scheme: runflow, secrets: ["${SECRET}", "${SECRET_OLD}"] }
    max_body: 64kb
  gh:
    path: /webhook/github
    verify: { scheme: github, secrets: ["gh-secret"] }
subscribers:
  - name: app
    token: ${TOKEN}
    sources: ["*"]
  - name: ghonly
    token: ${TOKEN_GH}
    sources: ["gh"]
log: { level: silent }
${withThreads(extra, threads)}`
}

export function testConfig(dataDir: string, extra = ''): Config {
  return loadConfigText(testConfigYaml(dataDir, extra), '<test>', { env: {} })
}

export const silent = pino({ level: 'silent' })

/**
 * The journal backend the black-box tests run on: LMDB unless
 * HOOKRELAY_TEST_BACKEND=jetstream, then the NATS cluster at
 * HOOKRELAY_TEST_NATS (comma-separated URLs; test/jetstream-blackbox.test.ts
 * starts one and sets both). Each data dir gets a stream of its own, so a
 * relay restarted on the same dir finds its journal again.
 */
export function testBackend(): 'lmdb' | 'jetstream' {
  return process.env.HOOKRELAY_TEST_BACKEND === 'jetstream' ? 'jetstream' : 'lmdb'
}

/** `config` moved onto the JetStream cluster at `servers` (stream named after `dataDir`). */
export function onJetStream(config: Config, servers: string[], dataDir: string, opts: { replicas?: number; stream?: string } = {}): Config {
  const journal = {
    ...config.journal,
    // A stream reserves its max_bytes on every node: the test nodes have 2 GB each.
    retention: { ...config.journal.retention, max_bytes: Math.min(config.journal.retention.max_bytes, 32 * 1024 * 1024) },
    backend: 'jetstream',
    jetstream: {
      servers,
      stream: opts.stream ?? `HR_${hash('sha256', dataDir, 'hex').slice(0, 16)}`,
      replicas: opts.replicas ?? 3,
      timeout_ms: 5000,
      duplicate_window_ms: 120_000,
      auth: { kind: 'none' },
      tls: undefined,
    },
  } satisfies Config['journal']
  return { ...config, journal }
}

/** `config` on the backend testBackend() names. */
export function withTestBackend(config: Config, dataDir: string): Config {
  if (testBackend() !== 'jetstream') return config
  const servers = (process.env.HOOKRELAY_TEST_NATS ?? '').split(',').filter((s) => s !== '')
  if (servers.length === 0) throw new Error('HOOKRELAY_TEST_BACKEND=jetstream needs HOOKRELAY_TEST_NATS')
  return onJetStream(config, servers, dataDir)
}

/** Starts a relay on a fresh data dir (or `dir`), closed at teardown; `edit` rewrites the YAML first. */
export async function startTestRelay(
  t: TapLike,
  opts: { dir?: string; extra?: string; relay?: RelayOptions; edit?: (yaml: string) => string; threads?: number } = {},
): Promise<{ relay: Relay; base: string; dir: string }> {
  const dir = opts.dir ?? t.testdir()
  const yaml = testConfigYaml(dir, opts.extra, opts.threads)
  const config = withTestBackend(loadConfigText(opts.edit ? opts.edit(yaml) : yaml, '<test>', { env: {} }), dir)
  const relay = await Relay.start(config, { logger: silent, processMetrics: false, ...opts.relay })
  t.teardown(() => relay.close())
  return { relay, base: `http://127.0.0.1:${relay.port}`, dir }
}

export interface Answer {
  status: number
  json: any
  headers: Headers
}

/** The answer with its body parsed as JSON when it is JSON (else the text). */
async function answer(res: Response): Promise<Answer> {
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return { status: res.status, json, headers: res.headers }
}

export async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return answer(await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } }))
}

/** Posts a Runflow callback signed with `secret` (default SECRET). */
export function postRunflow(base: string, body: string | Buffer, secret = SECRET): Promise<Answer> {
  return post(`${base}/webhook/runflow`, body, signRunflow(secret, body))
}

export async function get(url: string, token?: string): Promise<Answer> {
  return answer(await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }))
}

/**
 * Journals a Runflow-shaped callback straight into the journal, without HTTP:
 * bulk set-up for stream and paging tests. `body` defaults to a small callback
 * naming `event` and `key`.
 */
export function ingestDirect(
  relay: Relay,
  key: string,
  opts: { source?: string; event?: string; body?: string } = {},
): Promise<IngestResult> {
  const source = opts.source ?? 'runflow'
  const event = opts.event ?? 'run.completed'
  const body = Buffer.from(opts.body ?? `{"event":${JSON.stringify(event)},"run_id":${JSON.stringify(key)}}`)
  return relay.journal.append({
    source,
    event,
    key,
    status: 'succeeded',
    body,
    sha256: hash('sha256', body, 'hex'),
    receivedAt: Date.now(),
    requestId: undefined,
    json: JSON.parse(body.toString()),
  })
}
