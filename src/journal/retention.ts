/**
 * Journal retention: prunes the oldest events by age (`journal.retention.max_age`)
 * and by size (`journal.retention.max_bytes`), in small transactions with a
 * yield between them so ingest's group commits never wait long behind it.
 *
 * Durable consumers hold events back: the age and size limits never prune past
 * the lowest acked seq among the stored consumer cursors. Only the hard limit
 * (halfway between `max_bytes` and `map_size`, see `hardLimitFor`) overrides
 * that, pruning down to `max_bytes` again; a consumer left behind then gets
 * `cursor_expired` from the hub when it resumes (or, when it is connected,
 * while it reads). Run rows (the projection) are kept: a pruned run's row still
 * answers, with `output: null`.
 */
import type { Logger } from '../log.js'
import type { LmdbJournal } from './lmdb-journal.js'

/** What retention needs of a journal: LMDB's, which prunes itself (a stream backend has its own limits). */
export type Prunable = Pick<
  LmdbJournal,
  'ready' | 'earliest' | 'usedBytes' | 'listCursors' | 'oldest' | 'measureUsedBytes' | 'prune'
>

export interface RetentionLimits {
  /** Events received longer ago than this are pruned (when every durable consumer acked them). */
  maxAgeMs: number
  /** The journal is pruned down to this many bytes of LMDB pages (same condition). */
  maxBytes: number
  /** Past this, events are pruned down to maxBytes even when a durable consumer has not acked them. */
  hardBytes: number
}

export type PruneReason = 'age' | 'size' | 'forced'

export interface RetentionPass {
  /** Entries removed, by reason. */
  pruned: Record<PruneReason, number>
  /** The first seq left in the journal. */
  earliest: number
  /** The lowest durable consumer ack that held pruning back, if any did. */
  heldBy: { name: string; seq: number } | undefined
}

export interface RetentionOptions {
  limits: RetentionLimits
  /** Pause between passes. Default 1000 ms. */
  intervalMs?: number
  /** Entries per prune transaction. Default 1000. */
  batch?: number
  /** Transactions per pass before waiting for the next interval. Default 100. */
  maxBatchesPerPass?: number
  /** Clock for the age limit (tests). */
  now?: () => number
  log?: Logger
  /** Called for each prune transaction that removed entries (metrics). */
  onPruned?: (count: number, reason: PruneReason) => void
}

/** The hard size limit for a journal: halfway between max_bytes and map_size. */
export function hardLimitFor(maxBytes: number, mapSize: number): number {
  return maxBytes + Math.floor(Math.max(0, mapSize - maxBytes) / 2)
}

/**
 * Runs retention passes every `intervalMs` from `start()` until `close()`.
 *
 * @example
 *   const retention = new Retention(journal, { limits: { maxAgeMs: 7 * 86_400_000, maxBytes: 2 ** 31, hardBytes: 3 * 2 ** 30 } })
 *   retention.start()
 *   // …
 *   await retention.close()
 */
export class Retention {
  #journal: Prunable
  #limits: RetentionLimits
  #intervalMs: number
  #batch: number
  #maxBatches: number
  #now: () => number
  #log: Logger | undefined
  #onPruned: RetentionOptions['onPruned']
  #timer: NodeJS.Timeout | undefined
  #running: Promise<RetentionPass> | undefined
  #waiters: Array<(p: RetentionPass) => void> = []
  #closed = false

  constructor(journal: Prunable, opts: RetentionOptions) {
    this.#journal = journal
    this.#limits = { ...opts.limits }
    this.#intervalMs = opts.intervalMs ?? 1000
    this.#batch = opts.batch ?? 1000
    this.#maxBatches = opts.maxBatchesPerPass ?? 100
    this.#now = opts.now ?? Date.now
    this.#log = opts.log
    this.#onPruned = opts.onPruned
  }

  get limits(): Readonly<RetentionLimits> {
    return this.#limits
  }

  /** New limits (config reload); the next pass uses them. */
  update(limits: RetentionLimits): void {
    this.#limits = { ...limits }
  }

  /** Schedules passes every intervalMs (the first one after intervalMs). */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#schedule()
  }

  #schedule(): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.run().then(
        () => this.#schedule(),
        (err: unknown) => {
          this.#log?.error({ err }, 'retention pass failed; retrying at the next interval')
          this.#schedule()
        },
      )
    }, this.#intervalMs)
    this.#timer.unref()
  }

  /** Resolves with the next pass that finishes (tests await pruning with it). */
  nextPass(): Promise<RetentionPass> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** The lowest acked seq among durable consumers, or undefined when there is none. */
  async floor(): Promise<{ name: string; seq: number } | undefined> {
    let low: { name: string; seq: number } | undefined
    for (const c of await this.#journal.listCursors()) if (low === undefined || c.seq < low.seq) low = c
    return low
  }

  /** Runs one pass now (or joins the one running). */
  run(): Promise<RetentionPass> {
    this.#running ??= this.#pass().finally(() => (this.#running = undefined))
    return this.#running
  }

  async #pass(): Promise<RetentionPass> {
    const j = this.#journal
    const pruned: Record<PruneReason, number> = { age: 0, size: 0, forced: 0 }
    let heldBy: RetentionPass['heldBy']
    for (let i = 0; i < this.#maxBatches && !this.#closed && j.ready; i++) {
      const { maxAgeMs, maxBytes, hardBytes } = this.#limits
      const oldest = j.oldest(this.#batch)
      if (oldest.length === 0) break
      const cutoff = this.#now() - maxAgeMs
      // Events are in seq order and received in that order: the old ones form a prefix.
      let ageThrough = 0
      for (const e of oldest) {
        if (e.receivedAt >= cutoff) break
        ageThrough = e.seq
      }
      const used = j.measureUsedBytes()
      const sizeThrough = used > maxBytes ? throughForBytes(oldest, used - maxBytes) : 0
      const forced = used > hardBytes
      const floor = await this.floor()
      const soft = Math.max(ageThrough, sizeThrough)
      let through = soft
      let reason: PruneReason = ageThrough >= sizeThrough ? 'age' : 'size'
      if (floor !== undefined && through > floor.seq) {
        if (forced) {
          reason = 'forced'
          if (pruned.forced === 0) {
            this.#log?.warn(
              { consumer: floor.name, acked: floor.seq, used_bytes: used, hard_bytes: hardBytes },
              'journal over its hard size limit: pruning events a durable consumer has not acked (it will get cursor_expired)',
            )
          }
        } else {
          heldBy = floor
          through = floor.seq
        }
      }
      if (through < oldest[0]!.seq) break
      const n = await j.prune(through, this.#batch)
      if (n === 0) break
      pruned[reason] += n
      this.#onPruned?.(n, reason)
      // Let the commits queued meanwhile go first.
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    const total = pruned.age + pruned.size + pruned.forced
    if (total > 0) {
      this.#log?.info({ pruned, earliest: j.earliest, used_bytes: j.usedBytes, held_by: heldBy }, 'retention pruned the oldest events')
    }
    const pass: RetentionPass = { pruned, earliest: j.earliest, heldBy }
    for (const w of this.#waiters.splice(0)) w(pass)
    return pass
  }

  /** Stops scheduling and waits for a running pass. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#running?.catch(() => undefined)
  }
}

/** The seq through which the oldest entries add up to `excess` bytes (or the last one given). */
function throughForBytes(oldest: Array<{ seq: number; bytes: number }>, excess: number): number {
  let sum = 0
  for (const e of oldest) {
    sum += e.bytes
    if (sum >= excess) return e.seq
  }
  return oldest[oldest.length - 1]!.seq
}
