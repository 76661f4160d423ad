/** Why an object was given up: a stable `HOOKRELAY_MIRROR_*` code, and a message for people. */
export interface MirrorFailure {
  code: string
  message: string
}

/** One mirrored (or to-be-mirrored) output object of a run. */
export interface MirrorObject {
  /** Position of the URL among the http(s) strings under `output`. */
  index: number
  url: string
  state: 'pending' | 'completed' | 'failed'
  bucket?: string
  key?: string
  size?: number
  sha256?: string
  content_type?: string
  reason?: MirrorFailure
  /** Epoch ms after which the URL is expected to have expired. */
  deadline?: number
}

export interface MirrorState {
  state: 'none' | 'pending' | 'completed' | 'failed'
  objects: MirrorObject[]
}

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
  mirror: MirrorState
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

/**
 * Called inside the write transaction for every entry journaled, so that
 * other parts (the mirror's outbox) write atomically with the event.
 * `row` is the new run row and may be mutated before it is stored.
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
}
export type AppendHook = (ctx: AppendContext) => void

/** An entry the relay writes itself (e.g. `mirror.completed`); never deduplicated. */
export interface InternalInput {
  source: string
  event: string
  key: string
  body: Buffer
  receivedAt: number
  /** Updates the run row in the same transaction (the row exists or is created). */
  updateRow?: (row: RunRow) => void
  json: unknown
}
