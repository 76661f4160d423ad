/**
 * The journal on a NATS JetStream stream (cluster mode): a second
 * implementation of `JournalPort`, shared by every relay on the same
 * `journal.jetstream` config. The protocol — subjects, message ids, the run
 * projection's compare-and-set and the order of the steps — is written down
 * in docs/architecture.md, "JetStream backend".
 *
 * In short: each callback entry is published on its run's own subject with
 * `Nats-Msg-Id` = hash(source, key, revision, body) and the expectation that
 * the subject's last seq is the one the run row says. The stream thereby
 * orders a run's revisions itself (two relays can never both publish the same
 * revision), JetStream's duplicate window absorbs concurrent copies, and the
 * KV run row (compare-and-set) remembers bodies for the run's life. The row is
 * a function of the run's entries, so any relay rolls it forward from the
 * stream when a relay died between publishing and writing it.
 */
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type MsgRequest, type StoredMsg, type StreamInfo } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import { randomBytes } from 'node:crypto'
import type { JournalConfig, JetStreamConfig } from '../../config/types.js'
import { RelayError } from '../../errors.js'
import type { Logger } from '../../log.js'
import type { ClaimOptions, CommitListener, JournalPort, QueuedJob, StoredCursor } from '../port.js'
import { decodeEvent, encodeEvent, type EventPrivate, type StoredEvent } from '../record.js'
import { internalRow } from '../run-row.js'
import type { AppendHook, IngestInput, IngestResult, InternalInput, JobChanges, JobKey, JobView, RunRow } from '../types.js'
import { isConflict } from './errors.js'
import { JobStore } from './jobs.js'
import { cursorKey, cursorName, entryMsgId, internalSubject, isCallbackSubject, runSubject } from './keys.js'
import { bucketName } from './names.js'
import { connectCluster } from './options.js'
import { entryFromMsg, Projection, type CallbackEntry, type RowState } from './projection.js'
import { ensureStream } from './setup.js'
import { Tail } from './tail.js'

export interface JetStreamJournalOptions {
  log: Logger
  /** How long a job claimed by this relay stays leased without renewal (default 30 s). */
  leaseMs?: number
  /** How often the stream's state is checked (readiness, backwards moves). Default 1000 ms. */
  pollMs?: number
  /** Bytes of the newest entries kept in memory for reads (default 32 MiB). */
  cacheBytes?: number
  /** How long after an entry another relay published this relay checks its run row was written (default 5 s). */
  repairDelayMs?: number
}

/** Attempts of one append before it gives up (each lost compare-and-set is one). */
const MAX_ATTEMPTS = 32
/** How long the stream may stay below the head this relay has seen (a new leader applying) before the journal fails. */
const BEHIND_GRACE_MS = 10_000
/** Parallel direct gets of one range read outside the cache. */
const READ_PARALLEL = 32

interface Meta {
  epoch: string
  /** The stream's `created` time when the epoch was made. */
  stream_created: string
  created_at: string
}

export class JetStreamJournal implements JournalPort {
  readonly #nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #jsm: JetStreamManager
  readonly #cfg: JetStreamConfig
  readonly #stream: string
  readonly #log: Logger
  readonly #runs: Projection
  readonly #cursors: KV
  readonly #jobs: JobStore
  readonly #tail: Tail
  readonly #epoch: string
  readonly #created: string
  #first: number
  #messages: number
  #bytes: number
  #available = true
  #unavailableReason = ''
  #failed: RelayError | undefined
  #closed = false
  #inflight = 0
  #idleWaiters: Array<() => void> = []
  #listeners = new Set<CommitListener>()
  #hooks: AppendHook[] = []
  #poll: NodeJS.Timeout
  #polling = false
  /** When a check first found the stream's last seq below this relay's head. */
  #behindSince: number | undefined
  /** The head at the previous check (a tail that stopped moving while the stream grew is restarted). */
  #headAtCheck = -1
  /** Seqs this relay projected itself (no repair check needed). */
  #own = new Set<number>()
  #repairs: Array<{ due: number; source: string; key: string; seq: number }> = []
  #repairTimer: NodeJS.Timeout | undefined
  #repairDelayMs: number
  onCommitTimed: ((seconds: number, entries: number) => void) | undefined

