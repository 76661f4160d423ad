/**
 * An in-memory `JournalPort` for fast unit tests of the parts above storage
 * (hub, mirror worker, destinations). Same contract as `LmdbJournal`
 * (test/journal-port.test.ts runs one suite against both): dedupe on
 * source + key + body, revisions 1..n, gapless seqs, commits in batches
 * (everything appended in one turn of the loop commits together, listeners
 * after), hooks and `updateRow` inside the entry's transaction (an entry
 * whose hook throws is rolled back alone), cursors and job queues.
 *
 * `failNext(err)` makes the next commit fail, as an I/O error would
 * (fail-stop, like LMDB's journal); `pruneThrough(seq)` drops old entries.
 */
import { randomBytes } from 'node:crypto'
import { RelayError } from '../../src/errors.js'
import type {
  AppendHook,
  ClaimOptions,
  CommitListener,
  IngestInput,
  IngestResult,
  InternalInput,
  JobChanges,
  JobKey,
  JobView,
  JournalPort,
  QueuedJob,
  RunRow,
  StoredCursor,
  StoredEvent,
} from '../../src/journal/port.js'
import { decodeEvent, encodeEvent, type EventPrivate } from '../../src/journal/record.js'
import { ingestRow, internalRow } from '../../src/journal/run-row.js'

interface Pending {
  input: IngestInput | InternalInput
  internal: boolean
  done?: { queue: string; key: JobKey }
  resolve: (r: IngestResult) => void
  reject: (e: unknown) => void
}

type Queue = Map<string, QueuedJob<unknown>>

/** Orders job keys as LMDB's ordered-binary keys do: element by element, numbers before strings. */
export function compareJobKeys(a: JobKey, b: JobKey): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!
    const y = b[i]!
    if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1
    if (x < y) return -1
    if (x > y) return 1
  }
  return a.length - b.length
}

const keyId = (key: JobKey): string => JSON.stringify(key)

export class MemoryJournal implements JournalPort {
  readonly epoch = randomBytes(8).toString('hex')
  onCommitTimed: ((seconds: number, entries: number) => void) | undefined
  #events = new Map<number, Buffer>()
  #first = 1
  #head = 0
  #runs = new Map<string, RunRow>()
  #cursors = new Map<string, { seq: number; epoch: string }>()
  #queues = new Map<string, Queue>()
  /** Queues opened (as LmdbJournal has them): writing to another one fails, as it does there. */
  #open = new Set<string>()
  #hooks: AppendHook[] = []
  #listeners = new Set<CommitListener>()
  #queue: Pending[] = []
  #scheduled = false
  #idle: Array<() => void> = []
  #failed: Error | undefined
  #failNext: Error | undefined
  #closed = false

  get head(): number {
    return this.#head
  }

  get earliest(): number {
    return this.#events.size === 0 ? this.#head + 1 : this.#first
  }

  get failed(): Error | undefined {
    return this.#failed
  }

  /** Nothing here rejects a promise nobody holds. */
  handledRejection(): boolean {
    return false
  }

  get ready(): boolean {
    return !this.#closed && this.#failed === undefined
  }

