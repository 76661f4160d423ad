// Connecting to a real nats-server with each kind of credential and TLS from
// journal.jetstream, and the start-up errors when that fails: which code,
// which servers, what to check.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createUser } from '@nats-io/nkeys'
import t, { type Test } from 'tap'
import type { JetStreamConfig } from '../src/config/types.js'
import { connectCluster, connectOptions } from '../src/journal/jetstream/options.js'
import { RelayError } from '../src/errors.js'
import { startNatsCluster } from './helpers/nats.js'
import { freePortNotListening, natsCreds } from './helpers/nats-auth.js'

function cfg(servers: string[], over: Partial<JetStreamConfig> = {}): JetStreamConfig {
  return { servers, stream: 'HOOKRELAY', replicas: 1, timeout_ms: 5000, duplicate_window_ms: 120_000, auth: { kind: 'none' }, tls: undefined, ...over }
}

/** The RelayError a connect throws (fails the test when it connects). */
async function refused(c: JetStreamConfig): Promise<RelayError> {
  try {
    const nc = await connectCluster(c, 'hookrelay-test')
    await nc.close()
  } catch (err) {
    if (err instanceof RelayError) return err
    throw err
  }
  throw new Error('expected the connect to fail')
}

/** Connects, proves the connection works (JetStream answers account info), closes. */
async function works(t: Test, c: JetStreamConfig): Promise<void> {
  const nc = await connectCluster(c, 'hookrelay-test')
  try {
    const rtt = await nc.rtt()
    t.ok(rtt >= 0, 'the server answers a ping')
    t.ok(nc.info?.server_id, 'connected to a server')
  } finally {
    await nc.close()
  }
}

t.test('token: the right one connects, a wrong or missing one is HOOKRELAY_JETSTREAM_AUTH', async (t) => {
  const nats = await startNatsCluster(t, { size: 1, dir: t.testdir(), extraConfig: 'authorization { token: "tok-s3cret" }' })
  await works(t, cfg(nats.urls, { auth: { kind: 'token', token: 'tok-s3cret' } }))
  const wrong = await refused(cfg(nats.urls, { auth: { kind: 'token', token: 'nope' } }))
  t.equal(wrong.code, 'HOOKRELAY_JETSTREAM_AUTH')
  t.match(wrong.message, new RegExp(`NATS at ${nats.urls[0]} refused the connection \\(.*[Aa]uthorization.*\\): the token was refused`))
  t.notMatch(wrong.message, /nope|tok-s3cret/, 'never echoes a token')
  const none = await refused(cfg(nats.urls))
  t.equal(none.code, 'HOOKRELAY_JETSTREAM_AUTH')
  t.match(none.message, /no credentials are configured/)
})

t.test('user + password and nkey seed file against one server with both kinds of users', async (t) => {
  const dir = t.testdir()
  const user = createUser()
  const seedFile = join(dir, 'relay.nk')
  writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()) + '\n')
  const other = createUser()
  const otherSeed = join(dir, 'other.nk')
  writeFileSync(otherSeed, new TextDecoder().decode(other.getSeed()))
  const nats = await startNatsCluster(t, {
    size: 1,
    dir,
    extraConfig: `authorization { users: [ { user: relay, password: "pw-1" }, { nkey: ${user.getPublicKey()} } ] }`,
  })
  await works(t, cfg(nats.urls, { auth: { kind: 'user', user: 'relay', password: 'pw-1' } }))
  const bad = await refused(cfg(nats.urls, { auth: { kind: 'user', user: 'relay', password: 'pw-2' } }))
  t.equal(bad.code, 'HOOKRELAY_JETSTREAM_AUTH')
  t.match(bad.message, /the user and password was refused/)
  t.notMatch(bad.message, /pw-2/)

  await works(t, cfg(nats.urls, { auth: { kind: 'nkey', seed_file: seedFile } }))
  const unknown = await refused(cfg(nats.urls, { auth: { kind: 'nkey', seed_file: otherSeed } }))
  t.equal(unknown.code, 'HOOKRELAY_JETSTREAM_AUTH', 'a valid seed the server does not know')
  t.match(unknown.message, /the nkey was refused/)
})

t.test('creds file (operator mode: operator, account and user JWTs) connects; a user of another account is refused', async (t) => {
  const dir = t.testdir()
  const { serverConfig, credsFor } = natsCreds()
  const nats = await startNatsCluster(t, { size: 1, dir, extraConfig: serverConfig })
  const good = join(dir, 'relay.creds')
  writeFileSync(good, credsFor('trusted'))
  await works(t, cfg(nats.urls, { auth: { kind: 'creds', file: good } }))
  const stranger = join(dir, 'stranger.creds')
  writeFileSync(stranger, credsFor('unknown-account'))
  const e = await refused(cfg(nats.urls, { auth: { kind: 'creds', file: stranger } }))
  t.equal(e.code, 'HOOKRELAY_JETSTREAM_AUTH')
  t.match(e.message, /the creds file was refused/)
})