  private constructor(p: {
    nc: NatsConnection
    js: JetStreamClient
    jsm: JetStreamManager
    cfg: JetStreamConfig
    log: Logger
    runs: KV
    cursors: KV
    jobs: JobStore
    tail: Tail
    epoch: string
    info: StreamInfo
    opts: JetStreamJournalOptions
  }) {
    this.#nc = p.nc
    this.#js = p.js
    this.#jsm = p.jsm
    this.#cfg = p.cfg
    this.#stream = p.cfg.stream
    this.#log = p.log
    this.#cursors = p.cursors
    this.#jobs = p.jobs
    this.#tail = p.tail
    this.#epoch = p.epoch
    this.#created = p.info.created
    this.#first = p.info.state.first_seq
    this.#messages = p.info.state.messages
    this.#bytes = p.info.state.bytes
    this.#repairDelayMs = p.opts.repairDelayMs ?? 5000
    this.#runs = new Projection(p.runs, p.jobs, this.#hooks, p.epoch, p.log)
    // Entries the stream no longer holds (retention) are skipped; anything else missing is a stream that lost them.
    this.#tail.onSkip = (from, through) => {
      if (through < this.#first || this.#failed) return true
      this.#fail(`stream ${this.#stream} skipped entries ${from}..${through} that it should still hold (its first seq is ${this.#first})`)
      return false
    }
    this.#tail.onEntry = (e) => {
      if (this.#messages === 0 || this.#first === 0) this.#first = e.event.seq
      this.#messages++
      for (const l of this.#listeners) l(this.#tail.head)
      if (isCallbackSubject(this.#stream, e.subject)) this.#noteForRepair(e.event)
    }
    this.#poll = setInterval(() => void this.#check(), p.opts.pollMs ?? 1000)
    this.#poll.unref()
    void (async () => {
      for await (const s of p.nc.status()) {
        if (s.type === 'disconnect') this.#unavailable('disconnected from NATS')
        else if (s.type === 'reconnect') void this.#check()
      }
    })().catch(() => undefined)
  }

  /**
   * Connects to the cluster, creates or checks the stream and the KV buckets
   * beside it, and starts following the stream.
   * @throws RelayError HOOKRELAY_JETSTREAM_* from `connectCluster` (unreachable, refused
   *   credentials, unreadable files), HOOKRELAY_JOURNAL_STREAM_REFUSED when the existing
   *   stream breaks the contract, HOOKRELAY_JOURNAL_STREAM_OPEN when the stream or its
   *   buckets cannot be created or read.
   */
  static async open(journal: JournalConfig, opts: JetStreamJournalOptions): Promise<JetStreamJournal> {
    const cfg = journal.jetstream
    if (cfg === undefined) throw new Error('the jetstream backend needs journal.jetstream')
    const log = opts.log
    const nc = await connectCluster(cfg, `hookrelay ${hostname()} ${process.pid}`)
    try {
      const jsm = await jetstreamManager(nc, { timeout: cfg.timeout_ms })
      const js = jetstream(nc, { timeout: cfg.timeout_ms })
      const setup = await ensureStream(jsm, journal)
      if (setup.refusal !== undefined) throw new RelayError('HOOKRELAY_JOURNAL_STREAM_REFUSED', `stream ${cfg.stream}: ${setup.refusal}`)
      for (const w of setup.warnings) log.warn({ stream: cfg.stream }, w)
      if (setup.created) log.info({ stream: cfg.stream, replicas: cfg.replicas }, 'created the journal stream')
      const kvm = new Kvm(js)
      const bucket = (kind: 'runs' | 'cursors' | 'jobs' | 'meta'): Promise<KV> =>
        // Gets answered by the bucket's leader only: a replica's direct get may miss a compare-and-set just won.
        kvm.create(bucketName(cfg.stream, kind), { replicas: cfg.replicas, history: 1, allow_direct: false })
      const [runs, cursors, jobsKv, meta] = await Promise.all([bucket('runs'), bucket('cursors'), bucket('jobs'), bucket('meta')])
      const epoch = await JetStreamJournal.#epochOf(meta, setup.info, log)
      const jobs = await JobStore.open(jobsKv, `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`, opts.leaseMs ?? 30_000)
      const tail = await Tail.start(js, cfg.stream, setup.info.state.last_seq, opts.cacheBytes ?? 32 * 1024 * 1024)
      return new JetStreamJournal({ nc, js, jsm, cfg, log, runs, cursors, jobs, tail, epoch, info: setup.info, opts })
    } catch (err) {
      await nc.close().catch(() => undefined)
      if (err instanceof RelayError) throw err
      throw new RelayError('HOOKRELAY_JOURNAL_STREAM_OPEN', `cannot open the journal on stream ${cfg.stream}: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * The epoch kept in `<stream>_meta` with the stream's created time: a stream
   * created again since (deleted and recreated, restored) gets a new epoch, so
   * subscribers see `epoch_changed` instead of wrong cursors.
   */
  static async #epochOf(meta: KV, info: StreamInfo, log: Logger): Promise<string> {
    for (;;) {
      const e = await meta.get('epoch')
      const stored = e && e.operation === 'PUT' ? e.json<Meta>() : undefined
      if (stored && stored.stream_created === info.created) return stored.epoch
      const next: Meta = { epoch: randomBytes(8).toString('hex'), stream_created: info.created, created_at: new Date().toISOString() }
      try {
        if (stored) {
          await meta.update('epoch', JSON.stringify(next), e!.revision)
          log.error(
            { stream: info.config.name, was: stored.stream_created, now: info.created, epoch: next.epoch },
            'the journal stream was created again since this journal last ran: its seqs started over, so the journal takes a new epoch',
          )
        } else await meta.create('epoch', JSON.stringify(next))
        return next.epoch
      } catch (err) {
        if (!isConflict(err)) throw err
      }
    }
  }

  get epoch(): string {
    return this.#epoch
  }

  get head(): number {
    return this.#tail.head
  }

  get earliest(): number {
    const head = this.head
    if (this.#messages === 0 || this.#first === 0) return head + 1
    return Math.min(this.#first, head + 1)
  }

  get failed(): Error | undefined {
    return this.#failed
  }

  handledRejection(): boolean {
    return false
  }

  get ready(): boolean {
    return this.refusal() === undefined
  }

  refusal(): RelayError | undefined {
    if (this.#closed) return new RelayError('HOOKRELAY_JOURNAL_CLOSING', 'the relay is shutting down')
    if (this.#failed) return this.#failed
    if (!this.#available) return new RelayError('HOOKRELAY_JOURNAL_UNAVAILABLE', `the journal stream is unavailable: ${this.#unavailableReason}`)
    return undefined
  }

  get usedBytes(): number {
    return this.#bytes
  }

  addAppendHook(hook: AppendHook): void {
    this.#hooks.push(hook)
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Marks the stream unavailable until the next successful check. */
  #unavailable(reason: string): void {
    if (this.#available) this.#log.warn({ stream: this.#stream, reason }, 'journal stream unavailable: ingest answers 503')
    this.#available = false
    this.#unavailableReason = reason
  }

  #fail(reason: string): void {
    if (this.#failed) return
    this.#failed = new RelayError('HOOKRELAY_JOURNAL_STREAM_CHANGED', reason)
    this.#log.error({ stream: this.#stream, epoch: this.#epoch, head: this.head }, `journal stopped acknowledging: ${reason}`)
  }

  /** Checks the stream: reachable with a leader (readiness), and never moved backwards or recreated. */
  async #check(): Promise<void> {
    if (this.#polling || this.#closed) return
    this.#polling = true
    try {
      const info = await this.#jsm.streams.info(this.#stream)
      if (info.created !== this.#created) {
        this.#fail(`stream ${this.#stream} was recreated (created ${this.#created}, now ${info.created})`)
      } else if (info.state.last_seq < this.head) {
        // Right after a leader change the new leader may not have applied every committed entry yet: wait a while.
        this.#behindSince ??= Date.now()
        if (Date.now() - this.#behindSince < BEHIND_GRACE_MS) {
          this.#unavailable(`the stream's last seq ${info.state.last_seq} is behind the ${this.head} this relay has seen (a new leader catching up?)`)
          return
        }
        this.#fail(`stream ${this.#stream} went backwards: its last seq is ${info.state.last_seq}, this relay had seen ${this.head}`)
      } else if (this.#behindSince !== undefined && !(await this.#sameAtHead())) {
        this.#fail(`stream ${this.#stream} holds another entry at seq ${this.head} than it delivered before`)
      } else if (info.state.messages > 0 && this.#messages > 0 && info.state.first_seq < this.#first) {
        this.#fail(`stream ${this.#stream} went backwards: its first seq is ${info.state.first_seq}, it was ${this.#first}`)
      }
      this.#behindSince = undefined
      // The stream is ahead and the tail did not move since the last check: its consumer is gone; make a new one.
      const head = this.head
      if (info.state.last_seq > head && head === this.#headAtCheck) void this.#tail.restart().catch(() => undefined)
      this.#headAtCheck = head
      this.#first = info.state.first_seq
      this.#messages = info.state.messages
      this.#bytes = info.state.bytes
      if (this.#cfg.replicas > 1 && !info.cluster?.leader) this.#unavailable('the stream has no leader (no quorum)')
      else {
        if (!this.#available) this.#log.info({ stream: this.#stream }, 'journal stream available again')
        this.#available = true
      }
    } catch (err) {
      this.#unavailable((err as Error).message)
    } finally {
      this.#polling = false
    }
  }

  /** Whether the stream's entry at head is the one the tail delivered (after the stream was seen behind). */
  async #sameAtHead(): Promise<boolean> {
    const seen = this.#tail.cached(this.head)
    if (seen === undefined) return true
    return sameEntry(await this.#message({ seq: this.head }), seen)
  }

  /** A publish or KV error as the answer ingest gives (503 for the cluster being unable, with Retry-After). */
  #asRelayError(err: unknown): RelayError {
    if (err instanceof RelayError) return err
    this.#unavailable((err as Error).message)
    void this.#check()
    return new RelayError('HOOKRELAY_JOURNAL_UNAVAILABLE', `the journal stream could not take the entry: ${(err as Error).message}`, { cause: err })
  }

  async #track<T>(fn: () => Promise<T>): Promise<T> {
    const refused = this.refusal()
    if (refused) throw refused
    this.#inflight++
    try {
      return await fn()
    } catch (err) {
      throw this.#asRelayError(err)
    } finally {
      if (--this.#inflight === 0) for (const w of this.#idleWaiters.splice(0)) w()
    }
  }

  append(input: IngestInput): Promise<IngestResult> {
    return this.#track(() => this.#ingest(input))
  }

  async #ingest(input: IngestInput): Promise<IngestResult> {
    const subject = runSubject(this.#stream, input.source, input.key)
    /** Set when the run's newest entry left the stream by retention: the next publish expects what the subject now holds. */
    let expectOverride: number | undefined
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { state, kvRev } = await this.#runs.read(input.source, input.key)
      const known = state?.row.revisions.find((r) => r.sha256 === input.sha256)
      if (known) {
        // Another relay's entry may not be in this relay's view yet: answer once it is.
        await this.#visible(known.seq)
        return { seq: known.seq, revision: known.revision, duplicate: true }
      }
      const revision = (state?.row.revision ?? 0) + 1
      const receivedAt = new Date(input.receivedAt).toISOString()
      const priv: EventPrivate = { sha256: input.sha256 }
      if (input.requestId !== undefined) priv.request_id = input.requestId
      if (input.headers !== undefined) priv.headers = input.headers
      const data = encodeEvent({ source: input.source, event: input.event, key: input.key, revision, received_at: receivedAt }, priv, input.body)
      const hdrs = natsHeaders()
      if (input.status !== undefined) hdrs.set('Hookrelay-Status', input.status)
      const expected = expectOverride ?? state?.last ?? 0
      const started = process.hrtime.bigint()
      let ack
      try {
        ack = await this.#js.publish(subject, data, {
          msgID: entryMsgId(input.source, input.key, revision, input.sha256),
          expect: { lastSubjectSequence: expected },
          headers: hdrs,
          timeout: this.#cfg.timeout_ms,
        })
      } catch (err) {
        if (!isConflict(err)) throw err
        // Another relay published an entry of this run since the row was read: roll the row forward and decide again.
        const moved = await this.#rollForward(input.source, input.key, subject)
        if (!moved) expectOverride = await this.#subjectMoved(subject, state, expected)
        continue
      }
      this.onCommitTimed?.(Number(process.hrtime.bigint() - started) / 1e9, 1)
      if (ack.duplicate) {
        // A copy of this same body, as this same revision, was published first (by any relay): its entry is the
        // one. The PubAck of a copy whose original is still being replicated carries seq 0, so the answer comes
        // from the row once the original is in the stream.
        if (!(await this.#rollForward(input.source, input.key, subject)) && ack.seq === 0) await sleep(Math.min(50, 2 ** attempt))
        continue
      }
      this.#own.add(ack.seq)
      const entry: CallbackEntry = { seq: ack.seq, revision, receivedAt, input }
      const txn = this.#jobs.begin()
      const next = this.#runs.apply(state, [entry], txn)
      if (!(await this.#runs.write(input.source, input.key, next, kvRev, txn))) await this.#rollForward(input.source, input.key, subject)
      await this.#visible(ack.seq)
      return { seq: ack.seq, revision, duplicate: false }
    }
    throw new RelayError('HOOKRELAY_JOURNAL_UNAVAILABLE', `too many concurrent writers on run ${input.source}/${input.key}; retry`)
  }

  /**
   * A publish expected `expected` as the run's last seq and the row has no
   * newer entry to roll forward to: either the run's newest entry was removed
   * by retention (the next publish expects what the subject holds now), or the
   * stream lost an entry the row had seen, which stops the journal.
   */
  async #subjectMoved(subject: string, state: RowState | undefined, expected: number): Promise<number | undefined> {
    const lastMsg = await this.#message({ last_by_subj: subject })
    const actual = lastMsg?.seq ?? 0
    if (actual > expected) return undefined
    if (state && expected > 0 && expected < this.earliest) return actual
    this.#fail(`stream ${this.#stream} lost entry ${expected} of a run (its subject now ends at ${actual})`)
    throw this.#failed
  }

  /**
   * Brings the run's row up to the stream: every callback entry on the run's
   * subject newer than the row is applied (hooks and jobs included) and the
   * row written by compare-and-set. Returns whether there was anything to apply.
   */
  async #rollForward(source: string, key: string, subject: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { state, kvRev } = await this.#runs.read(source, key)
      const entries: CallbackEntry[] = []
      for (let s = (state?.last ?? 0) + 1; ; ) {
        const m = await this.#message({ seq: s, next_by_subj: subject })
        if (!m) break
        entries.push(entryFromMsg(m))
        s = m.seq + 1
      }
      if (entries.length === 0) return false
      const txn = this.#jobs.begin()
      const next = this.#runs.apply(state, entries, txn)
      if (await this.#runs.write(source, key, next, kvRev, txn)) return true
    }
    throw new RelayError('HOOKRELAY_JOURNAL_UNAVAILABLE', `too many concurrent writers on run ${source}/${key}; retry`)
  }

  /** Waits (bounded) until this relay's tail has seen `seq`, so that reads and subscribers here see the entry once its append resolves. */
  async #visible(seq: number): Promise<void> {
    if (!(await this.#tail.waitFor(seq, this.#cfg.timeout_ms))) {
      this.#log.warn({ seq, head: this.head }, 'an entry the stream acknowledged is not in this relay\'s view of it yet')
    }
  }

  /** Entries other relays published: their run rows are checked after a delay, and rolled forward when a relay died before writing them. */
  #noteForRepair(e: StoredEvent): void {
    if (this.#own.delete(e.seq)) return
    if (this.#repairs.length >= 10_000) this.#repairs.shift()
    this.#repairs.push({ due: Date.now() + this.#repairDelayMs, source: e.source, key: e.key, seq: e.seq })
    if (this.#repairTimer === undefined) this.#scheduleRepair()
  }

  #scheduleRepair(): void {
    const first = this.#repairs[0]
    if (first === undefined || this.#closed) {
      this.#repairTimer = undefined
      return
    }
    this.#repairTimer = setTimeout(() => void this.#repair(), Math.max(0, first.due - Date.now()))
    this.#repairTimer.unref()
  }

  async #repair(): Promise<void> {
    const now = Date.now()
    while (this.#repairs.length > 0 && this.#repairs[0]!.due <= now && !this.#closed) {
      const r = this.#repairs.shift()!
      if (this.refusal()) {
        this.#repairs.unshift(r)
        break
      }
      try {
        const { state } = await this.#runs.read(r.source, r.key)
        if ((state?.last ?? 0) < r.seq) {
          if (await this.#rollForward(r.source, r.key, runSubject(this.#stream, r.source, r.key))) {
            this.#log.warn({ seq: r.seq, source: r.source, key: r.key }, 'wrote the run row of an entry whose relay did not (it died between publishing and writing the row)')
          }
        }
      } catch (err) {
        this.#log.warn({ err, seq: r.seq }, 'could not check the run row of an entry; retrying later')
        this.#repairs.push({ ...r, due: Date.now() + this.#repairDelayMs })
        break
      }
    }
    this.#scheduleRepair()
  }

  appendInternal(input: InternalInput): Promise<number> {
    return this.#track(() => this.#internal(input, undefined))
  }

  complete(queue: string, key: JobKey, input: InternalInput): Promise<number> {
    return this.#track(() => this.#internal(input, { queue, key }))
  }

  /**
   * The relay's own entry: published on the run's internal subject (outside
   * its revision chain, never deduplicated), then the row and the jobs are
   * updated by compare-and-set, `done` (the job `complete` finishes) deleted
   * last. A relay dying in between leaves the job in place, so it is done
   * again and a second outcome entry follows (see docs/architecture.md).
   */
  async #internal(input: InternalInput, done: { queue: string; key: JobKey } | undefined): Promise<number> {
    const first = await this.#runs.read(input.source, input.key)
    const receivedAt = new Date(input.receivedAt).toISOString()
    const revision = first.state?.row.revision ?? 0
    const data = encodeEvent({ source: input.source, event: input.event, key: input.key, revision, received_at: receivedAt }, { sha256: '' }, input.body)
    const started = process.hrtime.bigint()
    const ack = await this.#js.publish(internalSubject(this.#stream, input.source, input.key), data, { timeout: this.#cfg.timeout_ms })
    this.onCommitTimed?.(Number(process.hrtime.bigint() - started) / 1e9, 1)
    for (let attempt = 0, cur = first; attempt < MAX_ATTEMPTS; attempt++, cur = await this.#runs.read(input.source, input.key)) {
      const txn = this.#jobs.begin()
      if (done) txn.apply({ remove: [done] })
      const { row } = internalRow(cur.state?.row, input, ack.seq, receivedAt)
      txn.apply(input.updateRow?.(row, txn))
      this.#runs.runHooks(
        { seq: ack.seq, source: input.source, event: input.event, key: input.key, revision, json: input.json, row, previous: cur.state?.row, internal: true },
        txn,
      )
      const state: RowState = { row, last: cur.state?.last ?? 0, epoch: this.#epoch }
      if (await this.#runs.write(input.source, input.key, state, cur.kvRev, txn)) {
        await this.#visible(ack.seq)
        return ack.seq
      }
    }
    throw new RelayError('HOOKRELAY_JOURNAL_UNAVAILABLE', `too many concurrent writers on run ${input.source}/${input.key}; retry`)
  }

  async read(after: number, limit: number): Promise<StoredEvent[]> {
    const head = this.head
    if (after >= head || limit <= 0) return []
    const from = Math.max(after + 1, this.earliest)
    const through = Math.min(head, from + limit - 1)
    const cached = this.#tail.range(from, through)
    if (cached) return cached
    const seqs: number[] = []
    for (let s = from; s <= through; s++) seqs.push(s)
    const out: Array<StoredEvent | undefined> = new Array(seqs.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < seqs.length) {
        const i = next++
        out[i] = await this.get(seqs[i]!)
      }
    }
    await Promise.all(Array.from({ length: Math.min(READ_PARALLEL, seqs.length) }, worker))
    return out.filter((e): e is StoredEvent => e !== undefined)
  }

  async get(seq: number): Promise<StoredEvent | undefined> {
    if (seq < 1 || seq > this.head) return undefined
    const hit = this.#tail.cached(seq)
    if (hit) return hit
    const m = await this.#message({ seq })
    return m ? decodeEvent(m.seq, Buffer.from(m.data)) : undefined
  }

  /**
   * One message from the stream's leader (`STREAM.MSG.GET`), or null. Not a
   * direct get: those are answered by any replica, which may not hold an
   * acknowledged entry yet.
   */
  #message(query: { seq: number } | { seq: number; next_by_subj: string } | { last_by_subj: string }): Promise<StoredMsg | null> {
    return this.#jsm.streams.getMessage(this.#stream, query as MsgRequest)
  }

  async getRun(source: string, id: string): Promise<RunRow | undefined> {
    return (await this.#runs.read(source, id)).state?.row
  }

  async getCursor(name: string): Promise<StoredCursor | undefined> {
    const e = await this.#cursors.get(cursorKey(name))
    if (!e || e.operation !== 'PUT') return undefined
    const c = e.json<{ seq: number; epoch: string }>()
    return { seq: c.seq, epoch: c.epoch }
  }

  async saveCursors(acks: ReadonlyMap<string, number>): Promise<void> {
    if (acks.size === 0 || this.#failed) return
    const at = Date.now()
    await Promise.all([...acks].map(([name, seq]) => this.#cursors.put(cursorKey(name), JSON.stringify({ seq, epoch: this.#epoch, at }))))
  }

  async listCursors(): Promise<Array<{ name: string; seq: number }>> {
    const out: Array<{ name: string; seq: number }> = []
    const keys: string[] = []
    for await (const k of await this.#cursors.keys()) keys.push(k)
    for (const k of keys.sort()) {
      const e = await this.#cursors.get(k)
      if (e && e.operation === 'PUT') out.push({ name: cursorName(k), seq: e.json<{ seq: number }>().seq })
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async deleteCursor(name: string): Promise<boolean> {
    if (this.#failed) throw this.#failed
    const e = await this.#cursors.get(cursorKey(name))
    if (!e || e.operation !== 'PUT') return false
    await this.#cursors.delete(cursorKey(name))
    return true
  }

  /** Queues are key prefixes of one bucket: nothing to open (any name may be written at any time). */
  openQueue(name: string): void {
    void name
  }

  getJob<J>(queue: string, key: JobKey): Promise<J | undefined> {
    return this.#jobs.get<J>(queue, key)
  }

  claim<J>(queue: string, opts: ClaimOptions<J>): Promise<Array<QueuedJob<J>>> {
    return this.#jobs.claim(queue, opts)
  }

  async jobs<J>(queue: string): Promise<Array<QueuedJob<J>>> {
    return this.#jobs.list<J>(queue)
  }

  async changeJobs(change: (jobs: JobView) => JobChanges | undefined | void): Promise<void> {
    if (this.#failed) throw this.#failed
    const txn = this.#jobs.begin()
    txn.apply(change(txn))
    await this.#jobs.write(txn.changes)
  }

  idle(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  async backup(): Promise<string> {
    throw new RelayError('HOOKRELAY_JOURNAL_BACKUP', `the jetstream backend keeps no local journal to copy: back up stream ${this.#stream} and its KV buckets on the NATS side`)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#poll)
    if (this.#repairTimer) clearTimeout(this.#repairTimer)
    await this.idle()
    this.#tail.stop()
    this.#jobs.close()
    await this.#nc.close().catch(() => undefined)
  }
}

/** Whether a stream message is the entry `seen` (same fields, same body). */
function sameEntry(m: StoredMsg | null, seen: StoredEvent): boolean {
  if (m === null) return false
  const now = decodeEvent(m.seq, Buffer.from(m.data))
  return now.fragment.equals(seen.fragment) && now.body.equals(seen.body) && now.private.sha256 === seen.private.sha256
}
