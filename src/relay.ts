import type { Config } from './config/types.js'
import type { LmdbJournal } from './journal/lmdb-journal.js'
import type { JournalPort } from './journal/port.js'
import { openJournal } from './journal/open.js'
import { createLogger, RejectLog, type Logger } from './log.js'
import { Metrics } from './metrics.js'
import { TokenBook } from './http/auth.js'
import { BodyBudget, registerSource, type BytesBudget, type SourceHandle } from './http/ingest.js'
import { IngestThreads, ingestThreadCount, threadSettings } from './http/ingest-threads.js'
import { SharedBodyBudget } from './http/shared-budget.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { canonicalIp, IngestRateLimiter } from './http/rate-limit.js'
import { hardLimitFor, Retention, type RetentionOptions } from './journal/retention.js'
import { createVerifier } from './verify/index.js'
import type { Verifier } from './verify/types.js'
import { registerReadApi } from './http/read-api.js'
import { registerHealth } from './http/health.js'
import { uws, type TemplatedApp } from './http/uws.js'
import { HttpFront } from './http/front.js'
import { StreamBridge } from './http/stream-bridge.js'
import { RelayError } from './errors.js'
import type { Component, Extension, RelayHost } from './extension.js'
import { reloadedKeys, restartRequired } from './reload-diff.js'
import { minFreeWarning } from './journal/data-dir.js'

/** How long a fixed listen port is retried while it is still held. */
export const LISTEN_RETRY_MS = 15_000
/** `/readyz` answers 503 when the journal would refuse a callback of this size (an ordinary one). */
export const READY_PROBE_BYTES = 64 * 1024
/** Default bound on request body bytes held at once (`http.max_body_in_flight`). */
export const DEFAULT_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024

export interface RelayOptions {
  logger?: Logger
  /** Collect Node process metrics (off in tests that start many relays). */
  processMetrics?: boolean
  /**
   * Parts built on the relay's host after the journal and the ingest routes,
   * before the relay listens (the mirror, the fan-out hub), in this order;
   * closed in reverse before the journal.
   */
  extensions?: Extension[]
  /** How long a fixed listen port that is in use is retried before start fails (default LISTEN_RETRY_MS). */
  listenRetryMs?: number
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

/**
 * A running relay: journal → extensions → HTTP. Start with
 * `Relay.start(config)`; stop with `close()` (graceful, idempotent).
 *
 * @example
 *   const relay = await Relay.start(loadConfig('config/hookrelay.yaml'))
 *   console.log(relay.port)
 *   await relay.close()
 */
export class Relay {
  readonly journal: JournalPort
  /** The journal when it is LMDB's (`journal.backend: lmdb`); undefined on JetStream. */
  readonly lmdb: LmdbJournal | undefined
  readonly metrics: Metrics
  readonly log: Logger
  /** The uWS app that serves WebSocket routes, behind the HTTP front (see http/stream-bridge.ts). */
  readonly app: TemplatedApp
  /** The public listener (node:http) and its router. */
  readonly front: HttpFront
  /** Prunes an LMDB journal by age and size; closed with the relay (JetStream prunes by the stream's limits). */
  readonly #retention: Retention | undefined
  readonly rateLimiter: IngestRateLimiter
  /** Request body bytes held at once, across sources and per client address (`http.max_body_in_flight`, `http.max_body_per_address`). */
  readonly bodyBudget: BytesBudget
  /** Ingest threads (`http.threads` > 1); undefined on one thread, where the front below is the public listener. */
  #threads: IngestThreads | undefined
  #threadCount: number
  /** The private directory of the main thread's listener behind the ingest threads. */
  #privateDir: string | undefined
  #config: Config
  #tokens: TokenBook
  #rejects: RejectLog
  #bridge: StreamBridge | undefined
  #wsPaths: string[] = []
  #closing = false
  #closed: Promise<void> | undefined
  #sources: SourceHandle[] = []
  /** Started extensions, closed in reverse order before the journal. */
  #components: Component[] = []
  #reloadListeners: Array<() => void> = []

