import { EventEmitter } from 'node:events'
import type { DestinationConfig } from '../config/types.js'
import { eventMatcher } from '../fanout/event-glob.js'
import type { JournalPort } from '../journal/port.js'
import type { StoredEvent } from '../journal/record.js'
import type { Logger } from '../log.js'
import { Circuit, type CircuitState } from './circuit.js'
import { deliver, DeliveryAgents } from './deliver.js'
import type { DestinationMetrics } from './metrics.js'
import { deliveryHeaders } from './request-headers.js'
import { decide } from './retry.js'
import type { AttemptOutcome, AttemptRecord, DeadLetter, DestinationStore, PausedState } from './store.js'

/** Entries read from the journal at once (a bound on the bodies held beyond the window). */
const READ_AHEAD = 64

/** One event in the window: read from the journal (or a replayed dead letter) and not done with yet. */
interface Pending {
  event: StoredEvent
  /** Attempts in this run of the schedule (a replay or a restart starts it over). */
  tries: number
  /** Attempts recorded for this event before (so record numbers never repeat). */
  recorded: number
  nextAt: number
  inflight: boolean
  /** A dead letter sent again: outside the cursor's order. */
  replay: boolean
}

export interface WorkerEvents {
  /** An attempt ended and its record is stored. */
  attempt: [record: AttemptRecord]
}

/** What `GET /v1/destinations` shows of one destination. */
export interface DestinationSummary {
  name: string
  url: string
  sources: string[]
  events: string[]
  concurrency: number
  paused: boolean
  paused_reason: string | null
  circuit: CircuitState
  cursor: number
  head: number
  lag: number
  in_flight: number
  dead_letters: number
}

/**
 * Delivers one destination's events: a window of up to `concurrency` events
 * past its durable cursor, each retried on its own schedule; the cursor moves
 * past an event only once it and every event before it is delivered or
 * dead-lettered, so a restart resumes without loss (at most the window is
 * sent again). With `concurrency: 1` the window holds one event, so delivery
 * is in journal order.
 */
export class DestinationWorker extends EventEmitter<WorkerEvents> {
  readonly name: string
  #cfg: DestinationConfig
  #journal: JournalPort
  #store: DestinationStore
  #log: Logger
  #metrics: DestinationMetrics
  #agents: DeliveryAgents
  #circuit: Circuit
  #matches: ((event: string) => boolean) | null
  #sources: ReadonlySet<string> | null
  #cursor = 0
  /** The cursor last handed to the store, and that write. */
  #askedCursor = 0
  #cursorWrite: Promise<void> = Promise.resolve()
  /** Highest seq read into the window or passed over. */
  #scanned = 0
  /** Entries read from the journal in one batch and not yet taken into the window (or passed over), from `#aheadAt`. */
  #ahead: Array<StoredEvent | undefined> = []
  #aheadAt = 0
  /** The last seq read into `#ahead`. */
  #readTo = 0
  /** The metric children, looked up once instead of per attempt. */
  #counted = new Map<AttemptOutcome, { inc(): void }>()
  #latency: { observe(v: number): void }
  #window = new Map<number, Pending>()
  #replays: number[] = []
  #paused: PausedState | undefined
  #deadCount = 0
  /** Bumped by a replay from a seq, so answers to requests sent before it are dropped. */
  #generation = 0
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity
  #pumping = false
  #again = false
  #closed = false
  #inflight = new Set<Promise<void>>()

  private constructor(cfg: DestinationConfig, journal: JournalPort, store: DestinationStore, log: Logger, metrics: DestinationMetrics) {
    super()
    this.name = cfg.name
    this.#cfg = cfg
    this.#journal = journal
    this.#store = store
    this.#log = log
    this.#metrics = metrics
    this.#agents = new DeliveryAgents(cfg.concurrency)
    this.#circuit = new Circuit(cfg.circuit)
    this.#matches = eventMatcher(cfg.events)
    this.#sources = cfg.sources.includes('*') ? null : new Set(cfg.sources)
    this.#latency = metrics.latency.labels(cfg.name)
  }

