import { RelayError } from '../errors.js'

/** What the group-commit writer needs from the store it writes to. */
export interface GroupCommitStore<T, R> {
  /**
   * Runs `fn` in one write transaction; resolves once the commit is durable.
   * A rejection that carries a `commitError` promise is an I/O failure of
   * the commit itself (lmdb-js's shape); any other rejection is an exception
   * before the commit.
   */
  transaction(fn: () => void): Promise<unknown>
  /** A nested transaction inside `transaction`'s: rolled back alone when `fn` throws. */
  childTransaction<V>(fn: () => V): V
  /** The last seq written (inside the transaction). */
  lastSeq(): number
  /** Writes one item inside the transaction after `head`; returns the new head and the item's result. */
  write(item: T, head: number): { head: number; result: R }
  /** Bytes an item adds to the store (capacity accounting). */
  bytesOf(item: T): number
  /** Called once the batch's bytes are no longer in flight (committed or not). */
  settled(bytes: number): void
  /** Called after a successful commit, before the callers' promises resolve. */
  committed(head: number, bytes: number, entries: number, seconds: number): void
  /** Called after a successful commit once every caller's promise has settled (commit listeners). */
  notify(): void
}

interface Pending<T, R> {
  item: T
  resolve: (r: R) => void
  reject: (e: unknown) => void
}

/**
 * Group commit: `submit()` calls are queued and written in one transaction
 * started from `setImmediate`; while it commits on lmdb's writer thread (its
 * fdatasync), the requests that arrive gather for the next one, which starts
 * when it settles. So the batch grows with the load whatever the arrival
 * pattern (node:http hands over requests of new connections one loop turn
 * at a time). Seqs are assigned inside the transaction from the last key, so
 * they stay gapless.
 *
 * An I/O error on commit makes the writer fail-stop (`failed`): an fsync that
 * failed may have lost pages, so it never retries and pretends.
 */
export class GroupCommit<T, R> {
  #store: GroupCommitStore<T, R>
  #queue: Array<Pending<T, R>> = []
  #scheduled = false
  #inflight = 0
  #idleWaiters: Array<() => void> = []
  #failed: Error | undefined
  #commitErrors = new WeakSet<Promise<unknown>>()

  constructor(store: GroupCommitStore<T, R>) {
    this.#store = store
  }

  /** Set after an I/O error on commit. */
  get failed(): Error | undefined {
    return this.#failed
  }

  /**
   * Whether `err` is lmdb-js's copy of a commit failure this writer already
   * handled: lmdb-js rejects one more internal promise per failed commit,
   * which nothing can await, with an error that carries the same
   * `commitError` promise (matched by identity, not by message text).
   */
  handled(err: unknown): boolean {
    const commitError = (err as { commitError?: unknown } | null)?.commitError
    return commitError instanceof Promise && this.#commitErrors.has(commitError)
  }

  /** Queues an item for the next batch; resolves with its result once its commit is durable. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      // A commit in flight starts the next batch when it settles.
      if (!this.#scheduled && this.#inflight === 0) {
        this.#scheduled = true
        setImmediate(this.#flush)
      }
    })
  }

  /** Resolves when no commit is queued or running. */
  idle(): Promise<void> {
    if (this.#inflight === 0 && this.#queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #flush = (): void => {
    this.#scheduled = false
    const batch = this.#queue
    this.#queue = []
    if (batch.length === 0) return
    const store = this.#store
    let batchBytes = 0
    for (const p of batch) batchBytes += store.bytesOf(p.item)
    if (this.#failed) {
      store.settled(batchBytes)
      const err = new RelayError('HOOKRELAY_JOURNAL_FAILED', 'the journal stopped after an I/O error')
      for (const p of batch) p.reject(err)
      this.#settle()
      return
    }
    const results: Array<R | Error> = new Array(batch.length)
    let newHead = 0
    const started = process.hrtime.bigint()
    this.#inflight++
    const writeOne = (i: number, head: number): number => {
      const w = store.write(batch[i]!.item, head)
      results[i] = w.result
      return w.head
    }
    store
      .transaction(() => {
        const base = store.lastSeq()
        // The whole batch in one child transaction (the common case pays one
        // nesting per batch, not per entry). If an entry throws (a hook, a
        // value LMDB refuses), that child is rolled back and each entry is
        // written in a child of its own, so the bad one fails alone without
        // taking its batch, or the relay, down with it.
        try {
          newHead = store.childTransaction(() => {
            let h = base
            for (let i = 0; i < batch.length; i++) h = writeOne(i, h)
            return h
          })
        } catch {
          newHead = base
          for (let i = 0; i < batch.length; i++) {
            try {
              newHead = store.childTransaction(() => writeOne(i, newHead))
            } catch (e) {
              results[i] = e instanceof Error ? e : new Error(String(e))
            }
          }
        }
      })
      .then(
        () => {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9
          store.settled(batchBytes)
          store.committed(newHead, batchBytes, batch.length, seconds)
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
          store.notify()
        },
        (cause: unknown) => {
          store.settled(batchBytes)
          // lmdb-js hangs the underlying I/O error on a second promise; it is reported here, not unhandled.
          const commitError = (cause as { commitError?: Promise<unknown> }).commitError
          commitError?.catch(() => undefined)
          if (commitError !== undefined) this.#commitErrors.add(commitError)
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
}
