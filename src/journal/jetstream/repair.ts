/**
 * Rows other relays may have left behind: every callback entry another relay
 * published is checked a while later (its run row must include it), and the
 * row rolled forward when the relay died between publishing and writing it.
 */
import type { Logger } from '../../log.js'

interface Due {
  due: number
  source: string
  key: string
  seq: number
}

/** Entries waiting for a check, at most this many (the oldest are dropped beyond it, with a warning). */
const MAX_QUEUED = 10_000

export interface RepairDeps {
  log: Logger
  delayMs: number
  /** Whether the journal can write now (checks wait otherwise). */
  canWrite: () => boolean
  /** The stream seq the run row includes up to. */
  rowLast: (source: string, key: string) => Promise<number>
  /** Rolls the run row forward; whether there was anything to apply. */
  rollForward: (source: string, key: string) => Promise<boolean>
}

export class Repairs {
  #d: RepairDeps
  #queue: Due[] = []
  #timer: NodeJS.Timeout | undefined
  #own = new Set<number>()
  #closed = false

  constructor(deps: RepairDeps) {
    this.#d = deps
  }

  /** An entry this relay published and wrote the row of: no check needed. */
  own(seq: number): void {
    this.#own.add(seq)
  }

  /** An entry the tail delivered. */
  seen(seq: number, source: string, key: string): void {
    if (this.#own.delete(seq) || this.#closed) return
    if (this.#queue.length >= MAX_QUEUED) {
      const dropped = this.#queue.shift()!
      this.#d.log.warn({ seq: dropped.seq }, 'too many entries waiting for their run row check; the oldest is not checked')
    }
    this.#queue.push({ due: Date.now() + this.#d.delayMs, source, key, seq })
    if (this.#timer === undefined) this.#schedule()
  }

  #schedule(): void {
    const first = this.#queue[0]
    if (first === undefined || this.#closed) {
      this.#timer = undefined
      return
    }
    this.#timer = setTimeout(() => void this.#run(), Math.max(0, first.due - Date.now()))
    this.#timer.unref()
  }

  async #run(): Promise<void> {
    const now = Date.now()
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now && !this.#closed) {
      const r = this.#queue.shift()!
      if (!this.#d.canWrite()) {
        this.#queue.unshift({ ...r, due: now + this.#d.delayMs })
        break
      }
      try {
        if ((await this.#d.rowLast(r.source, r.key)) < r.seq && (await this.#d.rollForward(r.source, r.key))) {
          this.#d.log.warn({ seq: r.seq, source: r.source, key: r.key }, 'wrote the run row of an entry whose relay did not (it died between publishing and writing the row)')
        }
      } catch (err) {
        this.#d.log.warn({ err, seq: r.seq }, 'could not check the run row of an entry; retrying later')
        this.#queue.push({ ...r, due: Date.now() + this.#d.delayMs })
        break
      }
    }
    this.#schedule()
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
  }
}
