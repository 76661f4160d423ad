import type { Config } from './config/types.js'
import { Journal } from './journal/journal.js'
import { createLogger, RejectLog, type Logger } from './log.js'
import { Metrics } from './metrics.js'
import { TokenBook } from './http/auth.js'
import { BodyBudget, registerSource, type SourceHandle } from './http/ingest.js'
import { IngestRateLimiter } from './http/rate-limit.js'
import { hardLimitFor, Retention, type RetentionOptions } from './journal/retention.js'
import { createVerifier } from './verify/index.js'
import type { Verifier } from './verify/types.js'
import { registerReadApi } from './http/read-api.js'
import { sendError } from './http/respond.js'
import { uws, type TemplatedApp, type us_listen_socket } from './http/uws.js'
import { RelayError } from './errors.js'

/** How long a fixed listen port is retried while it is still held. */
export const LISTEN_RETRY_MS = 15_000
/** `/readyz` answers 503 when the journal would refuse a callback of this size (an ordinary one). */
export const READY_PROBE_BYTES = 64 * 1024
/** Default bound on request body bytes held at once (see RelayOptions.maxBodyBytesInFlight). */
export const DEFAULT_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024

export interface RelayOptions {
  logger?: Logger
  /** Collect Node process metrics (off in tests that start many relays). */
  processMetrics?: boolean
  /**
   * Parts wired after the journal and the ingest routes, before the relay
   * listens (the fan-out hub, the mirror). Each registers its routes and its
   * close with `relay.addComponent`.
   */
  extensions?: Array<(relay: Relay) => Promise<void> | void>
  /** How long a request body may take to arrive (default 30 s). */
  bodyTimeoutMs?: number
  /**
   * Request body bytes held at once across all sources; past it new callbacks
   * get 503. Default: 64 MiB, or 4 × the largest `max_body` if that is more.
   */
  maxBodyBytesInFlight?: number
  /**
   * Retention knobs for tests: pass interval, clock, batch size; `start: false`
   * leaves passes to `relay.retention.run()`.
   */
  retention?: Pick<RetentionOptions, 'intervalMs' | 'now' | 'batch'> & { start?: boolean }
}

/** What a reload changed, for the log. */
export interface ReloadSummary {
  changed: string[]
}

/** Config keys a running relay cannot take over; changing them needs a restart. */
const RESTART_ONLY: Array<[string, (c: Config) => unknown]> = [
  ['listen', (c) => c.listen],
  ['data_dir', (c) => c.data_dir],
  ['sources (names, paths, schemes)', (c) => Object.values(c.sources).map((s) => [s.name, s.path, s.verify.scheme])],
  ['journal.map_size', (c) => c.journal.map_size],
  ['stream', (c) => c.stream],
  // The mirror worker takes its settings once at start and has no way to swap them.
  ['mirror', (c) => c.mirror],
]

/** Keys a reload applies, compared only to say in the log what changed. */
const RELOADABLE: Array<[string, (c: Config) => unknown]> = [
  ['sources (secrets, keys, tolerance, max_body)', (c) => c.sources],
  ['subscribers', (c) => c.subscribers],
  ['rate_limit', (c) => c.rate_limit],
  ['journal.retention', (c) => c.journal.retention],
  ['journal.min_free', (c) => c.journal.min_free],
  ['log.level', (c) => c.log.level],
  ['shutdown.drain', (c) => c.shutdown.drain_ms],
]

/**
 * A running relay: journal → HTTP. Start with `Relay.start(config)`; stop with
 * `close()` (graceful, idempotent).
 *
 * @example
 *   const relay = await Relay.start(loadConfig('config/hookrelay.yaml'))
 *   console.log(relay.port)
 *   await relay.close()
 */
export class Relay {
  readonly journal: Journal
  readonly metrics: Metrics
  readonly log: Logger
  readonly app: TemplatedApp
  /** Prunes the journal by age and size; closed with the relay. */
  readonly retention: Retention
  readonly rateLimiter: IngestRateLimiter
  #config: Config
  #tokens: TokenBook
  #listen: us_listen_socket | undefined
  #port = 0
  #closing = false
  #closed: Promise<void> | undefined
  #sources: SourceHandle[] = []
  /** Parts started after the journal and closed before it (fan-out hub, mirror). */
  #components: Array<{ name: string; close: () => Promise<void> | void }> = []
  #reloadListeners: Array<() => void> = []

