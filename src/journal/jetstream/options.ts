/**
 * NATS connection options from `journal.jetstream`: servers, credentials and
 * TLS, with files read here so that a missing or unreadable one is a clear
 * start-up error, and `connectCluster`, which turns a failed first connect into
 * one that says which servers were tried and what to check.
 *
 * Import this module only when the backend is `jetstream` (dynamically): it
 * loads the NATS client.
 */
import { readFileSync } from 'node:fs'
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  type NatsConnection,
  type NodeConnectionOptions,
  type TlsOptions,
} from '@nats-io/transport-node'
import type { JetStreamConfig } from '../../config/types.js'
import { RelayError } from '../../errors.js'

/**
 * The options `connect()` takes for `cfg`; `name` is the client name the
 * servers show (e.g. `hookrelay@host:pid`). Reconnects forever after the first
 * connect: a relay rides out a node's restart instead of exiting.
 *
 * @throws {RelayError} `HOOKRELAY_JETSTREAM_FILE` when a seed, creds or TLS
 *   file cannot be read or does not hold what it should.
 */
export async function connectOptions(cfg: JetStreamConfig, name: string): Promise<NodeConnectionOptions> {
  const opts: NodeConnectionOptions = {
    servers: cfg.servers,
    name,
    timeout: cfg.timeout_ms,
    maxReconnectAttempts: -1,
  }
  const auth = cfg.auth
  if (auth.kind === 'token') opts.token = auth.token
  else if (auth.kind === 'user') {
    opts.user = auth.user
    opts.pass = auth.password
  } else if (auth.kind === 'nkey') {
    const seed = readText(auth.seed_file, 'journal.jetstream.nkey_seed_file').trim()
    try {
      // Checked here so that a bad seed is a start-up error, not an authentication failure later.
      nkeys.fromSeed(new TextEncoder().encode(seed))
    } catch (err) {
      throw new RelayError('HOOKRELAY_JETSTREAM_FILE', `journal.jetstream.nkey_seed_file ${auth.seed_file} does not hold a valid nkey seed (${(err as Error).message})`, { cause: err })
    }
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed))
  } else if (auth.kind === 'creds') {
    const text = readText(auth.file, 'journal.jetstream.credentials_file')
    const authenticator = credsAuthenticator(new TextEncoder().encode(text))
    try {
      // Parse once now: the authenticator parses lazily, on the server's challenge.
      authenticator('')
    } catch (err) {
      throw new RelayError('HOOKRELAY_JETSTREAM_FILE', `journal.jetstream.credentials_file ${auth.file} is not a usable .creds file (${(err as Error).message})`, { cause: err })
    }
    opts.authenticator = authenticator
  }
  const wantsTls = cfg.tls !== undefined || cfg.servers.some((s) => s.startsWith('tls://'))
  if (wantsTls) {
    const tls: TlsOptions = {}
    const t = cfg.tls
    if (t !== undefined) {
      if (t.ca_file !== '') tls.ca = readText(t.ca_file, 'journal.jetstream.tls.ca_file')
      if (t.cert_file !== '') tls.cert = readText(t.cert_file, 'journal.jetstream.tls.cert_file')
      if (t.key_file !== '') tls.key = readText(t.key_file, 'journal.jetstream.tls.key_file')
    }
    // Set (even empty): a server that offers no TLS is refused instead of spoken to in clear.
    opts.tls = tls
  }
  return opts
}

/**
 * Connects to the cluster with `cfg`'s servers and credentials.
 *
 * @throws {RelayError} `HOOKRELAY_JETSTREAM_FILE` (see `connectOptions`),
 *   `HOOKRELAY_JETSTREAM_AUTH` when the servers refuse the credentials,
 *   `HOOKRELAY_JOURNAL_CONNECT` when no server could be reached or TLS failed.
 * @example
 *   const nc = await connectCluster(config.journal.jetstream, `hookrelay@${hostname()}`)
 */
export async function connectCluster(cfg: JetStreamConfig, name: string): Promise<NatsConnection> {
  const opts = await connectOptions(cfg, name)
  try {
    return await connect(opts)
  } catch (err) {
    throw connectError(err, cfg)
  }
}

function connectError(err: unknown, cfg: JetStreamConfig): RelayError {
  const e = err as Error & { code?: string }
  const tried = cfg.servers.join(', ')
  const reason = describeCause(e)
  if (/authorization|authentication|auth(entication)? (violation|expired)/i.test(reason) || e.name === 'AuthorizationError') {
    const how = cfg.auth.kind === 'none' ? 'no credentials are configured' : `the ${authName(cfg.auth.kind)} was refused`
    return new RelayError(
      'HOOKRELAY_JETSTREAM_AUTH',
      `NATS at ${tried} refused the connection (${reason}): ${how}; check journal.jetstream's credentials against the servers' authorization block`,
      { cause: err },
    )
  }
  let hint = 'check that nats-server runs there with JetStream on, and that this machine can reach it'
  if (/tls|certificate|self[- ]signed|SSL|handshake/i.test(reason)) {
    hint = 'check journal.jetstream.tls (ca_file must hold the CA that signed the servers\' certificates; cert_file/key_file when they verify clients) and the servers\' tls block'
  } else if (/timeout/i.test(reason)) {
    hint = `no answer within journal.jetstream.timeout (${cfg.timeout_ms} ms); ${hint}`
  }
  return new RelayError('HOOKRELAY_JOURNAL_CONNECT', `cannot connect to NATS at ${tried} (${reason}); ${hint}`, { cause: err })
}

/** The error's message with its causes (nats.js wraps socket errors). */
function describeCause(e: Error & { code?: string }): string {
  const parts: string[] = []
  let cur: unknown = e
  for (let i = 0; i < 4 && cur instanceof Error; i++) {
    const m = cur.message || (cur as { code?: string }).code || cur.name
    if (m !== '' && !parts.includes(m)) parts.push(m)
    cur = cur.cause
  }
  return parts.join(': ') || String(e)
}

function authName(kind: JetStreamConfig['auth']['kind']): string {
  if (kind === 'token') return 'token'
  if (kind === 'user') return 'user and password'
  if (kind === 'nkey') return 'nkey'
  return 'creds file'
}

function readText(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new RelayError('HOOKRELAY_JETSTREAM_FILE', `${key} ${file} cannot be read (${code}); check-config reports where it is set`, { cause: err })
  }
}
