import type { IngestInput, InternalInput, RunRow } from './types.js'

/** How many body fingerprints a run keeps to recognise retries of older revisions. */
export const REVISIONS_KEPT = 16

/**
 * The run row after a callback: a new revision that remembers this body's
 * fingerprint (with the last REVISIONS_KEPT) and keeps the other components'
 * parts (a shallow copy: a hook replaces its part, never changes it in place).
 */
export function ingestRow(
  previous: RunRow | undefined,
  input: IngestInput,
  seq: number,
  receivedAt: string,
): { row: RunRow; revision: number } {
  const revision = (previous?.revision ?? 0) + 1
  const revisions = [{ sha256: input.sha256, seq, revision }, ...(previous?.revisions ?? [])].slice(0, REVISIONS_KEPT)
  return {
    revision,
    row: {
      source: input.source,
      id: input.key,
      event: input.event,
      status: input.status ?? null,
      seq,
      revision,
      received_at: receivedAt,
      revisions,
      parts: previous ? { ...previous.parts } : {},
    },
  }
}

/**
 * The run row after one of the relay's own entries (e.g. `mirror.completed`):
 * the callback's fields stay, the parts are a copy for `updateRow` to change. A run not seen yet
 * gets a placeholder row with revision 0 (the read API answers 404 for it).
 */
export function internalRow(
  previous: RunRow | undefined,
  input: InternalInput,
  seq: number,
  receivedAt: string,
): { row: RunRow; revision: number } {
  const row: RunRow = previous
    ? { ...previous, parts: structuredClone(previous.parts) }
    : {
        source: input.source,
        id: input.key,
        event: input.event,
        status: null,
        seq,
        revision: 0,
        received_at: receivedAt,
        revisions: [],
        parts: {},
      }
  return { row, revision: previous?.revision ?? 0 }
}
