/** A body fingerprint kept per run so that any earlier revision's retry is recognised. */
export interface RevisionRef {
  sha256: string
  seq: number
  revision: number
}

/** The projection: latest state of one run (or delivery) per source + id. */
export interface RunRow {
  source: string
  id: string
  event: string
  status: string | null
  seq: number
  revision: number
  received_at: string
  /** Most recent revisions first, at most REVISIONS_KEPT. */
  revisions: RevisionRef[]
  /**
   * Parts of the row other components own, by component name (the mirror's
   * is `mirror`); the journal stores them and never looks inside.
   */
  parts: Record<string, unknown>
}

export interface IngestInput {
  source: string
  event: string
  key: string
  status: string | undefined
  body: Buffer
  /** Hex sha256 of body. */
  sha256: string
  receivedAt: number
  requestId: string | undefined
  /** Request headers kept with the entry (EventPrivate.headers). */
  headers?: Record<string, string>
  /** The parsed body, handed to append hooks (the mirror's outbox). */
  json: unknown
}

export interface IngestResult {
  seq: number
  revision: number
  duplicate: boolean
}

/** A job's key in its queue: jobs are taken in key order (arrays compare element by element). */
export type JobKey = Array<string | number>

/** Jobs as they are inside the write transaction of an entry (what it wrote so far included). */
export interface JobView {
  getJob<J>(queue: string, key: JobKey): J | undefined
}

/** Job changes written in the same transaction as an entry. */
export interface JobChanges {
  /** Jobs to write (an existing job under the same key is replaced). */
  enqueue?: Array<{ queue: string; key: JobKey; job: unknown }>
  /** Jobs to delete (a missing one is no error). Applied before `enqueue`. */
  remove?: Array<{ queue: string; key: JobKey }>
}

/**
 * Called inside the write transaction for every entry journaled, so that
 * other parts (the mirror's outbox) write atomically with the event.
 * `row` is the new run row; a hook may change its own part of `row.parts`
 * before it is stored, and returns the jobs to write with the entry.
 */
export interface AppendContext {
  seq: number
  source: string
  event: string
  key: string
  revision: number
  json: unknown
  row: RunRow
  previous: RunRow | undefined
  internal: boolean
  jobs: JobView
}
export type AppendHook = (ctx: AppendContext) => JobChanges | undefined | void

/** An entry the relay writes itself (e.g. `mirror.completed`); never deduplicated. */
export interface InternalInput {
  source: string
  event: string
  key: string
  body: Buffer
  receivedAt: number
  /**
   * Updates the run row in the same transaction (the row exists or is
   * created; `row.parts` is a copy the caller may change), and returns jobs
   * to write or delete with the entry.
   */
  updateRow?: (row: RunRow, jobs: JobView) => JobChanges | undefined | void
  json: unknown
}
