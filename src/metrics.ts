import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * The relay's Prometheus metrics, one registry per relay instance (tests run
 * several relays in one process). Names are documented in the README.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly requests = new Counter({
    name: 'hookrelay_requests_total',
    help: 'Ingest requests answered, by source and HTTP status.',
    labelNames: ['source', 'status'] as const,
    registers: [this.registry],
  })
  readonly ackLatency = new Histogram({
    name: 'hookrelay_ack_latency_seconds',
    help: 'Time from the end of the request body to the 200 answer (verify + journal commit + fsync).',
    labelNames: ['source'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  })
  readonly head = new Gauge({
    name: 'hookrelay_journal_head_seq',
    help: 'Seq of the last committed journal entry.',
    registers: [this.registry],
  })
  readonly commitDuration = new Histogram({
    name: 'hookrelay_journal_commit_duration_seconds',
    help: 'Duration of one group commit, from queueing to fdatasync returning.',
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  })
  readonly commitBatch = new Histogram({
    name: 'hookrelay_journal_commit_entries',
    help: 'Requests carried by one group commit.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  })
  readonly ready = new Gauge({
    name: 'hookrelay_ready',
    help: '1 while the relay accepts callbacks, 0 while starting, closing or after a journal I/O error.',
    registers: [this.registry],
  })
  readonly journalBytes = new Gauge({
    name: 'hookrelay_journal_bytes',
    help: 'Bytes of LMDB pages in use by the journal.',
    registers: [this.registry],
  })
  readonly oldestSeq = new Gauge({
    name: 'hookrelay_journal_oldest_seq',
    help: 'Seq of the oldest entry still in the journal.',
    registers: [this.registry],
  })

  readonly pruned = new Counter({
    name: 'hookrelay_journal_pruned_total',
    help: 'Journal entries removed by retention, by reason (age, size, forced = past a durable consumer at the hard size limit).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly reloadLastSuccess = new Gauge({
    name: 'hookrelay_config_reload_last_success',
    help: '1 when the last SIGHUP reload was applied (or none was tried), 0 when it was refused.',
    registers: [this.registry],
  })
  readonly reloads = new Counter({
    name: 'hookrelay_config_reloads_total',
    help: 'SIGHUP reloads, by result (ok, invalid = the file failed validation, refused = a change needs a restart).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  #children = new Map<string, ReturnType<Counter<'source' | 'status'>['labels']>>()

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.reloadLastSuccess.set(1)
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'hookrelay_process_' })
  }

  /** Counts one answer; the labelled child is cached so the hot path does no label hashing. */
  countRequest(source: string, status: number): void {
    const k = `${source}\0${status}`
    let c = this.#children.get(k)
    if (c === undefined) {
      c = this.requests.labels(source, String(status))
      this.#children.set(k, c)
    }
    c.inc()
  }
}
