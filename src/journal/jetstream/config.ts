/**
 * The `journal.jetstream` block of `hookrelay.yaml` (cluster mode): its spec,
 * the checks that need the rest of the file or the disk (credential and TLS
 * files, the duplicate window against retention), and the mapping onto
 * `JetStreamConfig`. No NATS client code is loaded from here: an LMDB relay
 * never loads `@nats-io/*`.
 */
import { readFileSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import type { ConfigFile } from '../../config/schema.js'
import { duration, fileErrorReason, list, num, obj, secret, str, type Spec } from '../../config/spec.js'
import type { JetStreamConfig } from '../../config/types.js'
import { formatDuration } from '../../config/units.js'
import type { Walk } from '../../config/walk.js'

/** Letters, digits, `_` and `-`: the name is also a subject token and the prefix of the KV buckets' names. */
const STREAM_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/
/** An nkey user seed: base32, `SU` + 56 characters. */
const USER_SEED_RE = /^SU[A-Z2-7]{56}$/

function natsUrl(s: string): void {
  let url: URL | undefined
  try {
    url = new URL(s)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'nats:' && url.protocol !== 'tls:') || url.hostname === '') {
    throw new Error(`"${s}" is not a nats:// or tls:// URL; write it like nats://127.0.0.1:4222`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new Error('holds credentials; remove them from the URL and set journal.jetstream.user and password (or token) instead')
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new Error(`"${s}" has a path or query; a server is only scheme://host:port, like nats://127.0.0.1:4222`)
  }
}

function streamName(s: string): void {
  if (!STREAM_NAME_RE.test(s)) {
    throw new Error(
      `"${s}" is not a valid stream name; use 1-64 letters, digits, "_" and "-" (it is also the subject prefix and the KV buckets' prefix), e.g. HOOKRELAY`,
    )
  }
}

/** A block whose presence matters: absent is `undefined`, present (even `{}`) is the walked object. */
function optionalBlock<T>(spec: Spec<T>): Spec<T | undefined> {
  return { check: (node, path, w) => spec.check(node, path, w), absent: () => undefined }
}

const tlsSpec = optionalBlock(
  obj({
    ca_file: str(),
    cert_file: str(),
    key_file: str(),
  }),
)

export const jetstreamSpec = optionalBlock(
  obj({
    servers: list(str({ check: natsUrl })),
    stream: str({ default: 'HOOKRELAY', check: streamName }),
    replicas: num({ default: 3, min: 1, max: 5 }),
    timeout: duration({ default: '5s', min: '100ms', max: '5m' }),
    duplicate_window: duration({ default: '2m', min: '1s', max: '7d' }),
    token: secret(),
    user: str(),
    password: secret(),
    nkey_seed_file: str(),
    credentials_file: str(),
    tls: tlsSpec,
  }),
)

type JetStreamFile = NonNullable<typeof jetstreamSpec extends Spec<infer T> ? T : never>

const AT = 'journal.jetstream'

/** Checks that span keys or read files. Reports into `w`; tolerates values left undefined by earlier problems. */
export function checkJetStream(file: ConfigFile, w: Walk): void {
  const { backend, jetstream: js } = file.journal
  if (backend === 'lmdb') {
    if (js !== undefined && !w.reported(AT)) {
      // Refused rather than ignored: an operator who wrote the block but forgot `backend` must not run one-box by surprise.
      w.report(AT, 'is set but journal.backend is lmdb (the default); set journal.backend: jetstream, or remove the block')
    }
    return
  }
  if (js === undefined) {
    if (!w.reported(AT)) {
      w.report('journal.backend', 'is jetstream but journal.jetstream is missing; add journal.jetstream: { servers: ["nats://127.0.0.1:4222"] }')
    }
    return
  }
  if (js.servers === undefined) {
    if (!w.reported(`${AT}.servers`)) w.report(AT, 'missing servers; add servers: ["nats://127.0.0.1:4222", ...] (the cluster\'s nodes)')
  } else if (js.servers.length === 0 && !w.reported(`${AT}.servers`) && !w.reported(`${AT}.servers[0]`)) {
    w.report(`${AT}.servers`, 'lists no server; add at least one, like nats://127.0.0.1:4222')
  }

  const maxAge = file.journal.retention.max_age
  if (js.duplicate_window > maxAge && !w.reported(`${AT}.duplicate_window`)) {
    w.report(
      `${AT}.duplicate_window`,
      `${formatDuration(js.duplicate_window)} is longer than journal.retention.max_age (${formatDuration(maxAge)}); JetStream refuses a duplicate window past the stream's max_age: lower it`,
    )
  }

  if (js.nkey_seed_file !== undefined) {
    checkFile(w, `${AT}.nkey_seed_file`, js.nkey_seed_file, (text) => {
      if (!USER_SEED_RE.test(text.trim())) {
        return 'does not hold an nkey user seed (one line SU... of 58 characters, as `nsc` or `nk -gen user` writes it)'
      }
      return undefined
    })
  }
  if (js.credentials_file !== undefined) {
    checkFile(w, `${AT}.credentials_file`, js.credentials_file, (text) => {
      if (!text.includes('-----BEGIN NATS USER JWT-----') || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
        return 'is not a NATS .creds file (a user JWT and an nkey seed, as `nsc generate creds` writes it)'
      }
      return undefined
    })
  }

  // At most one way to authenticate.
  const given: string[] = []
  if (js.token !== '' || w.reported(`${AT}.token`) || w.reported(`${AT}.token_file`)) given.push('token')
  if (js.user !== undefined || js.password !== '') given.push('user')
  if (js.nkey_seed_file !== undefined) given.push('nkey_seed_file')
  if (js.credentials_file !== undefined) given.push('credentials_file')
  if (given.length > 1) {
    const later = [...given].sort((a, b) => w.offsetOf(keyPath(b)) - w.offsetOf(keyPath(a)))[0]!
    w.report(keyPath(later), `${given.join(' and ')} are ${given.length === 2 ? 'both' : 'all'} set; keep one way to authenticate (token, user + password, nkey_seed_file or credentials_file)`)
  }
  if (js.user !== undefined && js.password === '' && !w.reported(`${AT}.password`) && !w.reported(`${AT}.password_file`)) {
    w.report(`${AT}.user`, 'is set without a password; add password (or password_file)')
  }
  if (js.user === undefined && js.password !== '' && !w.reported(`${AT}.user`)) {
    w.report(`${AT}.password`, 'is set without a user; add user')
  }
  if (js.user === '' && !w.reported(`${AT}.user`)) w.report(`${AT}.user`, 'is empty; give the NATS user name or remove the key')

  const tls = js.tls
  if (tls !== undefined) {
    const pem = (what: string) => (text: string) =>
      /-----BEGIN [A-Z0-9 ]+-----/.test(text) ? undefined : `is not a PEM file (no -----BEGIN ...----- line); give the ${what} in PEM form`
    if (tls.ca_file !== undefined) checkFile(w, `${AT}.tls.ca_file`, tls.ca_file, pem('CA certificate'))
    if (tls.cert_file !== undefined) checkFile(w, `${AT}.tls.cert_file`, tls.cert_file, pem('client certificate'))
    if (tls.key_file !== undefined) checkFile(w, `${AT}.tls.key_file`, tls.key_file, pem('client key'))
    if (tls.cert_file !== undefined && tls.key_file === undefined && !w.reported(`${AT}.tls.key_file`)) {
      w.report(`${AT}.tls.cert_file`, 'is set without key_file; a client certificate needs its key: add key_file')
    }
    if (tls.key_file !== undefined && tls.cert_file === undefined && !w.reported(`${AT}.tls.cert_file`)) {
      w.report(`${AT}.tls.key_file`, 'is set without cert_file; add the client certificate as cert_file')
    }
  }
}

function keyPath(kind: string): string {
  if (kind === 'token') return `${AT}.token`
  if (kind === 'user') return `${AT}.user`
  return `${AT}.${kind}`
}

/** Reports when `name` (relative to the working directory) cannot be read, is empty, or `content` finds it wrong. */
function checkFile(w: Walk, path: string, name: string, content: (text: string) => string | undefined): void {
  if (w.reported(path)) return
  if (name.trim() === '') {
    w.report(path, 'is empty; give a file path or remove the key')
    return
  }
  const file = resolvePath(w.cwd, name)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    w.report(path, `cannot read ${file} (${fileErrorReason(err)}); create it, or fix the path (relative paths start at the working directory)`)
    return
  }
  const problem = text.trim() === '' ? 'is empty' : content(text)
  if (problem !== undefined) w.report(path, `${file} ${problem}`)
}

/** Maps the validated block onto `JetStreamConfig`; file paths become absolute. Call only when the walk found no problems. */
export function toJetStream(js: JetStreamFile | undefined, cwd: string): JetStreamConfig | undefined {
  if (js === undefined) return undefined
  const abs = (p: string | undefined): string => (p === undefined ? '' : resolvePath(cwd, p))
  let auth: JetStreamConfig['auth'] = { kind: 'none' }
  if (js.token !== '') auth = { kind: 'token', token: js.token }
  else if (js.user !== undefined) auth = { kind: 'user', user: js.user, password: js.password }
  else if (js.nkey_seed_file !== undefined) auth = { kind: 'nkey', seed_file: abs(js.nkey_seed_file) }
  else if (js.credentials_file !== undefined) auth = { kind: 'creds', file: abs(js.credentials_file) }
  return {
    servers: js.servers ?? [],
    stream: js.stream,
    replicas: js.replicas,
    timeout_ms: js.timeout,
    duplicate_window_ms: js.duplicate_window,
    auth,
    tls: js.tls === undefined ? undefined : { ca_file: abs(js.tls.ca_file), cert_file: abs(js.tls.cert_file), key_file: abs(js.tls.key_file) },
  }
}
