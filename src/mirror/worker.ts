import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MirrorConfig } from '../config/types.js'
import type { JournalPort } from '../journal/port.js'
import type { Logger } from '../log.js'
import type { Extension } from '../extension.js'
import { downloadToFile, OriginStatusError, type Connector } from './fetch.js'
import { OriginPool } from './origin-pool.js'
import { MirrorMetrics, type MirrorSnapshot } from './mirror-metrics.js'
import { createOutbox, jobId, jobKey, MIRROR_QUEUE, type JobKey, type MirrorJob, type SpooledFile } from './outbox.js'
import { decideRetry, GONE_STATUSES } from './retry-policy.js'
import { appendCompleted, appendFailed } from './results.js'
import { mirrorOf, type MirrorFailure, type MirrorObject } from './run-part.js'
import type { ObjectStore } from './s3.js'
import { HostGuard, type Resolver } from './ssrf.js'
import { urlPath } from './urls.js'

/** Knobs for tests and embedding; the config covers everything a user sets. */
export interface MirrorOptions {
  /** Opens origin connections (tests count attempts with it). */
  connect?: Connector
  /** Resolves origin host names (tests simulate DNS answers with it). */
  resolve?: Resolver
  /** First retry delay; doubles per attempt, with jitter. Default 1 s. */
  retryBaseMs?: number
  /** Longest retry delay. Default 60 s. */
  retryMaxMs?: number
  /** Objects declaring at most this many bytes are held in memory, not spooled (default MEMORY_MAX_BYTES; 0: always spool). */
  memoryMaxBytes?: number
  /** Keep-alive origin sockets (default true; false: a fresh connection per GET, for measuring what the pool saves). */
  originKeepAlive?: boolean
  /** How long a confirmed object waits for others to share its commit (default COMMIT_WINDOW_MS). */
  commitWindowMs?: number
}

/**
 * Up to this size (by Content-Length) an object is downloaded into memory and
 * uploaded from there: no spool file is written, read and removed. Only when
 * it is not stored (upload or record failed) are the bytes written to the
 * spool and recorded on the job, like a spooled file's. A crash before that
 * loses them: the job is still in the journal, so the object is downloaded
 * again while its URL is valid (as a spooled file not yet recorded is).
 */
export const MEMORY_MAX_BYTES = 1024 * 1024
/** Bytes held in memory by all objects at once (transfers and recordings); past it, objects are spooled. */
export const MEMORY_BUDGET_BYTES = 16 * 1024 * 1024

/**
 * The mirror as a relay extension: registers the outbox hook, makes sure the
 * bucket exists, and runs the worker until the relay closes.
 *
 * @example
 *   const relay = await Relay.start(config, { extensions: [mirrorExtension()] })
 */
export function mirrorExtension(opts: MirrorOptions = {}): Extension {
  return async (relay) => {
    const cfg = relay.config.mirror
    if (!cfg.enabled) return undefined
    const log = relay.log.child({ component: 'mirror' })
    // minio (~35 MB of RSS) loads only when the mirror is on.
    const { ObjectStore } = await import('./s3.js')
    const store = new ObjectStore({ ...cfg, uploadTimeoutMs: cfg.timeouts.total_ms, idleMs: cfg.timeouts.headers_ms })
    const worker = new MirrorWorker({
      cfg,
      journal: relay.journal,
      store,
      log,
      guard: new HostGuard(cfg.allow_hosts, opts.resolve),
      spoolDir: join(relay.config.data_dir, 'spool'),
      opts,
    })
    // Registered before the relay listens, so no callback is journaled without its jobs.
    relay.journal.openQueue(MIRROR_QUEUE)
    relay.journal.addAppendHook(
      createOutbox({
        selectors: cfg.selectors,
        defaultDeadlineMs: cfg.default_deadline_ms,
        onJobs: () => worker.notePending(),
      }),
    )
    relay.journal.onCommit(() => worker.afterCommit())
    worker.metrics = new MirrorMetrics(relay.registry, () => worker.snapshot())
    // Not awaited: a store that is down or silent must not hold up ingest. Uploads
    // check the bucket again before each attempt until this has worked once.
    void store.ensureBucket().then(
      () => {
        worker.bucketReady = true
      },
      (err: unknown) => log.error({ err }, 'mirror bucket unavailable; jobs wait until it is'),
    )
    await worker.start()
    return { name: 'mirror', close: () => worker.close() }
  }
}

