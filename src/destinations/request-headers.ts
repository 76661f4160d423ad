import type { DestinationConfig } from '../config/types.js'
import type { StoredEvent } from '../journal/record.js'
import { signStandardWebhooks } from '../verify/sign.js'

/**
 * The headers of one delivery attempt. `signing: original`: the headers kept
 * with the entry (the sender's signature among them) as received, so the
 * handler's own check passes on the byte-exact body. Re-signed: a Standard
 * Webhooks sender's, with a `webhook-id` that stays the same across retries
 * (the handler's dedup key) and a fresh `webhook-timestamp` per attempt (so
 * a retry hours later is not refused as a replay).
 */
export function deliveryHeaders(e: StoredEvent, cfg: DestinationConfig, epoch: string): Record<string, string> {
  const kept = e.private.headers ?? {}
  const base: Record<string, string> = {
    'content-type': kept['content-type'] ?? 'application/json',
    'user-agent': 'hookrelay',
    'hookrelay-seq': String(e.seq),
  }
  if (cfg.signing.mode === 'original') return Object.assign(base, kept, cfg.headers)
  const signed = signStandardWebhooks(
    { secret: cfg.signing.secret || undefined, secretKey: cfg.signing.private_key || undefined },
    `msg_${epoch}_${e.seq}`,
    Math.floor(Date.now() / 1000),
    e.body,
  )
  return { ...base, ...cfg.headers, ...signed }
}
