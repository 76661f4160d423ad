import { randomBytes } from 'node:crypto'
import nacl from 'tweetnacl'
import { PUBLIC_KEY_PREFIX, SECRET_KEY_PREFIX, SECRET_PREFIX } from './key-material.js'

/**
 * A new webhook secret: `whsec_` + base64 of 24 random bytes (the Standard
 * Webhooks minimum). It is valid for every scheme: runflow, github and stripe
 * use the string literally, standard-webhooks decodes the base64.
 *
 * @example
 *   generateSecret() // 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
 */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString('base64')
}

/** An ed25519 key pair in Standard Webhooks serialization. */
export interface Ed25519KeyPair {
  /** `whsk_` + base64 of the 64-byte tweetnacl secret key (seed followed by public key); the sender keeps it. */
  secretKey: string
  /** `whpk_` + base64 of the 32-byte public key; goes into `verify.public_keys`. */
  publicKey: string
}

/**
 * A new ed25519 key pair for Standard Webhooks `v1a` signatures.
 *
 * @example
 *   const { secretKey, publicKey } = generateEd25519()
 *   // secretKey: 'whsk_...' (88 base64 chars), publicKey: 'whpk_...' (44 base64 chars)
 */
export function generateEd25519(): Ed25519KeyPair {
  // Seeded from node:crypto rather than relying on tweetnacl's PRNG detection.
  const pair = nacl.sign.keyPair.fromSeed(randomBytes(nacl.sign.seedLength))
  return {
    secretKey: SECRET_KEY_PREFIX + Buffer.from(pair.secretKey).toString('base64'),
    publicKey: PUBLIC_KEY_PREFIX + Buffer.from(pair.publicKey).toString('base64'),
  }
}