export interface WorkerDeps {
  cfg: MirrorConfig
  journal: JournalPort
  /** The bucket's store (the unit tests give a fake one). */
  store: Pick<ObjectStore, 'bucket' | 'ensureBucket' | 'upload' | 'confirm'>
  log: Logger
  guard: HostGuard
  spoolDir: string
  opts: MirrorOptions
}

interface Retry {
  attempts: number
  notBefore: number
  /** 403/404/410 answers for `url`; a fresh URL (redelivery) starts again at 0. */
  gone: number
  url: string
}

/**
 * Takes jobs earliest-deadline-first from the journal's MIRROR_QUEUE, at most
 * `concurrency` at a time: download into the spool (sha256 as it streams),
 * upload with a known size, then append `mirror.completed` and delete the job
 * in one transaction. Failures retry with exponential backoff and jitter
 * until the URL's deadline; the spooled file and its record survive restarts,
 * so an S3 outage after a download costs no second download.
 */
export class MirrorWorker {
  bucketReady = false
  metrics: MirrorMetrics | undefined
  readonly #d: WorkerDeps
  readonly #active = new Map<string, { abort: AbortController; done: Promise<void> }>()
  /** Objects uploaded whose size check and journal commit are under way (not a transfer slot each). */
  readonly #recording = new Map<string, Promise<void>>()
  readonly #toCommit: Array<{ job: MirrorJob; spooled: SpooledFile; resolve: () => void; reject: (e: unknown) => void }> = []
  #commitTimer: NodeJS.Timeout | undefined
  /** The spool directory was there at the last download; a failed attempt makes it checked again. */
  #spoolDirReady = false
  readonly #retry = new Map<string, Retry>()
  /** Keep-alive origin sockets, reused only for the same checked address, port, Host and TLS name. */
  readonly #pool: OriginPool
  readonly #memory = new MemoryBudget(MEMORY_BUDGET_BYTES)
  #timer: NodeJS.Timeout | undefined
  /** A claim is under way; `#again` asks for another one after it. */
  #claiming = false
  #again = false
  #pending = false
  #closing = false
  #closed: Promise<void> | undefined

  constructor(deps: WorkerDeps) {
    this.#d = deps
    this.#pool = new OriginPool({ maxIdlePerKey: deps.cfg.concurrency })
  }