  private constructor(config: Config, journal: Journal, metrics: Metrics, log: Logger, opts: RelayOptions) {
    this.#config = config
    this.journal = journal
    this.metrics = metrics
    this.log = log
    this.#tokens = new TokenBook(config.subscribers)
    this.rateLimiter = new IngestRateLimiter(config.rate_limit)
    this.#budgetFixed = opts.maxBodyBytesInFlight !== undefined
    this.bodyBudget = new BodyBudget(opts.maxBodyBytesInFlight ?? Relay.#defaultBodyBudget(config))
    this.retention = new Retention(journal, {
      ...opts.retention,
      limits: retentionLimits(config),
      log: log.child({ component: 'retention' }),
      onPruned: (n, reason) => metrics.pruned.labels(reason).inc(n),
    })
    this.app = uws.App()
  }

  /** Opens the journal, registers every route, and listens. */
  static async start(config: Config, opts: RelayOptions = {}): Promise<Relay> {
    const log = opts.logger ?? createLogger(config.log.level)
    const metrics = new Metrics({ defaultMetrics: opts.processMetrics !== false })
    metrics.ready.set(0)
    const journal = await Journal.open({
      dir: config.data_dir,
      mapSize: config.journal.map_size,
      minFree: config.journal.min_free,
    })
    const relay = new Relay(config, journal, metrics, log, opts)
    try {
      relay.#wire(opts)
      for (const extend of opts.extensions ?? []) await extend(relay)
      await relay.#listenNow()
    } catch (e) {
      await relay.close()
      throw e
    }
    if (opts.retention?.start !== false) relay.retention.start()
    metrics.ready.set(1)
    log.info(
      {
        address: `${config.listen.host}:${relay.port}`,
        sources: Object.values(config.sources).map((s) => ({ name: s.name, path: s.path, scheme: s.verify.scheme })),
        data_dir: config.data_dir,
        head: journal.head,
        epoch: journal.epoch,
      },
      'hookrelay listening',
    )
    return relay
  }

  /** The config in force (replaced by `reload`). */
  get config(): Config {
    return this.#config
  }

  /** The port actually bound (useful with `listen.port: 0`). */
  get port(): number {
    return this.#port
  }

  get tokens(): TokenBook {
    return this.#tokens
  }

  /** Ready = accepting callbacks: not closing, and the journal can commit an ordinary callback (not failed, disk and map not full). */
  get ready(): boolean {
    return !this.#closing && this.journal.refusal(READY_PROBE_BYTES) === undefined
  }

  /** Request body bytes held at once across sources (RelayOptions.maxBodyBytesInFlight). */
  readonly bodyBudget: BodyBudget
  #budgetFixed: boolean

  /** The default body budget for a config: 64 MiB, or 4 × its largest `max_body`. */
  static #defaultBodyBudget(config: Config): number {
    return Math.max(DEFAULT_BODY_BYTES_IN_FLIGHT, 4 * Math.max(0, ...Object.values(config.sources).map((s) => s.max_body)))
  }

  get closing(): boolean {
    return this.#closing
  }