t.test('files that vanished or went bad since check-config are HOOKRELAY_JETSTREAM_FILE before any connect', async (t) => {
  const dir = t.testdir()
  const servers = ['nats://127.0.0.1:1']
  const missing = await connectOptions(cfg(servers, { auth: { kind: 'nkey', seed_file: join(dir, 'gone.nk') } }), 'x').catch((e: unknown) => e)
  t.match(missing, { code: 'HOOKRELAY_JETSTREAM_FILE', message: /journal.jetstream.nkey_seed_file .*gone\.nk cannot be read \(ENOENT\)/ })
  writeFileSync(join(dir, 'bad.nk'), 'SUAAAA\n')
  const badSeed = await connectOptions(cfg(servers, { auth: { kind: 'nkey', seed_file: join(dir, 'bad.nk') } }), 'x').catch((e: unknown) => e)
  t.match(badSeed, { code: 'HOOKRELAY_JETSTREAM_FILE', message: /does not hold a valid nkey seed/ })
  writeFileSync(join(dir, 'bad.creds'), '-----BEGIN NATS USER JWT-----\nnot a jwt\n------END NATS USER JWT------\n')
  const badCreds = await connectOptions(cfg(servers, { auth: { kind: 'creds', file: join(dir, 'bad.creds') } }), 'x').catch((e: unknown) => e)
  t.match(badCreds, { code: 'HOOKRELAY_JETSTREAM_FILE', message: /credentials_file .*bad\.creds is not a usable \.creds file/ })
  const tls = await connectOptions(cfg(servers, { tls: { ca_file: join(dir, 'ca.pem'), cert_file: '', key_file: '' } }), 'x').catch((e: unknown) => e)
  t.match(tls, { code: 'HOOKRELAY_JETSTREAM_FILE', message: /journal.jetstream.tls.ca_file .*ca\.pem cannot be read/ })
})

t.test('no server reachable: HOOKRELAY_JOURNAL_CONNECT naming every server tried', async (t) => {
  const [a, b] = [await freePortNotListening(), await freePortNotListening()]
  const servers = [`nats://127.0.0.1:${a}`, `nats://127.0.0.1:${b}`]
  const e = await refused(cfg(servers, { timeout_ms: 2000 }))
  t.equal(e.code, 'HOOKRELAY_JOURNAL_CONNECT')
  t.match(e.message, `cannot connect to NATS at ${servers.join(', ')}`)
  t.match(e.message, /check that nats-server runs there with JetStream on/)
})

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in `dir`. */
function makePki(dir: string): Record<'ca' | 'caKey' | 'srv' | 'srvKey' | 'cli' | 'cliKey' | 'otherCa', string> {
  const f = (n: string) => join(dir, n)
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  ssl('req', '-x509', ...ec, '-subj', '/CN=hookrelay test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2')
  ssl('req', '-x509', ...ec, '-subj', '/CN=some other CA', '-keyout', f('other.key'), '-out', f('other.pem'), '-days', '2')
  writeFileSync(f('srv.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  writeFileSync(f('cli.ext'), 'extendedKeyUsage=clientAuth\n')
  for (const [name, cn] of [['srv', '127.0.0.1'], ['cli', 'hookrelay']] as const) {
    ssl('req', ...ec, '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`))
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(`${name}.ext`))
  }
  return { ca: f('ca.pem'), caKey: f('ca.key'), srv: f('srv.pem'), srvKey: f('srv.key'), cli: f('cli.pem'), cliKey: f('cli.key'), otherCa: f('other.pem') }
}

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

t.test('TLS: CA file and client certificate against a server that verifies clients', { skip: haveOpenssl() ? false : 'openssl is not installed (apt-get install openssl)' }, async (t) => {
  const dir = t.testdir()
  const pki = makePki(dir)
  const nats = await startNatsCluster(t, {
    size: 1,
    dir,
    extraConfig: `tls { cert_file: "${pki.srv}", key_file: "${pki.srvKey}", ca_file: "${pki.ca}", verify: true, timeout: 5 }`,
  })
  const tlsUrls = nats.urls.map((u) => u.replace('nats://', 'tls://'))
  await works(t, cfg(tlsUrls, { tls: { ca_file: pki.ca, cert_file: pki.cli, key_file: pki.cliKey } }))
  await works(t, cfg(nats.urls, { tls: { ca_file: pki.ca, cert_file: pki.cli, key_file: pki.cliKey } }))

  const wrongCa = await refused(cfg(tlsUrls, { tls: { ca_file: pki.otherCa, cert_file: pki.cli, key_file: pki.cliKey } }))
  t.equal(wrongCa.code, 'HOOKRELAY_JOURNAL_CONNECT')
  t.match(wrongCa.message, /check journal.jetstream.tls \(ca_file must hold the CA/)

  const noCa = await refused(cfg(tlsUrls, { tls: { ca_file: '', cert_file: pki.cli, key_file: pki.cliKey } }))
  t.equal(noCa.code, 'HOOKRELAY_JOURNAL_CONNECT', 'the system CAs do not trust a private CA')
  t.match(noCa.message, /journal.jetstream.tls/)

  const noClientCert = await refused(cfg(tlsUrls, { timeout_ms: 3000, tls: { ca_file: pki.ca, cert_file: '', key_file: '' } }))
  t.equal(noClientCert.code, 'HOOKRELAY_JOURNAL_CONNECT', 'the server wants a client certificate')
})

t.test('TLS asked for (tls:// or a tls block) against a server without TLS is refused, never spoken in clear', async (t) => {
  const nats = await startNatsCluster(t, { size: 1, dir: t.testdir() })
  const e = await refused(cfg(nats.urls.map((u) => u.replace('nats://', 'tls://'))))
  t.equal(e.code, 'HOOKRELAY_JOURNAL_CONNECT')
  t.match(e.message, /tls/i)
  const opts = await connectOptions(cfg(nats.urls), 'x')
  t.equal(opts.tls, undefined, 'plain nats:// and no tls block: no TLS options')
})
