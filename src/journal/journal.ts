import { randomBytes } from 'node:crypto'
import { mkdirSync, accessSync, rmSync, constants as fsConstants } from 'node:fs'
import { statfs } from 'node:fs/promises'
import { open, type Database, type RootDatabase } from 'lmdb'
import { RelayError } from '../errors.js'
import { decodeEvent, encodeEvent, type StoredEvent } from './record.js'
import type { AppendHook, IngestInput, IngestResult, RunRow } from './types.js'

const SCHEMA_VERSION = 1
/** How often exact page statistics are read (they cost ~30 µs; see #noteCommitted). */
const USAGE_REFRESH_MS = 100
/** How many body fingerprints a run keeps to recognise retries of older revisions. */
const REVISIONS_KEPT = 16

export interface JournalOptions {
  dir: string
  mapSize: number
  /** Ingest answers 503 when the filesystem has less free space than this. */
  minFree: number
}

interface Pending {
  input: IngestInput | InternalInput
  internal: boolean
  resolve: (r: IngestResult) => void
  reject: (e: unknown) => void
}

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

export type CommitListener = (head: number) => void

/**
 * Copies the journal in `dataDir` to `<destDir>/journal.mdb` from another
 * process than the relay's (`hookrelay backup`). LMDB allows several processes
 * on one environment (they share `journal.mdb-lock`), and its copy runs inside
 * one read transaction: the copy is consistent while the relay keeps
 * committing. Opened read-only with the relay's own flags.
 *
 * @throws RelayError HOOKRELAY_JOURNAL_OPEN when there is no journal in dataDir,
 *   HOOKRELAY_JOURNAL_BACKUP when the copy fails (e.g. the destination exists).
 */
export async function backupJournal(dataDir: string, destDir: string, compact = true): Promise<{ file: string; head: number; epoch: string }> {
  const path = `${dataDir}/journal.mdb`
  try {
    accessSync(path, fsConstants.R_OK)
  } catch (cause) {
    throw new RelayError('HOOKRELAY_JOURNAL_OPEN', `no journal at ${path}; check --config (data_dir)`, { cause })
  }
  const flags = { maxDbs: 12, overlappingSync: false, noSync: false, useWritemap: false, cache: false } as const
  // Read-only: the copy needs a read transaction only (the lock file's reader table is still shared).
  const env = open({ path, ...flags, readOnly: true })
  const file = `${destDir}/journal.mdb`
  try {
    mkdirSync(destDir, { recursive: true })
    await env.backup(file, compact)
  } catch (cause) {
    throw new RelayError('HOOKRELAY_JOURNAL_BACKUP', `cannot write ${file}: ${(cause as Error).message}; use an empty destination directory`, {
      cause,
    })
  } finally {
    await env.close()
  }
  // Head and epoch as the copy has them (the copy's read transaction started after any look here).
  const copy = open({ path: file, ...flags, readOnly: true })
  try {
    const events = copy.openDB<Buffer, number>('events', { keyEncoding: 'uint32', encoding: 'binary' })
    const meta = copy.openDB<unknown, string>('meta', {})
    let head = (meta.get('pruned_through') as number | undefined) ?? 0
    for (const k of events.getKeys({ reverse: true, limit: 1 })) head = k
    return { file, head, epoch: String(meta.get('epoch')) }
  } finally {
    await copy.close()
    rmSync(`${file}-lock`, { force: true })
  }
}

/**
 * The durable journal: one LMDB environment, written in group commits.
 *
 * Durability: the environment is opened with `overlappingSync: false`, so an
 * lmdb-js write transaction's promise resolves only after LMDB's commit has
 * called fdatasync. `ingest()` resolves after that promise, and the HTTP layer
 * answers 200 only then (test/durability.test.ts injects a slow fdatasync and
 * checks the order).
 *
 * Group commit: every `ingest()` of one event-loop turn is queued and written
 * in one transaction started from `setImmediate`; while it commits on lmdb's
 * writer thread, the next turn's requests gather for the next one.
 */
export class Journal {
  readonly epoch: string
  readonly dir: string
  #env: RootDatabase
  #events: Database<Buffer, number>
  #runs: Database<RunRow, [string, string]>
  #cursors: Database<{ seq: number; epoch: string; at: number }, string>
  #meta: Database<unknown, string>
  #head: number
  #queue: Pending[] = []
  /** Body bytes queued or committing, counted against the map and disk limits. */
  #queuedBytes = 0
  #usageAt = 0
  #scheduled = false
  #inflight = 0
  #idleWaiters: Array<() => void> = []
  #listeners = new Set<CommitListener>()
  #hooks: AppendHook[] = []
  #failed: Error | undefined
  #closed = false
  #opts: JournalOptions
  #fsFree = Number.POSITIVE_INFINITY
  #fsTimer: NodeJS.Timeout | undefined
  #usedBytes = 0
  /** Databases other parts opened in this environment; counted in usedBytes. */
  #others: Database[] = []
  /** Called with each commit's duration in seconds (metrics). */
  onCommitTimed: ((seconds: number, entries: number) => void) | undefined