  static async start(cfg: DestinationConfig, journal: JournalPort, store: DestinationStore, log: Logger, metrics: DestinationMetrics): Promise<DestinationWorker> {
    const w = new DestinationWorker(cfg, journal, store, log, metrics)
    w.#cursor = w.#askedCursor = w.#scanned = w.#readTo = await store.cursor(cfg.name)
    w.#paused = await store.paused(cfg.name)
    if (w.#paused?.paused !== true) w.#paused = undefined
    w.#deadCount = (await store.deadLetters(cfg.name)).length
    w.pump()
    return w
  }

  /** Takes over what a reload may change (url, headers, timeout, retry, circuit, keys). */
  update(cfg: DestinationConfig): void {
    this.#cfg = cfg
    this.#circuit.policy = cfg.circuit
    this.pump()
  }

  get config(): DestinationConfig {
    return this.#cfg
  }

  summary(): DestinationSummary {
    const head = this.#journal.head
    return {
      name: this.name,
      url: shownUrl(this.#cfg.url),
      sources: this.#cfg.sources,
      events: this.#cfg.events,
      concurrency: this.#cfg.concurrency,
      paused: this.#paused !== undefined,
      paused_reason: this.#paused?.reason ?? null,
      circuit: this.#circuit.state,
      cursor: this.#cursor,
      head,
      lag: Math.max(0, head - this.#cursor),
      in_flight: [...this.#window.values()].filter((p) => p.inflight).length,
      dead_letters: this.#deadCount,
    }
  }

  async pause(reason: string): Promise<void> {
    if (this.#paused !== undefined) return
    this.#paused = { paused: true, reason, at: Date.now() }
    await this.#store.savePaused(this.name, this.#paused)
    this.#log.warn({ destination: this.name, reason }, 'destination paused: no delivery until it is resumed')
  }

  async resume(): Promise<void> {
    const was = this.#paused
    this.#paused = undefined
    await this.#store.savePaused(this.name, { paused: false, reason: '', at: Date.now() })
    if (this.#circuit.reset() === 'closed') this.#log.warn({ destination: this.name }, 'destination circuit closed: delivering again')
    const now = Date.now()
    for (const p of this.#window.values()) if (!p.inflight) p.nextAt = now
    if (was !== undefined) this.#log.warn({ destination: this.name }, 'destination resumed')
    this.pump()
  }

  /** Sends everything after `seq - 1` again (at-least-once: what was delivered is delivered again). */
  async replayFrom(seq: number): Promise<void> {
    this.#generation++
    this.#window.clear()
    this.#replays = []
    this.#ahead = []
    this.#aheadAt = 0
    this.#cursor = this.#scanned = this.#readTo = Math.max(0, seq - 1)
    await this.#persistCursor()
    this.pump()
  }

  /** Queues every dead letter for another delivery; returns how many. */
  async replayDeadLetters(): Promise<number> {
    const dead = await this.#store.deadLetters(this.name)
    const queued = new Set([...this.#replays, ...[...this.#window.values()].map((p) => p.event.seq)])
    let n = 0
    for (const d of dead) {
      if (queued.has(d.seq)) continue
      this.#replays.push(d.seq)
      n++
    }
    this.pump()
    return n
  }

  attempts(seq: number | undefined, limit: number): Promise<AttemptRecord[]> {
    return this.#store.attempts(this.name, { seq, limit })
  }

  deadLetters(): Promise<DeadLetter[]> {
    return this.#store.deadLetters(this.name)
  }

  /** Looks for work: fills the window, starts what is due, and sets the timer for what is not. */
  pump(): void {
    if (this.#closed) return
    if (this.#pumping) {
      this.#again = true
      return
    }
    this.#pumping = true
    void this.#pumpOnce().then(
      () => {
        this.#pumping = false
        if (this.#again) {
          this.#again = false
          this.pump()
        }
      },
      (err: unknown) => {
        this.#pumping = false
        this.#log.error({ err, destination: this.name }, 'destination worker failed; trying again in a second')
        this.#arm(Date.now() + 1000)
      },
    )
  }

  async #pumpOnce(): Promise<void> {
    if (this.#paused !== undefined) return
    await this.#fill()
    if (this.#closed) return
    const now = Date.now()
    let soonest = Infinity
    for (const p of this.#window.values()) {
      if (p.inflight) continue
      if (p.nextAt > now) {
        soonest = Math.min(soonest, p.nextAt)
        continue
      }
      if (!this.#circuit.allow(now)) {
        if (this.#circuit.state === 'open') soonest = Math.min(soonest, this.#circuit.openUntil)
        break
      }
      this.#start(p)
    }
    this.#arm(soonest)
    this.#advanceCursor()
  }

  async #fill(): Promise<void> {
    const generation = this.#generation
    // A replay from a seq while this awaited has reset the window: this pass is stale.
    const stale = (): boolean => generation !== this.#generation
    const room = (): number => this.#cfg.concurrency - this.#window.size
    while (room() > 0 && this.#replays.length > 0) {
      const seq = this.#replays.shift()!
      const event = await this.#journal.get(seq)
      if (stale()) return
      if (event === undefined) {
        this.#log.warn({ destination: this.name, seq }, 'dead letter no longer in the journal (retention pruned it); left in the list')
        continue
      }
      const recorded = await this.#recorded(seq)
      if (stale()) return
      this.#window.set(seq, { event, tries: 0, recorded, nextAt: 0, inflight: false, replay: true })
    }
    while (room() > 0) {
      if (this.#aheadAt >= this.#ahead.length) {
        if (this.#readTo >= this.#journal.head) return
        // One read for many events; what the window has no room for yet waits here (not read again).
        const batch = await this.#journal.read(this.#readTo, READ_AHEAD)
        if (stale() || batch.length === 0) return
        this.#ahead = batch
        this.#aheadAt = 0
        this.#readTo = batch[batch.length - 1]!.seq
      }
      const event = this.#ahead[this.#aheadAt]!
      if (this.#wants(event) && !this.#window.has(event.seq)) {
        // Attempts recorded before a restart or a replay from a seq go on counting.
        // (Taken from the batch only after this: a failed read leaves it there for the next pass.)
        const recorded = await this.#recorded(event.seq)
        if (stale()) return
        this.#window.set(event.seq, { event, tries: 0, recorded, nextAt: 0, inflight: false, replay: false })
      }
      // Dropped from the batch as taken: a delivered event's body is not held until the batch is used up.
      this.#ahead[this.#aheadAt++] = undefined
      this.#scanned = event.seq
    }
  }

  #recorded(seq: number): Promise<number> {
    return this.#store.lastAttempt(this.name, seq)
  }

  #wants(e: StoredEvent): boolean {
    if (this.#sources !== null && !this.#sources.has(e.source)) return false
    if (this.#matches !== null && !this.#matches(e.event)) return false
    // Never our own dead-letter entries: one would be dead-lettered in turn, and so on.
    if (e.event === 'delivery.failed' && e.private.sha256 === '') {
      try {
        if ((JSON.parse(e.body.toString()) as { destination?: string }).destination === this.name) return false
      } catch {
        return true
      }
    }
    return true
  }

  #arm(at: number): void {
    if (at === Infinity || this.#closed) return
    if (this.#timer !== undefined && this.#timerAt <= at) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#timerAt = Infinity
      this.pump()
    }, Math.max(0, at - Date.now()))
  }

  #start(p: Pending): void {
    p.inflight = true
    p.tries++
    const run = this.#attempt(p, this.#generation).finally(() => this.#inflight.delete(run))
    this.#inflight.add(run)
  }

  async #attempt(p: Pending, generation: number): Promise<void> {
    const cfg = this.#cfg
    const e = p.event
    const at = Date.now()
    const { result, latencyMs } = await deliver({ url: cfg.url, headers: deliveryHeaders(e, cfg, this.#journal.epoch), body: e.body, timeoutMs: cfg.timeout_ms }, this.#agents)
    if (this.#closed || generation !== this.#generation) return
    const now = Date.now()
    const receivedAt = Date.parse(e.received_at)
    const decision = decide(cfg.retry, p.tries, receivedAt, now, result)
    const circuitChange = result.kind === 'failed' ? this.#circuit.failed(now) : this.#circuit.succeeded()
    if (circuitChange === 'open') {
      this.#log.warn(
        { destination: this.name, failures: cfg.circuit.failures, cooldown_ms: cfg.circuit.cooldown_ms },
        'destination circuit open: consecutive failures; probing after the cooldown',
      )
    } else if (circuitChange === 'closed') {
      this.#log.warn({ destination: this.name }, 'destination circuit closed: delivering again')
    }
    const outcome: AttemptOutcome = decision.kind === 'pause' ? 'paused' : decision.kind
    const record: AttemptRecord = {
      seq: e.seq,
      attempt: p.recorded + p.tries,
      at,
      status: result.status,
      latency_ms: latencyMs,
      error: result.kind === 'failed' ? result.error : result.kind === 'gone' ? 'status 410' : null,
      outcome,
      next_at: decision.kind === 'retry' ? decision.at : null,
    }
    // The record is for people reading it later: the next attempt need not wait for its write.
    const stored = this.#store.recordAttempt(this.name, record, cfg.attempts_kept).catch((err: unknown) => {
      this.#log.error({ err, destination: this.name, seq: e.seq }, 'cannot store a delivery attempt record')
    })
    let counter = this.#counted.get(outcome)
    if (counter === undefined) this.#counted.set(outcome, (counter = this.#metrics.attempts.labels(this.name, outcome)))
    counter.inc()
    switch (decision.kind) {
      case 'delivered':
        this.#latency.observe(Math.max(0, now - receivedAt) / 1000)
        this.#window.delete(e.seq)
        if (p.replay) {
          await this.#store.removeDeadLetter(this.name, e.seq)
          this.#deadCount = Math.max(0, this.#deadCount - 1)
        }
        break
      case 'pause':
        p.nextAt = now
        await this.pause(`gone (${result.status ?? 410})`)
        break
      case 'retry':
        p.nextAt = decision.at
        break
      case 'dead': {
        const dead: DeadLetter = { seq: e.seq, source: e.source, event: e.event, key: e.key, at: now, attempts: p.tries, reason: decision.reason }
        const known = (await this.#store.deadLetters(this.name)).some((d) => d.seq === e.seq)
        await this.#store.addDeadLetter(this.name, dead, {
          destination: this.name,
          seq: e.seq,
          source: e.source,
          event: e.event,
          key: e.key,
          attempts: p.tries,
          reason: decision.reason,
          failed_at: new Date(now).toISOString(),
        })
        if (!known) this.#deadCount++
        this.#window.delete(e.seq)
        break
      }
    }
    p.inflight = false
    this.pump()
    await stored
    this.emit('attempt', record)
  }

  #advanceCursor(): void {
    let low = this.#scanned
    for (const p of this.#window.values()) if (!p.replay && p.event.seq - 1 < low) low = p.event.seq - 1
    if (low <= this.#cursor) return
    this.#cursor = low
    void this.#persistCursor().catch((err: unknown) => this.#log.error({ err, destination: this.name }, 'cannot store the destination cursor'))
  }

  /**
   * Writes the cursor. The store batches it with the other destinations'
   * cursors and the attempt records asked for meanwhile, and writes batches
   * in order, so the last cursor asked for is the one that stays.
   */
  #persistCursor(): Promise<void> {
    if (this.#askedCursor !== this.#cursor) {
      this.#askedCursor = this.#cursor
      this.#cursorWrite = this.#store.saveCursor(this.name, this.#cursor)
    }
    return this.#cursorWrite
  }

  /** Stops starting attempts, waits for the ones in flight, stores the cursor. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#timer)
    this.#agents.destroy()
    await Promise.allSettled([...this.#inflight])
    await this.#persistCursor().catch(() => undefined)
  }
}

/** The URL without its query string, which may carry a credential; every token that may read the API sees it. */
function shownUrl(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : `${url.slice(0, q)}?…`
}
