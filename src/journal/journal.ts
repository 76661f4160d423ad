import { randomBytes } from 'node:crypto'
import { open, type Database, type RootDatabase } from 'lmdb'
import { RelayError } from '../errors.js'
import { Capacity } from './capacity.js'
import { prepareDataDir, restrictFile } from './data-dir.js'
import { lockDataDir } from './lock.js'
import { decodeEvent, encodeEvent, type EventPrivate, type StoredEvent } from './record.js'
import { ingestRow, internalRow } from './run-row.js'
import type { AppendHook, IngestInput, IngestResult, InternalInput, RunRow } from './types.js'

export type { InternalInput } from './types.js'
export { backupJournal } from './backup.js'

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
  resolve: (r: IngestResult) => void
  reject: (e: unknown) => void
}

export type CommitListener = (head: number) => void

/**
 * The durable journal: one LMDB environment, written in group commits.
 *
 * Durability: the environment is opened with `overlappingSync: false`, so an
 * lmdb-js write transaction's promise resolves only after LMDB's commit has
 * called fdatasync. `ingest()` resolves after that promise, and the HTTP layer
 * answers 200 only then (test/durability.test.ts injects a slow fdatasync and
 * checks the order).
 *
 * Group commit: `ingest()` calls are queued and written in one transaction
 * started from `setImmediate`; while it commits on lmdb's writer thread (its
 * fdatasync), the requests that arrive gather for the next one, which starts
 * when it settles. So the batch grows with the load whatever the arrival
 * pattern (node:http hands over requests of new connections one loop turn
 * at a time). Seqs are assigned inside the transaction from the last key, so
 * they stay gapless.
 *
 * Limits: `Capacity` refuses entries (503) before the map or the disk would
 * fill; an I/O error on commit makes the journal fail-stop (`failed`).
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
  #scheduled = false
  #inflight = 0
  #idleWaiters: Array<() => void> = []
  #listeners = new Set<CommitListener>()
  #hooks: AppendHook[] = []
  #failed: Error | undefined
  #closed = false
  #capacity: Capacity
  #unlock: () => void
  /** Databases other parts opened in this environment; counted in usedBytes. */
  #others: Database[] = []
  /** Called with each commit's duration in seconds (metrics). */
  onCommitTimed: ((seconds: number, entries: number) => void) | undefined

  private constructor(opts: JournalOptions, env: RootDatabase, unlock: () => void) {
    this.dir = opts.dir
    this.#unlock = unlock
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
    this.#capacity = new Capacity(opts.dir, () => this.#pagesInUse(), opts.mapSize, opts.minFree)
  }

  /**
   * Opens (or creates) the journal in `dir`.
   * @throws RelayError HOOKRELAY_JOURNAL_DATA_DIR when the directory cannot be
   *   used, HOOKRELAY_JOURNAL_LOCKED when another relay holds it,
   *   HOOKRELAY_JOURNAL_OPEN when LMDB cannot open the journal there.
   */
  static async open(opts: JournalOptions): Promise<Journal> {
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
    let journal: Journal
    try {
      // LMDB creates both files with the umask's mode; they hold every callback body.
      restrictFile(`${opts.dir}/journal.mdb`)
      restrictFile(`${opts.dir}/journal.mdb-lock`)
      journal = new Journal(opts, env, unlock)
    } catch (e) {
      await env.close()
      unlock()
      throw e
    }
    await journal.#capacity.start()
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
   * or map full), or undefined when it would be accepted. `/readyz` asks for
   * an ordinary 64 KiB callback.
   */
  refusal(bytes = 0): RelayError | undefined {
    return this.#refusal(bytes)
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

  get mapSize(): number {
    return this.#capacity.mapSize
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
      this.#capacity.queued(input.body.length)
      // A commit in flight starts the next batch when it settles.
      if (!this.#scheduled && this.#inflight === 0) {
        this.#scheduled = true
        setImmediate(this.#flush)
      }
    })
  }

  #refusal(bytes: number): RelayError | undefined {
    if (this.#closed) return new RelayError('HOOKRELAY_JOURNAL_CLOSING', 'the relay is shutting down')
    if (this.#failed) {
      return new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
    }
    return this.#capacity.refusal(bytes)
  }

  #flush = (): void => {
    this.#scheduled = false
    const batch = this.#queue
    this.#queue = []
    if (batch.length === 0) return
    let batchBytes = 0
    for (const p of batch) batchBytes += p.input.body.length
    if (this.#failed) {
      this.#capacity.settled(batchBytes)
      const err = new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
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
        const base = this.#lastSeq()
        // The whole batch in one child transaction (the common case pays one
        // nesting per batch, not per entry). If an entry throws (a hook, a
        // value LMDB refuses), that child is rolled back and each entry is
        // written in a child of its own, so the bad one fails alone without
        // taking its batch, or the relay, down with it.
        try {
          newHead = this.#env.childTransaction(() => {
            let h = base
            for (let i = 0; i < batch.length; i++) h = this.#write(batch[i]!, h, results, i)
            return h
          }) as unknown as number
        } catch {
          newHead = base
          for (let i = 0; i < batch.length; i++) {
            const p = batch[i]!
            try {
              newHead = this.#env.childTransaction(() => this.#write(p, newHead, results, i)) as unknown as number
            } catch (e) {
              results[i] = e instanceof Error ? e : new Error(String(e))
            }
          }
        }
      })
      .then(
        () => {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9
          this.#head = Math.max(this.#head, newHead)
          this.#capacity.settled(batchBytes)
          this.#capacity.noteCommitted(batchBytes, batch.length)
          this.onCommitTimed?.(seconds, batch.length)
          for (let i = 0; i < batch.length; i++) {
            const r = results[i]!
            if (r instanceof Error) {
              batch[i]!.reject(
                new RelayError('HOOKRELAY_JOURNAL_ENTRY_REJECTED', 'the journal could not store this entry', { cause: r }),
              )
            } else {
              batch[i]!.resolve(r)
            }
          }
          for (const l of this.#listeners) l(this.#head)
        },
        (cause: unknown) => {
          this.#capacity.settled(batchBytes)
          // lmdb-js hangs the underlying I/O error on a second promise; it is reported here, not unhandled.
          const commitError = (cause as { commitError?: Promise<unknown> }).commitError
          commitError?.catch(() => undefined)
          // Fail-stop: an fsync that failed may have lost pages; never retry and pretend.
          // (Anything else — an exception before the commit — rejects this batch only.)
          if (commitError !== undefined) this.#failed ??= cause instanceof Error ? cause : new Error(String(cause))
          const err = new RelayError('HOOKRELAY_JOURNAL_COMMIT_FAILED', 'the journal could not commit', { cause })
          for (const p of batch) p.reject(err)
        },
      )
      .finally(() => {
        this.#inflight--
        if (this.#queue.length > 0 && !this.#scheduled) {
          this.#scheduled = true
          setImmediate(this.#flush)
        }
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

  /** Forgets a durable consumer's ack (a consumer of that name that comes back is a new one). Returns whether it existed. */
  async deleteCursor(name: string): Promise<boolean> {
    if (this.#failed) throw new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
    // lmdb-js's remove() resolves true for a missing key too.
    return this.#env.transaction(() => {
      if (this.#cursors.get(name) === undefined) return false
      this.#cursors.removeSync(name)
      return true
    })
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

  /** Seq of the oldest entry received at or after `ms`, scanning from the start. */
  firstAtOrAfter(ms: number): number {
    for (const { key, value } of this.#events.getRange({})) {
      if (Date.parse(decodeEvent(key, value).received_at) >= ms) return key
    }
    return this.#head + 1
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
    for (const db of [this.#events, this.#runs, this.#cursors, this.#meta, ...this.#others] as Database[]) {
      const st = db.getStats() as { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
      pages += st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages
    }
    return pages * env.pageSize
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
    this.#capacity.stop()
    await this.idle()
    await this.#env.close()
    this.#unlock()
  }
}