  private constructor(config: Config, journal: JournalPort, lmdb: LmdbJournal | undefined, metrics: Metrics, log: Logger, opts: RelayOptions) {
    this.#config = config
    this.journal = journal
    this.lmdb = lmdb
    this.metrics = metrics
    this.log = log
    this.#tokens = new TokenBook(config.subscribers)
    this.rateLimiter = new IngestRateLimiter(config.rate_limit)
    const budget = Relay.#bodyBudgetFor(config)
    this.#threadCount = ingestThreadCount(config)
    this.bodyBudget = this.#threadCount > 1 ? new SharedBodyBudget(budget) : new BodyBudget(budget.max, budget.perAddress)
    this.#retention = lmdb && new Retention(lmdb, {
      ...opts.retention,
      limits: retentionLimits(config),
      log: log.child({ component: 'retention' }),
      onPruned: (n, reason) => metrics.pruned.labels(reason).inc(n),
    })
    this.app = uws.App()
    this.#rejects = new RejectLog(log)
    this.front = new HttpFront({
      log,
      rejects: this.#rejects,
      headersTimeoutMs: config.http.header_timeout_ms,
      keepAliveTimeoutMs: config.http.keepalive_timeout_ms,
      // A backstop only: ingest answers its own 408 at body_timeout.
      requestTimeoutMs: config.http.header_timeout_ms + config.http.body_timeout_ms + 5000,
      // Behind ingest threads, the public connections are theirs.
      ...(this.#threadCount > 1 ? { connections: () => this.#threads?.connections ?? 0 } : {}),
    })
  }

  /** Opens the journal, registers every route, starts the extensions, and listens. */
  static async start(config: Config, opts: RelayOptions = {}): Promise<Relay> {
    const log = opts.logger ?? createLogger(config.log.level)
    const metrics = new Metrics({ defaultMetrics: opts.processMetrics !== false })
    metrics.ready.set(0)
    const { journal, lmdb } = await openJournal(config, log)
    const relay = new Relay(config, journal, lmdb, metrics, log, opts)
    if (lmdb) relay.#warnMinFree(config)
    try {
      relay.#wire()
      const host = relay.#host()
      for (const extend of opts.extensions ?? []) {
        const component = await extend(host)
        if (component) relay.#components.push(component)
      }
      await relay.#listenNow(opts.listenRetryMs ?? LISTEN_RETRY_MS)
    } catch (e) {
      await relay.close()
      throw e
    }
    if (opts.retention?.start !== false) relay.#retention?.start()
    metrics.ready.set(1)
    log.info(
      {
        address: `${config.listen.host}:${relay.port}`,
        sources: Object.values(config.sources).map((s) => ({ name: s.name, path: s.path, scheme: s.verify.scheme })),
        data_dir: config.data_dir,
        head: journal.head,
        epoch: journal.epoch,
        ingest_threads: relay.#threadCount,
      },
      'hookrelay listening',
    )
    return relay
  }

  /**
   * The LMDB journal's retention passes.
   * @throws Error on the JetStream backend, which prunes by the stream's `max_age`/`max_bytes` instead.
   */
  get retention(): Retention {
    if (this.#retention === undefined) throw new Error("retention passes run on the lmdb backend only; JetStream prunes by the stream's max_age/max_bytes")
    return this.#retention
  }

  /** The config in force (replaced by `reload`). */
  get config(): Config {
    return this.#config
  }

  /** The port actually bound (useful with `listen.port: 0`). */
  get port(): number {
    return this.#threads?.port ?? this.front.port
  }

  /** Threads serving ingest (1: the main thread alone). */
  get ingestThreads(): number {
    return this.#threadCount
  }

  /** Ready = accepting callbacks: not closing, and the journal can commit an ordinary callback (not failed, disk and map not full). */
  get ready(): boolean {
    return !this.#closing && this.journal.refusal(READY_PROBE_BYTES) === undefined
  }

  /** A started extension's component by name (tests and benchmarks look inside the hub with it). */
  component<T extends Component>(name: string): T | undefined {
    return this.#components.find((c) => c.name === name) as T | undefined
  }

  /**
   * The body budget for a config. Defaults: 64 MiB or 4 × the largest
   * `max_body`, whichever is more; per address an eighth of that, but at
   * least one largest body.
   */
  static #bodyBudgetFor(config: Config): { max: number; perAddress: number } {
    const largest = Math.max(0, ...Object.values(config.sources).map((s) => s.max_body))
    const max = config.http.max_body_in_flight ?? Math.max(DEFAULT_BODY_BYTES_IN_FLIGHT, 4 * largest)
    const perAddress = config.http.max_body_per_address ?? Math.min(max, Math.max(largest, Math.floor(max / 8)))
    return { max, perAddress }
  }

