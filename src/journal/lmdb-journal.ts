import { randomBytes } from 'node:crypto'
import { open, type Database, type RootDatabase } from 'lmdb'
import { RelayError } from '../errors.js'
import { Capacity } from './capacity.js'
import { prepareDataDir, restrictFile } from './data-dir.js'
import { lockDataDir } from './lock.js'
import { GroupCommit } from './group-commit.js'
import type { ClaimOptions, CommitListener, JournalPort, QueuedJob, StoredCursor } from './port.js'
import { decodeEvent, encodeEvent, type EventPrivate, type StoredEvent } from './record.js'
import { ingestRow, internalRow } from './run-row.js'
import type { AppendHook, IngestInput, IngestResult, InternalInput, JobChanges, JobKey, JobView, RunRow } from './types.js'

const SCHEMA_VERSION = 1

export interface JournalOptions {
  dir: string
  mapSize: number
  /** Ingest answers 503 when the filesystem has less free space than this. */
  minFree: number
}

interface Pending {
  input: IngestInput | InternalInput
  internal: boolean
  /** A job `complete()` deletes with the entry. */
  done?: { queue: string; key: JobKey }
}

/** A run row as the previous version stored it: the mirror's part under `mirror`. */
type StoredRow = RunRow | (Omit<RunRow, 'parts'> & { mirror?: unknown; parts?: undefined })

/**
 * The durable journal: one LMDB environment, written in group commits
 * (group-commit.ts). The one implementation of `JournalPort` on one box.
 *
 * Durability: the environment is opened with `overlappingSync: false`, so an
 * lmdb-js write transaction's promise resolves only after LMDB's commit has
 * called fdatasync. `append()` resolves after that promise, and the HTTP layer
 * answers 200 only then (test/durability.test.ts injects a slow fdatasync and
 * checks the order).
 *
 * Reads are served from this process's LMDB snapshot: the promises they
 * return settle on the next microtask.
 *
 * Limits: `Capacity` refuses entries (503) before the map or the disk would
 * fill; an I/O error on commit makes the journal fail-stop (`failed`).
 */
export class LmdbJournal implements JournalPort {
  readonly epoch: string
  readonly dir: string
  #env: RootDatabase
  #events: Database<Buffer, number>
  #runs: Database<StoredRow, [string, string]>
  #cursors: Database<{ seq: number; epoch: string; at: number }, string>
  #meta: Database<unknown, string>
  /** Job queues by name, each its own database (the mirror's is `mirror`). */
  #queues = new Map<string, Database<unknown, JobKey>>()
  #head: number
  #writer: GroupCommit<Pending, IngestResult>
  #listeners = new Set<CommitListener>()
  #hooks: AppendHook[] = []
  #closed = false
  #capacity: Capacity
  #unlock: () => void
  /** Called with each commit's duration in seconds (metrics). */
  onCommitTimed: ((seconds: number, entries: number) => void) | undefined

