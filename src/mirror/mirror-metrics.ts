import { Counter, Gauge, type Registry } from 'prom-client'

/** What the metrics read from the worker at scrape time. */
export interface MirrorSnapshot {
  /** Jobs waiting for a worker slot. */
  queued: number
  /** Jobs downloading or uploading now. */
  active: number
  /** Jobs waiting out a retry backoff. */
  retrying: number
  /** Earliest deadline of any open job (epoch ms), undefined when there is none. */
  soonestDeadline: number | undefined
}

/** The mirror's Prometheus metrics (`hookrelay_mirror_*`), on the relay's registry. */
export class MirrorMetrics {
  readonly objects: Counter<'result'>
  readonly bytes: Counter
  readonly attempts: Counter<'outcome'>

  constructor(registry: Registry, snapshot: () => Promise<MirrorSnapshot>) {
    this.objects = new Counter({
      name: 'hookrelay_mirror_objects_total',
      help: 'Output objects finished, by result (completed, failed).',
      labelNames: ['result'] as const,
      registers: [registry],
    })
    this.bytes = new Counter({
      name: 'hookrelay_mirror_bytes_total',
      help: 'Bytes uploaded to the mirror bucket.',
      registers: [registry],
    })
    this.attempts = new Counter({
      name: 'hookrelay_mirror_attempts_total',
      help: 'Transfer attempts, by outcome (ok, retry, failed).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    })
    new Gauge({
      name: 'hookrelay_mirror_jobs',
      help: 'Open mirror jobs, by state (queued, active, retrying).',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const s = await snapshot()
        this.set({ state: 'queued' }, s.queued)
        this.set({ state: 'active' }, s.active)
        this.set({ state: 'retrying' }, s.retrying)
      },
    })
    new Gauge({
      name: 'hookrelay_mirror_soonest_deadline_seconds',
      help: 'Seconds until the earliest deadline of an open job (negative when passed, +Inf when no job is open).',
      registers: [registry],
      async collect() {
        const d = (await snapshot()).soonestDeadline
        this.set(d === undefined ? Number.POSITIVE_INFINITY : (d - Date.now()) / 1000)
      },
    })
  }
}