  /**
   * Takes over a new config without dropping a connection: source secrets,
   * public keys, tolerance and max_body, subscriber tokens, rate limits,
   * retention, min_free, log level, shutdown drain, the body budget, the
   * metrics token. All or nothing: when a restart-only key changed (see
   * reload-diff.ts) or a verifier cannot be built from the new keys, it
   * throws and the running config stays as it was.
   *
   * @throws RelayError `HOOKRELAY_CONFIG_RESTART_REQUIRED`, or the verifier's
   *   `HOOKRELAY_CONFIG_*` code.
   * @example
   *   relay.reload(ensureGeneratedSecrets(loadConfig(file)).config)
   */
  reload(next: Config): ReloadSummary {
    const prev = this.#config
    const restart = restartRequired(prev, next)
    if (ingestThreadCount(next) !== this.#threadCount) restart.push('http.threads')
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
    const changed = reloadedKeys(prev, next)

    for (const handle of this.#sources) {
      const source = next.sources[handle.source.name]!
      handle.replace(source, verifiers.get(source.name)!)
    }
    this.#threads?.reload(threadSettings(next))
    this.#tokens = tokens
    this.rateLimiter.update(next.rate_limit)
    // A reloaded max_body moves the default budget with it (4 × the largest).
    const budget = Relay.#bodyBudgetFor(next)
    this.bodyBudget.max = budget.max
    this.bodyBudget.perAddress = budget.perAddress
    this.#retention?.update(retentionLimits(next))
    this.lmdb?.setMinFree(next.journal.min_free)
    if (this.lmdb && next.journal.min_free !== prev.journal.min_free) this.#warnMinFree(next)
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

  /** A min_free no disk can satisfy would leave the relay refusing every callback, silently. */
  #warnMinFree(config: Config): void {
    const warning = minFreeWarning(config.data_dir, config.journal.min_free)
    if (warning) this.log.warn({ data_dir: config.data_dir }, warning)
  }

  /**
   * What extensions see of the relay. Reload listeners run once the new
   * config and tokens are in force (the fan-out hub re-checks open streams
   * against them).
   */
  #host(): RelayHost {
    const relay = this
    return {
      journal: relay.journal,
      log: relay.log,
      registry: relay.metrics.registry,
      get config() {
        return relay.#config
      },
      lookupToken: (token) => relay.#tokens.lookup(token),
      onReload: (listener) => {
        relay.#reloadListeners.push(listener)
        return () => {
          relay.#reloadListeners = relay.#reloadListeners.filter((l) => l !== listener)
        }
      },
      route: (method, path, handler) => relay.front.router.add(method, path, handler),
      routePrefix: (method, prefix, handler) => relay.front.router.addPrefix(method, prefix, handler),
      webSocket: (path, behavior) => {
        relay.app.ws(path, behavior)
        relay.#wsPaths.push(path)
      },
    }
  }