  private constructor(opts: JournalOptions, env: RootDatabase, unlock: () => void) {
    this.dir = opts.dir
    this.#unlock = unlock
    this.#env = env
    this.#events = env.openDB<Buffer, number>('events', { keyEncoding: 'uint32', encoding: 'binary' })
    this.#runs = env.openDB<StoredRow, [string, string]>('runs', {})
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
    this.#capacity = new Capacity(opts.dir, () => this.#pagesInUse(), opts.mapSize, opts.minFree)
    this.#writer = new GroupCommit<Pending, IngestResult>({
      transaction: (fn) => this.#env.transaction(fn),
      childTransaction: <V>(fn: () => V) => this.#env.childTransaction(fn) as unknown as V,
      lastSeq: () => this.#lastSeq(),
      write: (p, head) => this.#write(p, head),
      bytesOf: (p) => p.input.body.length,
      settled: (bytes) => this.#capacity.settled(bytes),
      committed: (head, bytes, entries, seconds) => {
        this.#head = Math.max(this.#head, head)
        this.#capacity.noteCommitted(bytes, entries)
        this.onCommitTimed?.(seconds, entries)
      },
      notify: () => {
        for (const l of this.#listeners) l(this.#head)
      },
    })
  }

  /**
   * Opens (or creates) the journal in `dir`.
   * @throws RelayError HOOKRELAY_JOURNAL_DATA_DIR when the directory cannot be
   *   used, HOOKRELAY_JOURNAL_LOCKED when another relay holds it,
   *   HOOKRELAY_JOURNAL_OPEN when LMDB cannot open the journal there.
   */
  static async open(opts: JournalOptions): Promise<LmdbJournal> {
    prepareDataDir(opts.dir)
    const unlock = lockDataDir(opts.dir)
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
      unlock()
      throw new RelayError('HOOKRELAY_JOURNAL_OPEN', `cannot open the journal in ${opts.dir}: ${(cause as Error).message}`, {
        cause,
      })
    }
    let journal: LmdbJournal
    try {
      // LMDB creates both files with the umask's mode; they hold every callback body.
      restrictFile(`${opts.dir}/journal.mdb`)
      restrictFile(`${opts.dir}/journal.mdb-lock`)
      journal = new LmdbJournal(opts, env, unlock)
    } catch (e) {
      await env.close()
      unlock()
      throw e
    }
    await journal.#capacity.start()
    return journal
  }

  get head(): number {
    return this.#head
  }

  get earliest(): number {
    for (const k of this.#events.getKeys({ limit: 1 })) return k
    return this.#head + 1
  }

  get failed(): Error | undefined {
    return this.#writer.failed
  }

  handledRejection(err: unknown): boolean {
    return this.#writer.handled(err)
  }

  get ready(): boolean {
    return !this.#closed && this.failed === undefined
  }

  /**
   * Why an entry of `bytes` would be refused right now (closing, failed, disk
   * or map full), or undefined when it would be accepted. `/readyz` asks for
   * an ordinary 64 KiB callback.
   */
  refusal(bytes = 0): RelayError | undefined {
    if (this.#closed) return new RelayError('HOOKRELAY_JOURNAL_CLOSING', 'the relay is shutting down')
    if (this.failed) return failedError()
    return this.#capacity.refusal(bytes)
  }

  /** Approximate bytes of pages in use (data, not free pages). */
  get usedBytes(): number {
    return this.#capacity.usedBytes
  }

  /**
   * Exact bytes in use, read from LMDB's page statistics now (~30 µs).
   * `usedBytes` between commits is a conservative estimate; retention, which
   * decides how much to prune from it, asks for the exact figure.
   */
  measureUsedBytes(): number {
    this.#capacity.refresh()
    return this.#capacity.usedBytes
  }

  addAppendHook(hook: AppendHook): void {
    this.#hooks.push(hook)
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  append(input: IngestInput): Promise<IngestResult> {
    const refused = this.refusal(input.body.length)
    if (refused) return Promise.reject(refused)
    // A retry of something already committed needs no write at all.
    const row = this.#runs.get([input.source, input.key])
    const known = row?.revisions.find((r) => r.sha256 === input.sha256)
    // Only once the original's commit has resolved (seq <= head) is it known durable;
    // a snapshot can show a commit whose fdatasync has not returned yet.
    if (known && known.seq <= this.#head) {
      return Promise.resolve({ seq: known.seq, revision: known.revision, duplicate: true })
    }
    return this.#submit({ input, internal: false })
  }

  async appendInternal(input: InternalInput): Promise<number> {
    return (await this.#submitInternal({ input, internal: true })).seq
  }

  async complete(queue: string, key: JobKey, input: InternalInput): Promise<number> {
    this.#queue(queue)
    return (await this.#submitInternal({ input, internal: true, done: { queue, key } })).seq
  }

  #submitInternal(p: Pending): Promise<IngestResult> {
    const refused = this.refusal(p.input.body.length)
    if (refused) return Promise.reject(refused)
    return this.#submit(p)
  }

  #submit(p: Pending): Promise<IngestResult> {
    this.#capacity.queued(p.input.body.length)
    return this.#writer.submit(p)
  }

  /** Runs inside the write transaction. Returns the new head. */
  #write(p: Pending, head: number): { head: number; result: IngestResult } {
    const input = p.input
    const rk: [string, string] = [input.source, input.key]
    const previous = this.#row(rk)
    if (!p.internal) {
      const ing = input as IngestInput
      const known = previous?.revisions.find((r) => r.sha256 === ing.sha256)
      if (known) return { head, result: { seq: known.seq, revision: known.revision, duplicate: true } }
    }
    const seq = head + 1
    const receivedAt = new Date(input.receivedAt).toISOString()
    const { row, revision } = p.internal
      ? internalRow(previous, input as InternalInput, seq, receivedAt)
      : ingestRow(previous, input as IngestInput, seq, receivedAt)
    const ing = p.internal ? undefined : (input as IngestInput)
    const priv: EventPrivate = { sha256: ing ? ing.sha256 : '' }
    if (ing?.requestId !== undefined) priv.request_id = ing.requestId
    if (ing?.headers !== undefined) priv.headers = ing.headers
    const record = encodeEvent(
      { source: input.source, event: input.event, key: input.key, revision, received_at: receivedAt },
      priv,
      input.body,
    )
    const view = this.#view
    if (p.done) this.#queues.get(p.done.queue)?.removeSync(p.done.key)
    if (p.internal) this.#apply((input as InternalInput).updateRow?.(row, view))
    for (const hook of this.#hooks) {
      this.#apply(
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
          jobs: view,
        }),
      )
    }
    this.#events.putSync(seq, record, { append: true })
    this.#runs.putSync(rk, row)
    return { head: seq, result: { seq, revision, duplicate: false } }
  }

  /** Jobs as the write transaction sees them (lmdb-js reads inside it see its own writes). */
  #view: JobView = {
    getJob: <J>(queue: string, key: JobKey) => this.#queues.get(queue)?.get(key) as J | undefined,
  }

  /** Inside a write transaction: only queues opened before it can be written. */
  #apply(changes: JobChanges | undefined | void): void {
    if (!changes) return
    for (const r of changes.remove ?? []) this.#queues.get(r.queue)?.removeSync(r.key)
    for (const e of changes.enqueue ?? []) {
      const db = this.#queues.get(e.queue)
      if (db === undefined) throw new Error(`job queue ${e.queue} is not open: call openQueue() at start`)
      db.putSync(e.key, e.job)
    }
  }

  #queue(name: string): Database<unknown, JobKey> {
    let db = this.#queues.get(name)
    if (db === undefined) {
      db = this.#env.openDB<unknown, JobKey>(name, {})
      this.#queues.set(name, db)
    }
    return db
  }

  #lastSeq(): number {
    for (const k of this.#events.getKeys({ reverse: true, limit: 1 })) return k
    return (this.#meta.get('pruned_through') as number | undefined) ?? 0
  }

  /** The run row, in this version's shape whichever version stored it. */
  #row(rk: [string, string]): RunRow | undefined {
    const r = this.#runs.get(rk)
    if (r === undefined || r.parts !== undefined) return r as RunRow | undefined
    const { mirror, ...rest } = r as Omit<RunRow, 'parts'> & { mirror?: unknown }
    return { ...rest, parts: mirror === undefined ? {} : { mirror } }
  }

  async getRun(source: string, id: string): Promise<RunRow | undefined> {
    return this.#row([source, id])
  }

  async get(seq: number): Promise<StoredEvent | undefined> {
    const raw = this.#events.getBinary(seq)
    return raw ? decodeEvent(seq, raw) : undefined
  }

  async read(after: number, limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = []
    if (after >= this.#head) return out
    for (const { key, value } of this.#events.getRange({ start: after + 1, end: this.#head + 1, limit })) {
      out.push(decodeEvent(key, value))
    }
    return out
  }

  async getCursor(name: string): Promise<StoredCursor | undefined> {
    const c = this.#cursors.get(name)
    return c ? { seq: c.seq, epoch: c.epoch } : undefined
  }

  async deleteCursor(name: string): Promise<boolean> {
    if (this.failed) throw failedError()
    // lmdb-js's remove() resolves true for a missing key too.
    return this.#env.transaction(() => {
      if (this.#cursors.get(name) === undefined) return false
      this.#cursors.removeSync(name)
      return true
    })
  }

  async listCursors(): Promise<Array<{ name: string; seq: number }>> {
    const out: Array<{ name: string; seq: number }> = []
    for (const { key, value } of this.#cursors.getRange({})) out.push({ name: key, seq: value.seq })
    return out
  }

  async saveCursors(acks: ReadonlyMap<string, number>): Promise<void> {
    if (acks.size === 0 || this.failed) return
    const at = Date.now()
    await this.#env.transaction(() => {
      for (const [name, seq] of acks) this.#cursors.putSync(name, { seq, epoch: this.epoch, at })
    })
  }

  openQueue(name: string): void {
    this.#queue(name)
  }

  async getJob<J>(queue: string, key: JobKey): Promise<J | undefined> {
    return this.#queue(queue).get(key) as J | undefined
  }

  async claim<J>(queue: string, opts: ClaimOptions<J>): Promise<Array<QueuedJob<J>>> {
    const out: Array<QueuedJob<J>> = []
    if (opts.limit <= 0) return out
    for (const { key, value } of this.#queue(queue).getRange({})) {
      const k = asJobKey(key)
      if (opts.accept && !opts.accept(value as J, k)) continue
      out.push({ key: k, job: value as J })
      if (out.length >= opts.limit) break
    }
    return out
  }

  async jobs<J>(queue: string): Promise<Array<QueuedJob<J>>> {
    const out: Array<QueuedJob<J>> = []
    for (const { key, value } of this.#queue(queue).getRange({})) out.push({ key: asJobKey(key), job: value as J })
    return out
  }

  async changeJobs(change: (jobs: JobView) => JobChanges | undefined | void): Promise<void> {
    if (this.failed) throw failedError()
    await this.#env.transaction(() => this.#apply(change(this.#view)))
  }

  /**
   * Removes entries with seq <= through (never past the head), oldest first, at
   * most `max` per call, in one small transaction so ingest never waits long
   * behind retention. Run rows stay: their `output` reads null once the event
   * they point at is gone. Returns how many entries were removed.
   */
  async prune(through: number, max = 1000): Promise<number> {
    const end = Math.min(through, this.#head)
    if (this.#closed || this.failed || end < 1) return 0
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
    this.#capacity.refresh()
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
    this.#capacity.minFree = bytes
  }

  /** Exact bytes of LMDB pages in use by every database (not free pages). */
  #pagesInUse(): number {
    const env = this.#env.getStats() as {
      pageSize: number
      treeBranchPageCount: number
      treeLeafPageCount: number
      overflowPages: number
    }
    let pages = env.treeBranchPageCount + env.treeLeafPageCount + env.overflowPages
    for (const db of [this.#events, this.#runs, this.#cursors, this.#meta, ...this.#queues.values()] as Database[]) {
      const st = db.getStats() as { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
      pages += st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages
    }
    return pages * env.pageSize
  }

  idle(): Promise<void> {
    return this.#writer.idle()
  }

  /**
   * Stops accepting writes, waits for in-flight commits, and closes LMDB.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#capacity.stop()
    await this.idle()
    await this.#env.close()
    this.#unlock()
  }
}

/** lmdb-js reads a one-element array key back as its element. */
function asJobKey(key: JobKey | string | number): JobKey {
  return Array.isArray(key) ? key : [key]
}

function failedError(): RelayError {
  return new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
}
