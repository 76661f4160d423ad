import type { VerifyConfig } from '../config/types.js'
import { RelayError } from '../errors.js'
import { GithubVerifier } from './github.js'
import { HmacVerifier } from './hmac.js'
import { RunflowVerifier } from './runflow.js'
import { StandardWebhooksVerifier } from './standard-webhooks.js'
import { StripeVerifier } from './stripe.js'
import type { Verifier } from './types.js'

export type { Described, HeaderBag, Verifier, VerifyOutcome } from './types.js'
export { GithubVerifier } from './github.js'
export { HmacVerifier, HMAC_PRESET_KEYS, resolveHmac, signHmac } from './hmac.js'
export { RunflowVerifier } from './runflow.js'
export { StandardWebhooksVerifier } from './standard-webhooks.js'
export { StripeVerifier } from './stripe.js'
export { DEFAULT_TOLERANCE_MS } from './timestamp.js'
export { generateEd25519, generateSecret, type Ed25519KeyPair } from './keys.js'
export {
  signFor,
  signGithub,
  signRunflow,
  signStandardWebhooks,
  signStripe,
  type SignedHeaders,
  type SignForOptions,
  type StandardWebhooksSigningKeys,
} from './sign.js'

/**
 * The verifier for a source's `verify` block. Keys are decoded and turned
 * into KeyObjects here, once; `verify()` then does no setup per request.
 *
 * @example
 *   const verifier = createVerifier(source.verify)
 *   const outcome = verifier.verify(headers, body, Date.now())
 *   if (!outcome.ok) log.debug({ reason: outcome.reason }, 'signature rejected')
 *
 * @throws RelayError `HOOKRELAY_CONFIG_NO_SECRET`, `HOOKRELAY_CONFIG_BAD_SECRET`,
 *   `HOOKRELAY_CONFIG_BAD_PUBLIC_KEY`, `HOOKRELAY_CONFIG_BAD_SCHEME`.
 */
export function createVerifier(cfg: VerifyConfig): Verifier {
  switch (cfg.scheme) {
    case 'runflow':
      return new RunflowVerifier(cfg)
    case 'github':
      return new GithubVerifier(cfg)
    case 'stripe':
      return new StripeVerifier(cfg)
    case 'standard-webhooks':
      return new StandardWebhooksVerifier(cfg)
    case 'hmac':
      return new HmacVerifier(cfg)
    default:
      return unknownScheme(cfg.scheme)
  }
}

function unknownScheme(scheme: never): never {
  throw new RelayError(
    'HOOKRELAY_CONFIG_BAD_SCHEME',
    `unknown verify scheme ${JSON.stringify(scheme)}; use runflow, github, stripe, standard-webhooks or hmac`,
  )
}
