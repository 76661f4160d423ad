import { statfs } from 'node:fs/promises'
import { RelayError } from '../errors.js'

/** How often exact page statistics are read (they cost ~30 µs; see noteCommitted). */
const USAGE_REFRESH_MS = 100
/** How often free disk space is read. */
const DISK_CHECK_MS = 1000

/**
 * Keeps the journal inside its limits: `journal.map_size` (lmdb-js grows the
 * map by itself, so the limit is enforced here, before LMDB would fail) and
 * `journal.min_free` on the disk. Bytes queued but not yet committed count
 * too, so a burst of large bodies cannot overshoot either limit.
 *
 * Free disk space is read once a second; in between, every commit is taken
 * off the last reading at the same conservative estimate as `usedBytes`
 * (LMDB may reuse free pages, so the next reading can only give space back).
 * At full speed a second's worth of commits is far more than min_free.
 */
export class Capacity {
  #dir: string
  #measure: () => number
  #mapSize: number
  #minFree: number
  #usedBytes = 0
  #usageAt = 0
  #queued = 0
  #fsFree = Number.POSITIVE_INFINITY
  /** Estimated bytes written by commits since start, and its value when the last disk reading began. */
  #committed = 0
  #committedAtReading = 0
  #timer: NodeJS.Timeout | undefined

  /** `measure` returns the exact bytes of pages in use (LMDB page statistics). */
  constructor(dir: string, measure: () => number, mapSize: number, minFree: number) {
    this.#dir = dir
    this.#measure = measure
    this.#mapSize = mapSize
    this.#minFree = minFree
    this.refresh()
  }

  /** Reads free disk space now, then every second until `stop()`. */
  async start(): Promise<void> {
    await this.#checkDisk()
    this.#timer = setInterval(() => void this.#checkDisk(), DISK_CHECK_MS)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  get usedBytes(): number {
    return this.#usedBytes
  }

  set minFree(bytes: number) {
    this.#minFree = bytes
  }

  queued(bytes: number): void {
    this.#queued += bytes
  }

  settled(bytes: number): void {
    this.#queued -= bytes
  }

  /** Exact page statistics. */
  refresh(): void {
    this.#usageAt = performance.now()
    this.#usedBytes = this.#measure()
  }

  /** After a commit: exact at most every 100 ms, in between a conservative 2 × body + 4 KiB per entry. */
  noteCommitted(bodyBytes: number, entries: number): void {
    const estimate = 2 * bodyBytes + 4096 * entries
    this.#committed += estimate
    if (performance.now() - this.#usageAt >= USAGE_REFRESH_MS) this.refresh()
    else this.#usedBytes += estimate
  }

  /** Free disk space now: the last reading less what was committed since it began. */
  get diskFree(): number {
    return this.#fsFree - (this.#committed - this.#committedAtReading)
  }

  /** Why an entry of `bytes` would not fit now, or undefined. */
  refusal(bytes: number): RelayError | undefined {
    if (this.diskFree - 2 * this.#queued < this.#minFree) {
      return new RelayError('HOOKRELAY_JOURNAL_DISK_FULL', 'the disk holding data_dir is nearly full')
    }
    if (this.#usedBytes + 2 * (this.#queued + bytes) + 65536 > this.#mapSize) {
      return new RelayError('HOOKRELAY_JOURNAL_FULL', 'the journal reached journal.map_size')
    }
    return undefined
  }

  async #checkDisk(): Promise<void> {
    // Commits that land while statfs runs may or may not be in its answer: count them as not.
    const committed = this.#committed
    try {
      const s = await statfs(this.#dir)
      this.#fsFree = s.bavail * s.bsize
    } catch {
      // The directory vanished or the filesystem does not answer: refuse rather than guess.
      this.#fsFree = 0
    }
    this.#committedAtReading = committed
  }
}