  private constructor(opts: JournalOptions, env: RootDatabase) {
    this.dir = opts.dir
    this.#opts = opts
    this.#env = env
    this.#events = env.openDB<Buffer, number>('events', { keyEncoding: 'uint32', encoding: 'binary' })
    this.#runs = env.openDB<RunRow, [string, string]>('runs', {})
    this.#cursors = env.openDB('cursors', {})
    this.#meta = env.openDB('meta', {})
    let epoch = this.#meta.get('epoch') as string | undefined
    if (epoch === undefined) {
      epoch = randomBytes(8).toString('hex')
      this.#meta.putSync('epoch', epoch)
      this.#meta.putSync('schema_version', SCHEMA_VERSION)
      this.#meta.putSync('created_at', new Date().toISOString())
    }
    const schema = this.#meta.get('schema_version')
    if (schema !== SCHEMA_VERSION) {
      throw new RelayError(
        'HOOKRELAY_JOURNAL_SCHEMA',
        `journal in ${opts.dir} has schema version ${String(schema)}, this relay reads ${SCHEMA_VERSION}; use a matching hookrelay version`,
      )
    }
    this.epoch = epoch
    this.#head = this.#lastSeq()
    this.#refreshUsage()
  }

  /**
   * Opens (or creates) the journal in `dir`.
   * @throws RelayError HOOKRELAY_JOURNAL_OPEN when the directory cannot be used.
   */
  static async open(opts: JournalOptions): Promise<Journal> {
    try {
      mkdirSync(opts.dir, { recursive: true })
      accessSync(opts.dir, fsConstants.W_OK | fsConstants.R_OK)
    } catch (cause) {
      throw new RelayError(
        'HOOKRELAY_JOURNAL_OPEN',
        `cannot use data_dir ${opts.dir}: ${(cause as Error).message}; make it writable by the relay's user or point data_dir elsewhere`,
        { cause },
      )
    }
    let env: RootDatabase
    try {
      env = open({
        path: `${opts.dir}/journal.mdb`,
        mapSize: opts.mapSize,
        maxDbs: 12,
        // Resolve write promises only once fdatasync has returned; see class doc.
        overlappingSync: false,
        noSync: false,
        useWritemap: false,
        // Reads on this thread must see each commit as soon as it resolves.
        cache: false,
      })
    } catch (cause) {
      throw new RelayError('HOOKRELAY_JOURNAL_OPEN', `cannot open the journal in ${opts.dir}: ${(cause as Error).message}`, {
        cause,
      })
    }
    const journal = new Journal(opts, env)
    await journal.#checkDisk()
    journal.#fsTimer = setInterval(() => void journal.#checkDisk(), 1000)
    journal.#fsTimer.unref()
    return journal
  }

  /** The last committed seq (0 when empty). */
  get head(): number {
    return this.#head
  }

