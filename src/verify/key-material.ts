import { createSecretKey, type KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'
import { RelayError } from '../errors.js'
import type { SchemeName } from '../config/types.js'

/** Prefix of a Standard Webhooks HMAC secret (also used, literally, by Runflow). */
export const SECRET_PREFIX = 'whsec_'
/** Prefix of a Standard Webhooks ed25519 public key. */
export const PUBLIC_KEY_PREFIX = 'whpk_'
/** Prefix of a Standard Webhooks ed25519 secret key. */
export const SECRET_KEY_PREFIX = 'whsk_'

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Decodes standard, padded base64 and refuses anything `Buffer.from` would
 * silently skip or truncate (stray characters, missing padding, non-zero
 * trailing bits), so that a mistyped secret fails at start, not at the first
 * callback.
 *
 * @example
 *   decodeBase64Strict('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')?.length // 24
 *   decodeBase64Strict('not base64!')                            // undefined
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64')
  return bytes.toString('base64') === text ? bytes : undefined
}

function badSecret(message: string): RelayError {
  return new RelayError('HOOKRELAY_CONFIG_BAD_SECRET', message)
}

/**
 * HMAC keys for the schemes that use the configured string itself as the key
 * (runflow, github, stripe): a `whsec_...` secret is used as-is, no decoding,
 * as in the senders' own samples. Built once, at construction.
 *
 * @throws RelayError `HOOKRELAY_CONFIG_NO_SECRET` when the list is empty,
 *   `HOOKRELAY_CONFIG_BAD_SECRET` for an empty string.
 */
export function literalHmacKeys(scheme: SchemeName, secrets: readonly string[]): KeyObject[] {
  if (secrets.length === 0) {
    throw new RelayError(
      'HOOKRELAY_CONFIG_NO_SECRET',
      `${scheme}: no secret configured; set verify.secrets (or let the first start generate one)`,
    )
  }
  return secrets.map((secret, i) => {
    if (typeof secret !== 'string' || secret === '') {
      throw badSecret(`${scheme}: secrets[${i}] is empty; remove it or give the sender's signing secret`)
    }
    return createSecretKey(Buffer.from(secret, 'utf8'))
  })
}

/**
 * The HMAC key of a Standard Webhooks `whsec_<base64>` secret: the bytes
 * after the prefix, base64-decoded.
 *
 * @throws RelayError `HOOKRELAY_CONFIG_BAD_SECRET` when the secret is not `whsec_` + valid base64.
 */
export function standardWebhooksHmacKey(secret: string, index = 0): KeyObject {
  const bytes = typeof secret === 'string' && secret.startsWith(SECRET_PREFIX)
    ? decodeBase64Strict(secret.slice(SECRET_PREFIX.length))
    : undefined
  if (bytes === undefined) {
    // Never echo the secret itself: messages end up in logs.
    throw badSecret(
      `standard-webhooks: secrets[${index}] is not whsec_<base64>; use the signing secret exactly as the sender shows it`,
    )
  }
  return createSecretKey(bytes)
}

/**
 * The 32 bytes of a `whpk_<base64>` ed25519 public key.
 *
 * @throws RelayError `HOOKRELAY_CONFIG_BAD_PUBLIC_KEY` when it is not `whpk_` + base64 of 32 bytes.
 */
export function ed25519PublicKey(publicKey: string, index = 0): Uint8Array {
  const bytes = typeof publicKey === 'string' && publicKey.startsWith(PUBLIC_KEY_PREFIX)
    ? decodeBase64Strict(publicKey.slice(PUBLIC_KEY_PREFIX.length))
    : undefined
  if (bytes === undefined || bytes.length !== nacl.sign.publicKeyLength) {
    throw new RelayError(
      'HOOKRELAY_CONFIG_BAD_PUBLIC_KEY',
      `standard-webhooks: public_keys[${index}] is not whpk_<base64 of 32 bytes>; give the sender's ed25519 public key (hookrelay keygen prints one)`,
    )
  }
  return bytes
}

/**
 * The 64-byte tweetnacl signing key of a `whsk_<base64>` ed25519 secret key.
 * Accepts the 64-byte form (`hookrelay keygen`, tweetnacl) and the 32-byte
 * seed form the Standard Webhooks Go library uses.
 *
 * @throws RelayError `HOOKRELAY_CONFIG_BAD_SECRET` otherwise.
 */
export function ed25519SigningKey(secretKey: string): Uint8Array {
  const bytes = typeof secretKey === 'string' && secretKey.startsWith(SECRET_KEY_PREFIX)
    ? decodeBase64Strict(secretKey.slice(SECRET_KEY_PREFIX.length))
    : undefined
  if (bytes?.length === nacl.sign.secretKeyLength) return bytes
  if (bytes?.length === nacl.sign.seedLength) return nacl.sign.keyPair.fromSeed(bytes).secretKey
  throw badSecret('standard-webhooks: the secret key is not whsk_<base64 of 64 bytes (or a 32-byte seed)>')
}
