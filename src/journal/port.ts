/**
 * The one interface every part above storage uses (ingest, read API,
 * fan-out, mirror, extensions). `LmdbJournal` implements it on one box; a
 * clustered backend (NATS JetStream) is meant to be a second implementation,
 * which is why every read that would cross the network returns a promise,
 * while `head`, `epoch` and `earliest` stay synchronous getters on the hot
 * path (a backend keeps them current from its commit stream).
 */
import type { RelayError } from '../errors.js'
import type { StoredEvent } from './record.js'
import type { AppendHook, IngestInput, IngestResult, InternalInput, JobChanges, JobKey, JobView, RunRow } from './types.js'

export type {
  AppendContext,
  AppendHook,
  IngestInput,
  IngestResult,
  InternalInput,
  JobChanges,
  JobKey,
  JobView,
  RevisionRef,
  RunRow,
} from './types.js'
export type { StoredEvent } from './record.js'

export type CommitListener = (head: number) => void

/** A durable consumer's stored ack. */
export interface StoredCursor {
  seq: number
  /** The journal epoch the ack was made in. */
  epoch: string
}

/** One job of a queue, with its key. */
export interface QueuedJob<J> {
  key: JobKey
  job: J
}

export interface ClaimOptions<J> {
  /** Most jobs returned. */
  limit: number
  /** Jobs this relay cannot take now (running, backing off) are passed over. */
  accept?: (job: J, key: JobKey) => boolean
}

export interface JournalPort {
  /** Identifies this journal's seq space; a new epoch means seqs started again. */
  readonly epoch: string
  /** The last committed seq (0 when empty). */
  readonly head: number
  /** The first seq still in the journal; head + 1 when it is empty. */
  readonly earliest: number

  /** Set after an I/O error: the journal stops acknowledging (fail-stop). */
  readonly failed: Error | undefined
  /**
   * Whether an unhandled promise rejection is the backend's own echo of a
   * commit failure the journal has already handled (and gone fail-stop
   * for), so the process may ignore it rather than exit.
   */
  handledRejection(err: unknown): boolean
  /** Not closing and not failed. */
  readonly ready: boolean
  /**
   * Why an entry of `bytes` would be refused right now (closing, failed,
   * full), or undefined when it would be accepted.
   */
  refusal(bytes?: number): RelayError | undefined
  /** Approximate bytes the journal holds (metrics). */
  readonly usedBytes: number
  /** Called with each commit's duration in seconds and its entry count (metrics). */
  onCommitTimed: ((seconds: number, entries: number) => void) | undefined

  /**
   * Journals a verified callback, deduplicating on source + key + body
   * (any revision the run row still remembers). Resolves once the entry is
   * durable; rejects with a RelayError (status 503) when it cannot be.
   */
  append(input: IngestInput): Promise<IngestResult>
  /** Appends an entry of the relay's own (never deduplicated). Resolves with its seq once durable. */
  appendInternal(input: InternalInput): Promise<number>
  /** Registers a hook that runs inside the write transaction of every entry (before the relay listens). */
  addAppendHook(hook: AppendHook): void
  /** Calls `listener` with the new head after each commit; returns a function that removes it. */
  onCommit(listener: CommitListener): () => void

  /** Up to `limit` entries with seq > after, in order. Only committed entries are visible. */
  read(after: number, limit: number): Promise<StoredEvent[]>
  /** One entry by seq, or undefined when it is not (or no longer) in the journal. */
  get(seq: number): Promise<StoredEvent | undefined>
  /** The run row for source + id, or undefined. */
  getRun(source: string, id: string): Promise<RunRow | undefined>

  /** The stored ack of a durable consumer, if any. */
  getCursor(name: string): Promise<StoredCursor | undefined>
  /** Stores many consumer acks at once (acks are batched by the caller). */
  saveCursors(acks: ReadonlyMap<string, number>): Promise<void>
  /** All durable consumers and their acked seq. */
  listCursors(): Promise<Array<{ name: string; seq: number }>>
  /** Forgets a durable consumer's ack. Returns whether it existed. */
  deleteCursor(name: string): Promise<boolean>

  /**
   * Makes the job queue `name` ready to be written: call it at start, before
   * an entry or `changeJobs` writes to it (the one-box backend can open a
   * queue only outside its write transactions). Idempotent.
   *
   * Jobs are written by append hooks (`JobChanges.enqueue`) in the entry's
   * transaction, so a job exists exactly when its entry does. A queue is an
   * ordered store of the component that owns it; nothing else reads it.
   */
  openQueue(name: string): void
  getJob<J>(queue: string, key: JobKey): Promise<J | undefined>
  /**
   * Jobs of `queue` to work on, in key order. On one box nothing else takes
   * them; a clustered backend leases each returned job to this relay until
   * it is completed (or the relay dies and another takes it over).
   */
  claim<J>(queue: string, opts: ClaimOptions<J>): Promise<Array<QueuedJob<J>>>
  /** Every job of `queue`, in key order (start-up clean-up, metrics). */
  jobs<J>(queue: string): Promise<Array<QueuedJob<J>>>
  /** Changes jobs in one transaction without an entry (e.g. noting a download on a job). */
  changeJobs(change: (jobs: JobView) => JobChanges | undefined | void): Promise<void>
  /**
   * Finishes a job: appends the outcome entry (`mirror.completed`, …) and
   * deletes the job `key` of `queue` in one transaction, with whatever
   * `input.updateRow` changes besides. Resolves with the entry's seq.
   */
  complete(queue: string, key: JobKey, input: InternalInput): Promise<number>

  /** Resolves when no commit is queued or running. */
  idle(): Promise<void>
  /** Writes a consistent copy of the journal into `destDir`; returns the file written. */
  backup(destDir: string, compact?: boolean): Promise<string>
  /** Stops accepting writes, waits for commits in flight, and releases the store. Idempotent. */
  close(): Promise<void>
}