  get usedBytes(): number {
    let n = 0
    for (const b of this.#events.values()) n += b.length
    return n
  }

  refusal(): RelayError | undefined {
    if (this.#closed) return new RelayError('HOOKRELAY_JOURNAL_CLOSING', 'the relay is shutting down')
    if (this.#failed) return new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
    return undefined
  }

  /** The next commit fails with `err`, and the journal stops (fail-stop). */
  failNext(err: Error = new Error('injected I/O error')): void {
    this.#failNext = err
  }

  /** Drops entries with seq <= `through` (retention). */
  pruneThrough(through: number): void {
    for (let s = this.#first; s <= Math.min(through, this.#head); s++) this.#events.delete(s)
    this.#first = Math.max(this.#first, Math.min(through, this.#head) + 1)
  }

  addAppendHook(hook: AppendHook): void {
    this.#hooks.push(hook)
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  append(input: IngestInput): Promise<IngestResult> {
    const refused = this.refusal()
    if (refused) return Promise.reject(refused)
    const known = this.#runs.get(runKey(input.source, input.key))?.revisions.find((r) => r.sha256 === input.sha256)
    if (known) return Promise.resolve({ seq: known.seq, revision: known.revision, duplicate: true })
    return this.#submit(input, false)
  }

  async appendInternal(input: InternalInput): Promise<number> {
    const refused = this.refusal()
    if (refused) throw refused
    return (await this.#submit(input, true)).seq
  }

  async complete(queue: string, key: JobKey, input: InternalInput): Promise<number> {
    this.#open.add(queue)
    const refused = this.refusal()
    if (refused) throw refused
    return (await this.#submit(input, true, { queue, key })).seq
  }

  #submit(input: IngestInput | InternalInput, internal: boolean, done?: Pending['done']): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, internal, resolve, reject, ...(done ? { done } : {}) })
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    const batch = this.#queue.splice(0)
    const fail = this.#failNext ?? this.#failed
    if (fail) {
      this.#failNext = undefined
      this.#failed ??= fail
      const err = new RelayError('HOOKRELAY_JOURNAL_COMMIT_FAILED', 'the journal could not commit', { cause: fail })
      for (const p of batch) p.reject(err)
    } else {
      const outcomes: Array<() => void> = []
      for (const p of batch) {
        try {
          const r = this.#write(p)
          outcomes.push(() => p.resolve(r))
        } catch (e) {
          const err = new RelayError('HOOKRELAY_JOURNAL_ENTRY_REJECTED', 'the journal could not store this entry', { cause: e })
          outcomes.push(() => p.reject(err))
        }
      }
      this.onCommitTimed?.(0, batch.length)
      for (const o of outcomes) o()
      for (const l of this.#listeners) l(this.#head)
    }
    if (this.#queue.length === 0) for (const w of this.#idle.splice(0)) w()
  }

  /** One entry's transaction: staged, then applied only when nothing threw. */
  #write(p: Pending): IngestResult {
    const { input } = p
    const rk = runKey(input.source, input.key)
    const stored = this.#runs.get(rk)
    const previous = stored && structuredClone(stored)
    if (!p.internal) {
      const known = previous?.revisions.find((r) => r.sha256 === (input as IngestInput).sha256)
      if (known) return { seq: known.seq, revision: known.revision, duplicate: true }
    }
    const seq = this.#head + 1
    const receivedAt = new Date(input.receivedAt).toISOString()
    const { row, revision } = p.internal
      ? internalRow(previous, input as InternalInput, seq, receivedAt)
      : ingestRow(previous, input as IngestInput, seq, receivedAt)
    const staged = new Map<string, Map<string, QueuedJob<unknown> | null>>()
    const view: JobView = {
      getJob: <J>(queue: string, key: JobKey) => {
        const s = staged.get(queue)?.get(keyId(key))
        if (s !== undefined) return (s === null ? undefined : structuredClone(s.job)) as J | undefined
        const j = this.#queues.get(queue)?.get(keyId(key))
        return j && (structuredClone(j.job) as J)
      },
    }
    const stage = (changes: JobChanges | undefined | void): void => {
      if (!changes) return
      for (const r of changes.remove ?? []) stagedQueue(staged, r.queue).set(keyId(r.key), null)
      for (const e of changes.enqueue ?? []) this.#writable(e.queue)
      for (const e of changes.enqueue ?? []) stagedQueue(staged, e.queue).set(keyId(e.key), { key: [...e.key], job: structuredClone(e.job) })
    }
    if (p.done) stage({ remove: [p.done] })
    if (p.internal) stage((input as InternalInput).updateRow?.(row, view))
    for (const hook of this.#hooks) {
      stage(
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
    const ing = p.internal ? undefined : (input as IngestInput)
    const priv: EventPrivate = { sha256: ing ? ing.sha256 : '' }
    if (ing?.requestId !== undefined) priv.request_id = ing.requestId
    if (ing?.headers !== undefined) priv.headers = ing.headers
    const record = encodeEvent({ source: input.source, event: input.event, key: input.key, revision, received_at: receivedAt }, priv, input.body)
    // Nothing threw: the transaction commits.
    for (const [name, changes] of staged) {
      const q = this.#queueOf(name)
      for (const [id, j] of changes) {
        if (j === null) q.delete(id)
        else q.set(id, j)
      }
    }
    this.#events.set(seq, record)
    this.#runs.set(rk, structuredClone(row))
    this.#head = seq
    return { seq, revision, duplicate: false }
  }

  #writable(name: string): void {
    if (!this.#open.has(name)) throw new Error(`job queue ${name} is not open: call openQueue() at start`)
  }

  #queueOf(name: string): Queue {
    let q = this.#queues.get(name)
    if (q === undefined) {
      q = new Map()
      this.#queues.set(name, q)
    }
    return q
  }

  async read(after: number, limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = []
    for (let s = Math.max(after + 1, this.#first); s <= this.#head && out.length < limit; s++) {
      const raw = this.#events.get(s)
      if (raw) out.push(decodeEvent(s, Buffer.from(raw)))
    }
    return out
  }

  async get(seq: number): Promise<StoredEvent | undefined> {
    const raw = this.#events.get(seq)
    return raw && decodeEvent(seq, Buffer.from(raw))
  }

  async getRun(source: string, id: string): Promise<RunRow | undefined> {
    const r = this.#runs.get(runKey(source, id))
    return r && structuredClone(r)
  }

  async getCursor(name: string): Promise<StoredCursor | undefined> {
    const c = this.#cursors.get(name)
    return c && { ...c }
  }

  async saveCursors(acks: ReadonlyMap<string, number>): Promise<void> {
    if (this.#failed) return
    for (const [name, seq] of acks) this.#cursors.set(name, { seq, epoch: this.epoch })
  }

  async listCursors(): Promise<Array<{ name: string; seq: number }>> {
    return [...this.#cursors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, c]) => ({ name, seq: c.seq }))
  }

  async deleteCursor(name: string): Promise<boolean> {
    if (this.#failed) throw new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
    return this.#cursors.delete(name)
  }

  openQueue(name: string): void {
    this.#open.add(name)
  }

  async getJob<J>(queue: string, key: JobKey): Promise<J | undefined> {
    this.#open.add(queue)
    const j = this.#queues.get(queue)?.get(keyId(key))
    return j && (structuredClone(j.job) as J)
  }

  async claim<J>(queue: string, opts: ClaimOptions<J>): Promise<Array<QueuedJob<J>>> {
    const out: Array<QueuedJob<J>> = []
    if (opts.limit <= 0) return out
    for (const j of await this.jobs<J>(queue)) {
      if (opts.accept && !opts.accept(j.job, j.key)) continue
      out.push(j)
      if (out.length >= opts.limit) break
    }
    return out
  }

  async jobs<J>(queue: string): Promise<Array<QueuedJob<J>>> {
    this.#open.add(queue)
    const all = [...(this.#queues.get(queue)?.values() ?? [])].sort((a, b) => compareJobKeys(a.key, b.key))
    return all.map((j) => ({ key: [...j.key], job: structuredClone(j.job) as J }))
  }

  async changeJobs(change: (jobs: JobView) => JobChanges | undefined | void): Promise<void> {
    if (this.#failed) throw new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
    const view: JobView = { getJob: <J>(queue: string, key: JobKey) => this.#queues.get(queue)?.get(keyId(key))?.job as J | undefined }
    const changes = change(view)
    if (!changes) return
    for (const e of changes.enqueue ?? []) this.#writable(e.queue)
    for (const r of changes.remove ?? []) this.#queues.get(r.queue)?.delete(keyId(r.key))
    for (const e of changes.enqueue ?? []) this.#queueOf(e.queue).set(keyId(e.key), { key: [...e.key], job: structuredClone(e.job) })
  }

  idle(): Promise<void> {
    if (!this.#scheduled && this.#queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  async backup(): Promise<string> {
    throw new RelayError('HOOKRELAY_JOURNAL_BACKUP', 'an in-memory journal has nothing to copy')
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.idle()
  }
}

function runKey(source: string, id: string): string {
  return `${source}\u0000${id}`
}

function stagedQueue(staged: Map<string, Map<string, QueuedJob<unknown> | null>>, name: string): Map<string, QueuedJob<unknown> | null> {
  let q = staged.get(name)
  if (q === undefined) {
    q = new Map()
    staged.set(name, q)
  }
  return q
}
