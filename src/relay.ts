import type { Config } from './config/types.js'
import { Journal } from './journal/journal.js'
import { createLogger, RejectLog, type Logger } from './log.js'
import { Metrics } from './metrics.js'
import { TokenBook } from './http/auth.js'
import { registerSource } from './http/ingest.js'
import { registerReadApi } from './http/read-api.js'
import { sendError } from './http/respond.js'
import { uws, type TemplatedApp, type us_listen_socket } from './http/uws.js'
import { RelayError } from './errors.js'

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
}

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
  readonly config: Config
  readonly journal: Journal
  readonly metrics: Metrics
  readonly log: Logger
  readonly app: TemplatedApp
  #tokens: TokenBook
  #listen: us_listen_socket | undefined
  #port = 0
  #closing = false
  #closed: Promise<void> | undefined
  #stops: Array<() => void> = []
  /** Parts started after the journal and closed before it (fan-out hub, mirror). */
  #components: Array<{ name: string; close: () => Promise<void> | void }> = []

  private constructor(config: Config, journal: Journal, metrics: Metrics, log: Logger) {
    this.config = config
    this.journal = journal
    this.metrics = metrics
    this.log = log
    this.#tokens = new TokenBook(config.subscribers)
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
    const relay = new Relay(config, journal, metrics, log)
    try {
      relay.#wire(opts)
      for (const extend of opts.extensions ?? []) await extend(relay)
      await relay.#listenNow()
    } catch (e) {
      await relay.close()
      throw e
    }
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

  /** The port actually bound (useful with `listen.port: 0`). */
  get port(): number {
    return this.#port
  }

  get tokens(): TokenBook {
    return this.#tokens
  }

  get ready(): boolean {
    return !this.#closing && this.journal.ready
  }

  get closing(): boolean {
    return this.#closing
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
      this.#stops.push(
        registerSource(app, source, {
          journal,
          metrics,
          log,
          rejects,
          closing: () => this.#closing,
          bodyTimeoutMs: opts.bodyTimeoutMs,
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
        const why = this.#closing ? 'closing' : 'journal failed'
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

  #listenNow(): Promise<void> {
    this.#finishRoutes()
    const { host, port } = this.config.listen
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (sock) => {
        if (!sock) {
          reject(
            new RelayError(
              'HOOKRELAY_HTTP_LISTEN',
              `cannot listen on ${host}:${port}; is another process using the port, or is the address not on this machine?`,
            ),
          )
          return
        }
        this.#listen = sock
        this.#port = uws.us_socket_local_port(sock as never)
        resolve()
      })
    })
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
    for (const stop of this.#stops) stop()
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