  /**
   * Takes over a new config without dropping a connection: source secrets,
   * public keys, tolerance and max_body, subscriber tokens, rate limits,
   * retention, min_free, log level, shutdown drain. All or nothing: when a
   * restart-only key changed (listen, data_dir, source names/paths/schemes,
   * journal.map_size, stream, mirror) or a verifier cannot be built from the
   * new keys, it throws and the running config stays as it was.
   *
   * @throws RelayError `HOOKRELAY_CONFIG_RESTART_REQUIRED`, or the verifier's
   *   `HOOKRELAY_CONFIG_*` code.
   * @example
   *   relay.reload(ensureGeneratedSecrets(loadConfig(file)).config)
   */
  reload(next: Config): ReloadSummary {
    const prev = this.#config
    const restart = RESTART_ONLY.filter(([, pick]) => !sameValue(pick(prev), pick(next))).map(([key]) => key)
    if (restart.length > 0) {
      throw new RelayError(
        'HOOKRELAY_CONFIG_RESTART_REQUIRED',
        `changed ${restart.join(', ')}: these take effect only on a restart (systemctl restart hookrelay); nothing was reloaded`,
      )
    }
    // Build everything that can fail before swapping anything.
    const verifiers = new Map<string, Verifier>()
    for (const s of Object.values(next.sources)) verifiers.set(s.name, createVerifier(s.verify))
    const tokens = new TokenBook(next.subscribers)
    const changed = RELOADABLE.filter(([, pick]) => !sameValue(pick(prev), pick(next))).map(([key]) => key)

    for (const handle of this.#sources) {
      const source = next.sources[handle.source.name]!
      handle.replace(source, verifiers.get(source.name)!)
    }
    this.#tokens = tokens
    this.rateLimiter.update(next.rate_limit)
    // A reloaded max_body moves the default budget with it (4 × the largest).
    if (!this.#budgetFixed) this.bodyBudget.max = Relay.#defaultBodyBudget(next)
    this.retention.update(retentionLimits(next))
    this.journal.setMinFree(next.journal.min_free)
    if (this.log.level !== next.log.level) this.log.level = next.log.level
    this.#config = next
    for (const listener of this.#reloadListeners) {
      try {
        listener()
      } catch (err) {
        this.log.error({ err }, 'reload listener failed')
      }
    }
    return { changed }
  }

  /**
   * Calls `listener` after each applied reload, once the new config and tokens
   * are in force (the fan-out hub re-checks open streams against them).
   * @returns a function that removes the listener.
   */
  onReload(listener: () => void): () => void {
    this.#reloadListeners.push(listener)
    return () => {
      this.#reloadListeners = this.#reloadListeners.filter((l) => l !== listener)
    }
  }

  /** Adds a component closed (in reverse order) before the journal. */
  addComponent(name: string, close: () => Promise<void> | void): void {
    this.#components.push({ name, close })
  }

  #wire(opts: RelayOptions): void {
    const { app, journal, metrics, config, log } = this
    const rejects = new RejectLog(log)
    metrics.head.set(journal.head)
    journal.onCommit((head) => metrics.head.set(head))
    journal.onCommitTimed = (s, n) => {
      metrics.commitDuration.observe(s)
      metrics.commitBatch.observe(n)
    }
    for (const source of Object.values(config.sources)) {
      this.#sources.push(
        registerSource(app, source, {
          journal,
          metrics,
          log,
          rejects,
          closing: () => this.#closing,
          admit: this.rateLimiter.admit,
          bodyTimeoutMs: opts.bodyTimeoutMs,
          budget: this.bodyBudget,
        }),
      )
    }
    registerReadApi(app, { journal, tokens: () => this.#tokens })
    app.get('/livez', (res) => {
      res.writeHeader('content-type', 'application/json').end('{"ok":true}')
    })
    app.get('/readyz', (res) => {
      if (this.ready) {
        res.writeHeader('content-type', 'application/json').end(`{"ok":true,"head":${journal.head}}`)
      } else {
        const why = this.#closing ? 'closing' : (journal.refusal(READY_PROBE_BYTES)?.message ?? 'not ready')
        sendError(res, 503, 'HOOKRELAY_NOT_READY', why, { headers: { 'retry-after': '5' } })
      }
    })
    app.get('/metrics', (res) => {
      let aborted = false
      res.onAborted(() => (aborted = true))
      metrics.ready.set(this.ready ? 1 : 0)
      metrics.journalBytes.set(journal.usedBytes)
      metrics.oldestSeq.set(journal.earliest)
      metrics.registry.metrics().then(
        (text) => {
          if (aborted) return
          res.cork(() => {
            res.writeHeader('content-type', metrics.registry.contentType).end(text)
          })
        },
        (err: unknown) => {
          log.error({ err }, 'metrics failed')
          if (!aborted) res.cork(() => sendError(res, 500, 'HOOKRELAY_METRICS_FAILED', 'metrics failed'))
        },
      )
    })
  }

  /** Registered last, after every extension's routes. */
  #finishRoutes(): void {
    this.app.any('/*', (res, req) => {
      sendError(res, 404, 'HOOKRELAY_HTTP_NOT_FOUND', `nothing at ${req.getUrl()}`)
    })
  }

  /**
   * Binds the listen socket. A fixed port that is still held (a previous
   * instance draining under a restart, sockets of a just-closed relay) is
   * retried for up to LISTEN_RETRY_MS before start fails.
   */
  async #listenNow(): Promise<void> {
    this.#finishRoutes()
    const { host, port } = this.config.listen
    const deadline = Date.now() + (port === 0 ? 0 : LISTEN_RETRY_MS)
    for (let attempt = 0; ; attempt++) {
      const sock = await new Promise<us_listen_socket | false>((resolve) => this.app.listen(host, port, resolve))
      if (sock) {
        this.#listen = sock
        this.#port = uws.us_socket_local_port(sock as never)
        return
      }
      if (Date.now() >= deadline) {
        throw new RelayError(
          'HOOKRELAY_HTTP_LISTEN',
          `cannot listen on ${host}:${port}; is another process using the port, or is the address not on this machine?`,
        )
      }
      if (attempt === 0) this.log.warn({ host, port }, `cannot listen yet; retrying for up to ${LISTEN_RETRY_MS / 1000} s`)
      await new Promise((r) => setTimeout(r, 250))
    }
  }


  /**
   * Graceful stop: stop listening, answer new callbacks 503, let in-flight
   * commits finish, close components in reverse order, close LMDB. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close(): Promise<void> {
    this.#closing = true
    this.metrics.ready.set(0)
    if (this.#listen) uws.us_listen_socket_close(this.#listen)
    this.#listen = undefined
    for (const source of this.#sources) source.stop()
    this.rateLimiter.close()
    await this.retention.close()
    await this.journal.idle()
    for (const c of [...this.#components].reverse()) {
      try {
        await c.close()
      } catch (err) {
        this.log.error({ err, component: c.name }, 'component failed to close')
      }
    }
    await this.journal.close()
    // Keep-alive connections would keep the loop alive; the app is done.
    ;(this.app as unknown as { close(): void }).close()
    this.log.info({ head: this.journal.head }, 'hookrelay stopped')
  }
}

function retentionLimits(c: Config): { maxAgeMs: number; maxBytes: number; hardBytes: number } {
  const { max_age_ms, max_bytes } = c.journal.retention
  return { maxAgeMs: max_age_ms, maxBytes: max_bytes, hardBytes: hardLimitFor(max_bytes, c.journal.map_size) }
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
