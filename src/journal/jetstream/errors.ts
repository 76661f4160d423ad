/** Recognising the JetStream answers the journal acts on (by API error code, not message text where it can). */
import { JetStreamApiCodes } from '@nats-io/jetstream'

function codeOf(err: unknown): number | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'number') return e.code
  }
  return undefined
}

/** A compare-and-set lost: the subject (a KV key, a run's subject) moved past the sequence expected. */
export function isConflict(err: unknown): boolean {
  const code = codeOf(err)
  if (code === JetStreamApiCodes.StreamWrongLastSequence || code === JetStreamApiCodes.StreamWrongLastSequenceUnknown) return true
  return /wrong last sequence/i.test(String((err as Error)?.message ?? ''))
}