  /** Cleans the spool of files no job refers to, then starts taking jobs (those left by a previous run first). */
  async start(): Promise<void> {
    mkdirSync(this.#d.spoolDir, { recursive: true })
    const keep = new Set<string>()
    for (const { job } of await this.#d.journal.jobs<MirrorJob>(MIRROR_QUEUE)) keep.add(spoolName(job))
    for (const name of await readdir(this.#d.spoolDir)) {
      if (!keep.has(name)) await rm(join(this.#d.spoolDir, name), { force: true })
    }
    this.#pump()
  }

  /** Called by the outbox inside a transaction that wrote jobs. */
  notePending(): void {
    this.#pending = true
  }

  /** Called after each commit: starts work on jobs the commit brought. */
  afterCommit(): void {
    if (!this.#pending) return
    this.#pending = false
    this.#pump()
  }

  async snapshot(): Promise<MirrorSnapshot> {
    const jobs = await this.#d.journal.jobs<MirrorJob>(MIRROR_QUEUE)
    const now = Date.now()
    let queued = 0
    let retrying = 0
    let soonest: number | undefined
    for (const { job } of jobs) {
      soonest ??= job.deadline
      const id = jobId(job)
      if (this.#active.has(id) || this.#recording.has(id)) continue
      if ((this.#retry.get(id)?.notBefore ?? 0) > now) retrying++
      else queued++
    }
    return { queued, active: this.#active.size + this.#recording.size, retrying, soonestDeadline: soonest }
  }

  /** Stops taking jobs, aborts transfers in flight (they resume on the next start), waits for them. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true
      clearTimeout(this.#timer)
      for (const a of this.#active.values()) a.abort.abort()
      await Promise.allSettled([...this.#active.values()].map((a) => a.done))
      // Started before the aborts: they end with their commit or their failure, within the store's bounds.
      await Promise.allSettled([...this.#recording.values()])
      this.#pool.destroy()
    })()
    return this.#closed
  }

  /** Takes the jobs it has room for; one claim at a time (a pump asked for meanwhile runs after it). */
  #pump(): void {
    if (this.#closing) return
    if (this.#claiming) {
      this.#again = true
      return
    }
    this.#claiming = true
    this.#claim()
      .catch((err: unknown) => {
        this.#d.log.error({ err }, 'mirror could not read its jobs; trying again')
        this.#wakeAt(Date.now() + (this.#d.opts.retryBaseMs ?? 1000))
      })
      .finally(() => {
        this.#claiming = false
        if (this.#again) {
          this.#again = false
          this.#pump()
        }
      })
  }

  async #claim(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const free = this.#d.cfg.concurrency - this.#active.size
    if (free <= 0) return
    const now = Date.now()
    let wake = Number.POSITIVE_INFINITY
    // Recordings are cheap but not free: past a bound, new transfers wait for them.
    if (this.#recording.size >= this.#d.cfg.concurrency * RECORDING_PER_SLOT) return
    const claimed = await this.#d.journal.claim<MirrorJob>(MIRROR_QUEUE, {
      limit: free,
      accept: (job) => {
        const id = jobId(job)
        if (this.#active.has(id) || this.#recording.has(id)) return false
        const notBefore = this.#retry.get(id)?.notBefore ?? 0
        if (notBefore > now) {
          wake = Math.min(wake, notBefore)
          return false
        }
        return true
      },
    })
    if (this.#closing) return
    for (const { job } of claimed) this.#begin(job)
    if (wake !== Number.POSITIVE_INFINITY) this.#wakeAt(wake)
  }

  #wakeAt(at: number): void {
    if (this.#closing) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#pump(), Math.max(0, at - Date.now()))
    this.#timer.unref()
  }

  #begin(job: MirrorJob): void {
    const id = jobId(job)
    const abort = new AbortController()
    const done = this.#run(job, abort.signal)
      .catch((err: unknown) => this.#unrecorded(job, err))
      .finally(() => {
        this.#active.delete(id)
        this.#pump()
      })
    this.#active.set(id, { abort, done })
  }

  async #run(job: MirrorJob, signal: AbortSignal): Promise<void> {
    const { cfg, store } = this.#d
    const t0 = performance.now()
    let spooled = job.spooled && (await this.#spoolIntact(job.spooled)) ? job.spooled : undefined
    /** A download not yet recorded on the job: recorded only if the object does not get stored. */
    let fresh: SpooledFile | undefined
    /** The bytes of a small object held in memory; written to the spool only if they are not stored. */
    let held: Buffer | undefined
    /** This object's share of the memory budget; the recording takes it over once the PUT is answered. */
    const share = this.#memory.share()
    let handedOver = false
    let downloadMs = 0
    try {
      if (!spooled) {
        // Once, and again after a failed attempt: an operator clearing data_dir/spool by hand costs a retry, not the deadline.
        if (!this.#spoolDirReady) {
          await mkdir(this.#d.spoolDir, { recursive: true })
          this.#spoolDirReady = true
        }
        const file = spoolName(job)
        const memoryMax = this.#d.opts.memoryMaxBytes ?? MEMORY_MAX_BYTES
        const got = await downloadToFile(job.url, join(this.#d.spoolDir, file), {
          guard: this.#d.guard,
          maxBytes: cfg.max_bytes,
          timeouts: cfg.timeouts,
          signal,
          ...(this.#d.opts.originKeepAlive === false ? {} : { pool: this.#pool }),
          hold: (declared) => declared <= memoryMax && share.take(declared),
          ...(this.#d.opts.connect ? { connect: this.#d.opts.connect } : {}),
        })
        downloadMs = performance.now() - t0
        spooled = { file, size: got.size, sha256: got.sha256, content_type: got.contentType, ...(got.md5 ? { md5: got.md5 } : {}) }
        fresh = spooled
        held = got.body
      }
      if (!this.bucketReady) {
        await store.ensureBucket()
        this.bucketReady = true
      }
      const t1 = performance.now()
      const stored = await store.upload(job.key, held ?? join(this.#d.spoolDir, spooled.file), spooled.size, spooled.content_type, signal)
      const uploadMs = performance.now() - t1
      // An ETag equal to the MD5 of the bytes sent confirms them, size and content, without a stat.
      const confirmed = spooled.md5 !== undefined && stored.etag === spooled.md5
      // The transfer slot is free from here. The size check and the journal
      // commit run beside the next transfers, so that the commits of objects
      // finishing together share one transaction instead of one each. Held
      // bytes stay held until then, within the memory budget.
      const id = jobId(job)
      const done = this.#record(job, spooled, fresh, held, confirmed, downloadMs, uploadMs)
        .catch((err: unknown) => this.#unrecorded(job, err))
        .finally(() => {
          share.release()
          this.#recording.delete(id)
          this.#pump()
        })
      handedOver = true
      this.#recording.set(id, done)
    } catch (err) {
      this.#spoolDirReady = false
      const kept = await this.#keepSpooled(job, fresh, held)
      share.release()
      if (this.#closing || signal.aborted) return
      await this.#failed(job, kept ? spooled : undefined, err)
    } finally {
      if (!handedOver) share.release()
    }
  }

  /** Confirms the stored object unless its ETag did, then appends `mirror.completed`; a failure goes the way of any failed attempt. */
  async #record(
    job: MirrorJob,
    spooled: SpooledFile,
    fresh: SpooledFile | undefined,
    held: Buffer | undefined,
    confirmed: boolean,
    downloadMs: number,
    uploadMs: number,
  ): Promise<void> {
    const t2 = performance.now()
    try {
      if (!confirmed) await this.#d.store.confirm(job.key, spooled.size)
      await this.#complete(job, spooled)
    } catch (err) {
      const kept = await this.#keepSpooled(job, fresh, held)
      if (this.#closing) return
      await this.#failed(job, kept ? spooled : undefined, err)
      return
    }
    this.metrics?.attempts.inc({ outcome: 'ok' })
    this.metrics?.objects.inc({ result: 'completed' })
    this.metrics?.bytes.inc(spooled.size)
    this.#retry.delete(jobId(job))
    // Held bytes never had a file of this attempt (start-up cleans what an earlier one may have left).
    if (held === undefined) await rm(join(this.#d.spoolDir, spooled.file), { force: true })
    this.#d.log.debug(
      {
        key: job.key,
        size: spooled.size,
        held: held !== undefined,
        download_ms: Math.round(downloadMs),
        upload_ms: Math.round(uploadMs),
        record_ms: Math.round(performance.now() - t2),
      },
      'mirrored',
    )
  }

  /** Only reached when recording the outcome failed (journal closing or failed): the job stays and is retried. */
  #unrecorded(job: MirrorJob, err: unknown): void {
    this.#d.log.error({ err, key: job.key }, 'mirror could not record an outcome')
    this.#retry.set(jobId(job), { attempts: 1, notBefore: Date.now() + (this.#d.opts.retryMaxMs ?? 60_000), gone: 0, url: job.url })
  }

  /**
   * Downloaded but not stored (store down, relay closing): keep the bytes for
   * the next attempt, across restarts too. Bytes held in memory are written to
   * the spool file first.
   */
  async #keepSpooled(job: MirrorJob, fresh: SpooledFile | undefined, held: Buffer | undefined): Promise<boolean> {
    if (fresh === undefined) return true
    const keep = async (): Promise<void> => {
      if (held !== undefined) {
        await mkdir(this.#d.spoolDir, { recursive: true })
        await writeFile(join(this.#d.spoolDir, fresh.file), held)
      }
      await this.#recordSpool(job, fresh)
    }
    return keep().then(
      () => true,
      (e: unknown) => {
        this.#d.log.warn({ err: e, key: job.key }, 'could not record a spooled download; it will be downloaded again')
        return false
      },
    )
  }

  async #spoolIntact(s: SpooledFile): Promise<boolean> {
    try {
      return (await stat(join(this.#d.spoolDir, s.file))).size === s.size
    } catch {
      return false
    }
  }

  /**
   * Notes a finished download on the job (the same object's job, whatever URL
   * it has by now), after an fsync of the file so that the record never
   * points at bytes a crash could lose.
   */
  async #recordSpool(job: MirrorJob, spooled: SpooledFile): Promise<void> {
    const { journal } = this.#d
    const fh = await open(join(this.#d.spoolDir, spooled.file), 'r+')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
    const row = await journal.getRun(job.source, job.id)
    await journal.changeJobs((jobs) => {
      const key = currentKey(job, jobs.getJob(MIRROR_QUEUE, jobKey(job)) !== undefined, row && mirrorOf(row).objects.find((x) => x.index === job.index))
      const cur = key && jobs.getJob<MirrorJob>(MIRROR_QUEUE, key)
      return key && cur ? { enqueue: [{ queue: MIRROR_QUEUE, key, job: { ...cur, spooled } }] } : undefined
    })
  }

  /**
   * Appends `mirror.completed` together with the other objects confirmed
   * within COMMIT_WINDOW_MS: the journal writes entries handed to it in one
   * tick as one transaction, so small files cost a commit per batch, not
   * per object. A full batch goes at once.
   */
  #complete(job: MirrorJob, s: SpooledFile): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#toCommit.push({ job, spooled: s, resolve, reject })
      if (this.#toCommit.length >= COMMIT_BATCH) this.#commitBatch()
      else this.#commitTimer ??= setTimeout(() => this.#commitBatch(), this.#d.opts.commitWindowMs ?? COMMIT_WINDOW_MS)
    })
  }

  #commitBatch(): void {
    clearTimeout(this.#commitTimer)
    this.#commitTimer = undefined
    for (const c of this.#toCommit.splice(0)) {
      appendCompleted(this.#d.journal, this.#d.store.bucket, c.job, c.spooled).then(c.resolve, c.reject)
    }
  }

  async #failed(job: MirrorJob, spooled: SpooledFile | undefined, err: unknown): Promise<void> {
    const id = jobId(job)
    const now = Date.now()
    const r = this.#retry.get(id) ?? { attempts: 0, notBefore: 0, gone: 0, url: job.url }
    if (r.url !== job.url) Object.assign(r, { gone: 0, url: job.url })
    r.attempts++
    if (err instanceof OriginStatusError && GONE_STATUSES.has(err.originStatus)) r.gone++
    const decision = decideRetry({
      err,
      attempts: r.attempts,
      goneAnswers: r.gone,
      now,
      deadline: job.deadline,
      spooled: spooled !== undefined,
      baseMs: this.#d.opts.retryBaseMs ?? 1000,
      maxMs: this.#d.opts.retryMaxMs ?? 60_000,
    })
    if ('retryAt' in decision) {
      r.notBefore = decision.retryAt
      this.#retry.set(id, r)
      this.metrics?.attempts.inc({ outcome: 'retry' })
      this.#d.log.warn(
        {
          key: job.key,
          code: decision.code,
          err: decision.message,
          attempts: r.attempts,
          retry_in_ms: Math.round(decision.retryAt - now),
        },
        'mirror attempt failed; will retry',
      )
      return
    }
    this.#retry.delete(id)
    this.metrics?.attempts.inc({ outcome: 'failed' })
    await this.#fail(job, { code: decision.code, message: decision.message })
  }

  async #fail(job: MirrorJob, reason: MirrorFailure): Promise<void> {
    if (await appendFailed(this.#d.journal, job, reason)) {
      this.#d.log.warn({ key: job.key, code: reason.code, err: reason.message }, 'mirror failed')
      this.metrics?.objects.inc({ result: 'failed' })
    }
    await rm(join(this.#d.spoolDir, spoolName(job)), { force: true })
  }
}

/**
 * Where this object's open job is now: its own key while it exists, else the
 * key a newer revision moved it to (a new deadline, same object path).
 */
function currentKey(job: MirrorJob, exists: boolean, o: MirrorObject | undefined): JobKey | undefined {
  if (exists) return jobKey(job)
  if (o?.state === 'pending' && o.deadline !== undefined && urlPath(o.url) === urlPath(job.url)) {
    return jobKey({ ...job, deadline: o.deadline })
  }
  return undefined
}

/** Uploaded objects awaiting their check and commit, per transfer slot, before new transfers wait. */
const RECORDING_PER_SLOT = 8
/** How long a confirmed object waits for others to share its commit; short next to a transfer. */
const COMMIT_WINDOW_MS = 5
/** Objects committed at once at most (a full batch does not wait for the window). */
const COMMIT_BATCH = 16

/** One spool file per object (stable across URL refreshes and restarts). */
function spoolName(job: { source: string; id: string; index: number }): string {
  return `${createHash('sha256').update(jobId(job)).digest('hex').slice(0, 32)}.spool`
}

/** The bytes small objects may hold in memory at once, shared out per object. */
class MemoryBudget {
  #used = 0
  readonly #max: number
  constructor(max: number) {
    this.#max = max
  }

  get used(): number {
    return this.#used
  }

  /** One object's share: `take` reserves (all or nothing), `release` gives back; both idempotent past the first call. */
  share(): { take(bytes: number): boolean; release(): void } {
    let mine = 0
    return {
      take: (bytes) => {
        if (mine > 0 || this.#used + bytes > this.#max) return false
        this.#used += bytes
        mine = bytes
        return true
      },
      release: () => {
        this.#used -= mine
        mine = 0
      },
    }
  }
}