  #wire(): void {
    const { front, journal, metrics, config, log } = this
    const router = front.router
    metrics.head.set(journal.head)
    journal.onCommit((head) => metrics.head.set(head))
    journal.onCommitTimed = (s, n) => {
      metrics.commitDuration.observe(s)
      metrics.commitBatch.observe(n)
    }
    // With ingest threads, they serve the sources (http/ingest-threads.ts).
    for (const source of this.#threadCount > 1 ? [] : Object.values(config.sources)) {
      this.#sources.push(
        registerSource(router, source, {
          journal,
          metrics,
          log,
          rejects: this.#rejects,
          closing: () => this.#closing,
          admit: this.rateLimiter.admit,
          clientAddress: (peer, headers) => this.rateLimiter.clientAddress(peer, headers['x-forwarded-for']),
          bodyTimeoutMs: config.http.body_timeout_ms,
          budget: this.bodyBudget,
        }),
      )
    }
    registerReadApi(router, { journal, tokens: () => this.#tokens })
    registerHealth(router, {
      journal,
      metrics,
      log,
      config: () => this.#config,
      ready: () => this.ready,
      notReadyReason: () => (this.#closing ? 'closing' : (journal.refusal(READY_PROBE_BYTES)?.message ?? 'not ready')),
    })
  }

  /**
   * Binds the listen socket (exclusively: a port already served makes start
   * fail). A fixed port that is still held (a previous instance closing) is
   * retried for up to `retryMs` first. WebSocket upgrades go through a
   * private Unix socket to uWS.
   */
  async #listenNow(retryMs: number): Promise<void> {
    if (this.#wsPaths.length > 0) {
      const bridge = (this.#bridge = await StreamBridge.start(this.app))
      for (const path of this.#wsPaths) {
        this.front.upgrade(path, (req, socket, head) => bridge.carry(req, socket, head, canonicalIp(req.socket.remoteAddress ?? '')))
      }
    }
    const { host, port } = this.config.listen
    if (this.#threadCount === 1) {
      await this.front.listen(host, port, retryMs)
      return
    }
    // mkdtemp makes the directory 0700 whatever the umask: only this process reaches the listener in it.
    const dir = (this.#privateDir = mkdtempSync(join(tmpdir(), 'hookrelay-front-')))
    await this.front.listenPath(join(dir, 'front.sock'))
    const threads = (this.#threads = new IngestThreads({
      count: this.#threadCount,
      journal: this.journal,
      metrics: this.metrics,
      log: this.log,
      rejects: this.#rejects,
      rateLimiter: this.rateLimiter,
      budget: this.bodyBudget as SharedBodyBudget,
      settings: threadSettings(this.#config),
      http: this.#config.http,
      mainPath: join(dir, 'front.sock'),
      streamPath: this.#bridge?.path,
      wsPaths: this.#wsPaths,
      onFatal: (err) => this.#threadFailed(err),
    }))
    // A scrape (or the console's stats) first takes what the threads counted.
    const flush = (): Promise<void> => threads.flushMetrics()
    Object.assign(this.metrics.requests, { collect: flush })
    Object.assign(this.metrics.ackLatency, { collect: flush })
    await threads.listen(host, port, retryMs)
  }

  /** An ingest thread died: the listening socket it shared went with it; the relay stops being ready so a supervisor restarts it. */
  #threadFailed(err: Error): void {
    if (this.#closing) return
    this.#closing = true
    this.metrics.ready.set(0)
    this.log.fatal({ err }, 'an ingest thread failed; the relay no longer accepts callbacks: restart it')
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
    this.#threads?.setClosing()
    // With ingest threads, the main thread's private listener stays open until they have closed.
    if (this.#threads) await this.#threads.stopListening()
    else this.front.stopListening()
    for (const source of this.#sources) source.stop()
    this.rateLimiter.close()
    await this.#retention?.close()
    await this.journal.idle()
    for (const c of [...this.#components].reverse()) {
      try {
        await c.close()
      } catch (err) {
        this.log.error({ err, component: c.name }, 'component failed to close')
      }
    }
    // Requests still arriving on open connections are answered (ingest: 503) before the journal goes.
    await this.#threads?.close(2000)
    await this.front.close()
    if (this.#privateDir) rmSync(this.#privateDir, { recursive: true, force: true })
    await this.journal.close()
    this.#bridge?.close()
    // Keep-alive connections would keep the loop alive; the app is done.
    ;(this.app as unknown as { close(): void }).close()
    this.log.info({ head: this.journal.head }, 'hookrelay stopped')
  }
}

function retentionLimits(c: Config): { maxAgeMs: number; maxBytes: number; hardBytes: number } {
  const { max_age_ms, max_bytes } = c.journal.retention
  return { maxAgeMs: max_age_ms, maxBytes: max_bytes, hardBytes: hardLimitFor(max_bytes, c.journal.map_size) }
}
