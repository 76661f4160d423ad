// Credentials for real nats-server processes: a NATS operator, an account and
// user JWTs signed with nkeys (the decentralised-auth "operator mode" that
// .creds files belong to), made here instead of with `nsc`, which Debian does
// not package. The JWT layout follows NATS's v2 claims: a header
// {"typ":"JWT","alg":"ed25519-nkey"}, claims with jti/iat/iss/sub/nats, and an
// ed25519 signature by the issuer's nkey, each part base64url.
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys'

const b64url = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url')
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

/** RFC 4648 base32 without padding, as NATS writes a jti. */
function base32(data: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of data) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

function jwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { jti: '', iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats }
  claims.jti = base32(createHash('sha256').update(JSON.stringify(claims)).digest())
  const signing = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`
  return `${signing}.${b64url(issuer.sign(new TextEncoder().encode(signing)))}`
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 }

/**
 * An operator with one account the server trusts (memory resolver). `credsFor('trusted')`
 * is a .creds file of a user of that account; `credsFor('unknown-account')` one of an
 * account the server has never heard of.
 */
export function natsCreds(): { serverConfig: string; credsFor: (which: 'trusted' | 'unknown-account') => string } {
  const operator = createOperator()
  const account = createAccount()
  const stranger = createAccount()
  const accountClaims = {
    limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    default_permissions: { pub: {}, sub: {} },
    type: 'account',
    version: 2,
  }
  const opJwt = jwt(operator, operator.getPublicKey(), 'hookrelay-test-operator', { type: 'operator', version: 2 })
  const accJwt = jwt(operator, account.getPublicKey(), 'hookrelay', accountClaims)
  // JetStream in operator mode needs a system account.
  const system = createAccount()
  const sysJwt = jwt(operator, system.getPublicKey(), 'SYS', { limits: UNLIMITED, default_permissions: { pub: {}, sub: {} }, type: 'account', version: 2 })
  const serverConfig = [
    `operator: ${opJwt}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    `resolver_preload: { ${account.getPublicKey()}: ${accJwt}, ${system.getPublicKey()}: ${sysJwt} }`,
  ].join('\n')
  const credsFor = (which: 'trusted' | 'unknown-account'): string => {
    const user = createUser()
    const issuer = which === 'trusted' ? account : stranger
    const userJwt = jwt(issuer, user.getPublicKey(), 'relay', { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user', version: 2 })
    return [
      '-----BEGIN NATS USER JWT-----',
      userJwt,
      '------END NATS USER JWT------',
      '',
      '************************* IMPORTANT *************************',
      'NKEY Seed printed below can be used to sign and prove identity.',
      '',
      '-----BEGIN USER NKEY SEED-----',
      text(user.getSeed()),
      '------END USER NKEY SEED------',
      '',
    ].join('\n')
  }
  return { serverConfig, credsFor }
}

/** A loopback port nothing listens on (bound, read, released). */
export async function freePortNotListening(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as { port: number }
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}