  /** The first seq still in the journal; head + 1 when it is empty. */
  get earliest(): number {
    for (const k of this.#events.getKeys({ limit: 1 })) return k
    return this.#head + 1
  }

  /** Set after an I/O error: the journal stops acknowledging (fail-stop). */
  get failed(): Error | undefined {
    return this.#failed
  }

  get ready(): boolean {
    return !this.#closed && this.#failed === undefined
  }

  /**
   * Why an entry of `bytes` would be refused right now (closing, failed, disk
   * or map full), or undefined when it would be accepted. `/readyz` asks with
   * the largest `max_body`.
   */
  refusal(bytes = 0): RelayError | undefined {
    return this.#refusal(bytes)
  }

  /** Approximate bytes of pages in use (data, not free pages). */
  get usedBytes(): number {
    return this.#usedBytes
  }

  get mapSize(): number {
    return this.#opts.mapSize
  }

  /** Named databases for other parts (e.g. the mirror's job queue) in the same environment. */
  openDB<V, K extends string | number | (string | number)[]>(name: string): Database<V, K> {
    const db = this.#env.openDB<V, K>(name, {})
    this.#others.push(db as unknown as Database)
    return db
  }

  /** Registers a hook that runs inside the write transaction for each entry. */
  addAppendHook(hook: AppendHook): void {
    this.#hooks.push(hook)
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Journals a verified callback, deduplicating on source + key.
   * Resolves after the entry is durable; rejects with a RelayError (status 503)
   * when it cannot be.
   */
  ingest(input: IngestInput): Promise<IngestResult> {
    const refused = this.#refusal(input.body.length)
    if (refused) return Promise.reject(refused)
    // A retry of something already committed needs no write at all.
    const row = this.#runs.get([input.source, input.key])
    const known = row?.revisions.find((r) => r.sha256 === input.sha256)
    // Only once the original's commit has resolved (seq <= head) is it known durable;
    // a snapshot can show a commit whose fdatasync has not returned yet.
    if (known && known.seq <= this.#head) {
      return Promise.resolve({ seq: known.seq, revision: known.revision, duplicate: true })
    }
    return this.#enqueue(input, false)
  }

  /** Appends an entry of the relay's own (never deduplicated). Resolves with its seq. */
  async appendInternal(input: InternalInput): Promise<number> {
    const refused = this.#refusal(input.body.length)
    if (refused) throw refused
    return (await this.#enqueue(input, true)).seq
  }

  #enqueue(input: IngestInput | InternalInput, internal: boolean): Promise<IngestResult> {
    return new Promise<IngestResult>((resolve, reject) => {
      this.#queue.push({ input, internal, resolve, reject })
      this.#queuedBytes += input.body.length
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(this.#flush)
      }
    })
  }

  #refusal(bytes: number): RelayError | undefined {
    if (this.#closed) return new RelayError('HOOKRELAY_JOURNAL_CLOSING', 'the relay is shutting down', { status: 503 })
    if (this.#failed) {
      return new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error', { status: 503 })
    }
    if (this.#fsFree - 2 * this.#queuedBytes < this.#opts.minFree) {
      return new RelayError('HOOKRELAY_JOURNAL_DISK_FULL', 'the disk holding data_dir is nearly full', { status: 503 })
    }
    // lmdb-js grows the map by itself, so map_size is enforced here, before LMDB would fail;
    // bytes queued but not yet committed count too, so a burst cannot overshoot.
    if (this.#usedBytes + 2 * (this.#queuedBytes + bytes) + 65536 > this.#opts.mapSize) {
      return new RelayError('HOOKRELAY_JOURNAL_FULL', 'the journal reached journal.map_size', { status: 503 })
    }
    return undefined
  }

  #flush = (): void => {
    this.#scheduled = false
    const batch = this.#queue
    this.#queue = []
    if (batch.length === 0) return
    let batchBytes = 0
    for (const p of batch) batchBytes += p.input.body.length
    if (this.#failed) {
      this.#queuedBytes -= batchBytes
      const err = new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error', { status: 503 })
      for (const p of batch) p.reject(err)
      this.#settle()
      return
    }
    const results: Array<IngestResult | Error> = new Array(batch.length)
    let newHead = this.#head
    const started = process.hrtime.bigint()
    this.#inflight++
    this.#env
      .transaction(() => {
        newHead = this.#lastSeq()
        for (let i = 0; i < batch.length; i++) {
          const p = batch[i]!
          // Each entry in a child transaction: one that throws (a hook, a
          // value LMDB refuses) is rolled back and rejected alone, without
          // taking its batch, or the relay, down with it.
          try {
            newHead = this.#env.childTransaction(() => this.#write(p, newHead, results, i)) as unknown as number
          } catch (e) {
            results[i] = e instanceof Error ? e : new Error(String(e))
          }
        }
      })
      .then(
        () => {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9
          this.#head = Math.max(this.#head, newHead)
          this.#queuedBytes -= batchBytes
          this.#noteCommitted(batchBytes, batch.length)
          this.onCommitTimed?.(seconds, batch.length)
          for (let i = 0; i < batch.length; i++) {
            const r = results[i]!
            if (r instanceof Error) {
              batch[i]!.reject(
                new RelayError('HOOKRELAY_JOURNAL_ENTRY_REJECTED', 'the journal could not store this entry', { status: 500, cause: r }),
              )
            } else {
              batch[i]!.resolve(r)
            }
          }
          for (const l of this.#listeners) l(this.#head)
        },
        (cause: unknown) => {
          this.#queuedBytes -= batchBytes
          // lmdb-js hangs the underlying I/O error on a second promise; it is reported here, not unhandled.
          const commitError = (cause as { commitError?: Promise<unknown> }).commitError
          commitError?.catch(() => undefined)
          // Fail-stop: an fsync that failed may have lost pages; never retry and pretend.
          // (Anything else — an exception before the commit — rejects this batch only.)
          if (commitError !== undefined) this.#failed ??= cause instanceof Error ? cause : new Error(String(cause))
          const err = new RelayError('HOOKRELAY_JOURNAL_COMMIT_FAILED', 'the journal could not commit', {
            status: 503,
            cause,
          })
          for (const p of batch) p.reject(err)
        },
      )
      .finally(() => {
        this.#inflight--
        this.#settle()
      })
  }

  #settle(): void {
    if (this.#inflight === 0 && this.#queue.length === 0) {
      for (const w of this.#idleWaiters.splice(0)) w()
    }
  }


  /** Runs inside the write transaction. Returns the new head. */
  #write(p: Pending, head: number, results: Array<IngestResult | Error>, i: number): number {
    const input = p.input
    const rk: [string, string] = [input.source, input.key]
    const previous = this.#runs.get(rk)
    if (!p.internal) {
      const ing = input as IngestInput
      const known = previous?.revisions.find((r) => r.sha256 === ing.sha256)
      if (known) {
        results[i] = { seq: known.seq, revision: known.revision, duplicate: true }
        return head
      }
    }
    const seq = head + 1
    const receivedAt = new Date(input.receivedAt).toISOString()
    let row: RunRow
    let revision: number
    if (p.internal) {
      const internal = input as InternalInput
      revision = previous?.revision ?? 0
      row = previous
        ? { ...previous, mirror: { ...previous.mirror, objects: previous.mirror.objects.map((o) => ({ ...o })) } }
        : {
            source: input.source,
            id: input.key,
            event: input.event,
            status: null,
            seq,
            revision: 0,
            received_at: receivedAt,
            revisions: [],
            mirror: { state: 'none', objects: [] },
          }
      internal.updateRow?.(row)
    } else {
      const ing = input as IngestInput
      revision = (previous?.revision ?? 0) + 1
      const revisions = [{ sha256: ing.sha256, seq, revision }, ...(previous?.revisions ?? [])].slice(0, REVISIONS_KEPT)
      row = {
        source: ing.source,
        id: ing.key,
        event: ing.event,
        status: ing.status ?? null,
        seq,
        revision,
        received_at: receivedAt,
        revisions,
        mirror: previous ? previous.mirror : { state: 'none', objects: [] },
      }
    }
    const priv =
      !p.internal && (input as IngestInput).requestId !== undefined
        ? { sha256: (input as IngestInput).sha256, request_id: (input as IngestInput).requestId }
        : { sha256: p.internal ? '' : (input as IngestInput).sha256 }
    const record = encodeEvent(
      { source: input.source, event: input.event, key: input.key, revision, received_at: receivedAt },
      priv,
      input.body,
    )
    for (const hook of this.#hooks) {
      hook({
        seq,
        source: input.source,
        event: input.event,
        key: input.key,
        revision,
        json: input.json,
        row,
        previous,
        internal: p.internal,
      })
    }
    this.#events.putSync(seq, record, { append: true })
    this.#runs.putSync(rk, row)
    results[i] = { seq, revision, duplicate: false }
    return seq
  }

  #lastSeq(): number {
    for (const k of this.#events.getKeys({ reverse: true, limit: 1 })) return k
    return (this.#meta.get('pruned_through') as number | undefined) ?? 0
  }

  /** The run row for source + id, or undefined. */
  getRun(source: string, id: string): RunRow | undefined {
    return this.#runs.get([source, id])
  }

  /** One entry by seq, or undefined when it is not (or no longer) in the journal. */
  get(seq: number): StoredEvent | undefined {
    const raw = this.#events.getBinary(seq)
    return raw ? decodeEvent(seq, raw) : undefined
  }

  /** Up to `limit` entries with seq > after, in order. Only committed entries are visible. */
  read(after: number, limit: number): StoredEvent[] {
    const out: StoredEvent[] = []
    if (after >= this.#head) return out
    for (const { key, value } of this.#events.getRange({ start: after + 1, end: this.#head + 1, limit })) {
      out.push(decodeEvent(key, value))
    }
    return out
  }

  /** The stored ack of a durable consumer, if any. */
  getCursor(name: string): { seq: number; epoch: string } | undefined {
    const c = this.#cursors.get(name)
    return c ? { seq: c.seq, epoch: c.epoch } : undefined
  }

  /** All durable consumers and their acked seq. */
  listCursors(): Array<{ name: string; seq: number }> {
    const out: Array<{ name: string; seq: number }> = []
    for (const { key, value } of this.#cursors.getRange({})) out.push({ name: key, seq: value.seq })
    return out
  }

  /** Stores many consumer acks in one transaction (acks are batched by the caller). */
  async saveCursors(acks: ReadonlyMap<string, number>): Promise<void> {
    if (acks.size === 0 || this.#failed) return
    const at = Date.now()
    await this.#env.transaction(() => {
      for (const [name, seq] of acks) this.#cursors.putSync(name, { seq, epoch: this.epoch, at })
    })
  }

  /**
   * Removes entries with seq <= through (never past the head), oldest first, at
   * most `max` per call, in one small transaction so ingest never waits long
   * behind retention. Run rows stay: their `output` reads null once the event
   * they point at is gone. Returns how many entries were removed.
   */
  async prune(through: number, max = 1000): Promise<number> {
    const end = Math.min(through, this.#head)
    if (this.#closed || this.#failed || end < 1) return 0
    let removed = 0
    let last = 0
    await this.#env.transaction(() => {
      for (const k of this.#events.getKeys({ end: end + 1, limit: max })) {
        this.#events.removeSync(k)
        removed++
        last = k
      }
      // Only what was really removed: #lastSeq() falls back to this when the events db is empty.
      if (removed > 0) this.#meta.putSync('pruned_through', Math.max(last, (this.#meta.get('pruned_through') as number) ?? 0))
    })
    this.#refreshUsage()
    return removed
  }

  /**
   * Received-at (epoch ms) and stored size of up to `limit` of the oldest
   * entries, in seq order. Retention uses it to find what is past its limits.
   */
  oldest(limit: number): Array<{ seq: number; receivedAt: number; bytes: number }> {
    const out: Array<{ seq: number; receivedAt: number; bytes: number }> = []
    for (const { key, value } of this.#events.getRange({ limit })) {
      out.push({ seq: key, receivedAt: Date.parse(decodeEvent(key, value).received_at), bytes: value.length })
    }
    return out
  }

  /**
   * Writes a consistent copy of the environment to `<destDir>/journal.mdb`
   * (LMDB copies inside one read transaction, so commits go on meanwhile).
   * `compact` leaves free pages out (smaller, slower).
   */
  async backup(destDir: string, compact = true): Promise<string> {
    const file = `${destDir}/journal.mdb`
    await this.#env.backup(file, compact)
    return file
  }

  /** Changes the free disk space ingest requires (config reload). */
  setMinFree(bytes: number): void {
    this.#opts = { ...this.#opts, minFree: bytes }
  }

  /** Seq of the oldest entry received at or after `ms`, scanning from the start. */
  firstAtOrAfter(ms: number): number {
    for (const { key, value } of this.#events.getRange({})) {
      if (Date.parse(decodeEvent(key, value).received_at) >= ms) return key
    }
    return this.#head + 1
  }

  /**
   * Estimates used bytes after a commit: exact page stats (~30 µs) at most
   * every USAGE_REFRESH_MS, and in between a conservative 2 × body + 4 KiB per
   * entry, so the map_size check never under-counts.
   */
  #noteCommitted(bodyBytes: number, entries: number): void {
    const now = performance.now()
    if (now - this.#usageAt >= USAGE_REFRESH_MS) this.#refreshUsage()
    else this.#usedBytes += 2 * bodyBytes + 4096 * entries
  }

  #refreshUsage(): void {
    this.#usageAt = performance.now()
    const env = this.#env.getStats() as {
      pageSize: number
      treeBranchPageCount: number
      treeLeafPageCount: number
      overflowPages: number
    }
    let pages = env.treeBranchPageCount + env.treeLeafPageCount + env.overflowPages
    for (const db of [this.#events, this.#runs, this.#cursors, this.#meta, ...this.#others] as Database[]) {
      const s = db.getStats() as { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages
    }
    this.#usedBytes = pages * env.pageSize
  }

  async #checkDisk(): Promise<void> {
    try {
      const s = await statfs(this.dir)
      this.#fsFree = s.bavail * s.bsize
    } catch {
      // The directory vanished or the filesystem does not answer: refuse rather than guess.
      this.#fsFree = 0
    }
  }

  /** Resolves when no commit is queued or running. */
  idle(): Promise<void> {
    if (this.#inflight === 0 && this.#queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  /**
   * Stops accepting writes, waits for in-flight commits, and closes LMDB.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#fsTimer)
    await this.idle()
    await this.#env.close()
  }
}
