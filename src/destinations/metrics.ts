import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { CircuitState } from './circuit.js'

/** What the gauges read from each worker at scrape time. */
export interface DestinationSnapshot {
  name: string
  lag: number
  deadLetters: number
  circuit: CircuitState
  paused: boolean
}

const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, open: 1, 'half-open': 2 }

/** `hookrelay_destination_*`, on the relay's registry. */
export class DestinationMetrics {
  readonly attempts: Counter<'destination' | 'outcome'>
  readonly latency: Histogram<'destination'>

  constructor(registry: Registry, snapshots: () => DestinationSnapshot[]) {
    this.attempts = new Counter({
      name: 'hookrelay_destination_attempts_total',
      help: 'Delivery attempts, by destination and outcome (delivered, retry, dead, paused).',
      labelNames: ['destination', 'outcome'] as const,
      registers: [registry],
    })
    this.latency = new Histogram({
      name: 'hookrelay_destination_delivery_seconds',
      help: 'From the relay receiving an event to the destination answering 2xx for it.',
      labelNames: ['destination'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600],
      registers: [registry],
    })
    const gauge = (name: string, help: string, pick: (s: DestinationSnapshot) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['destination'] as const,
        registers: [registry],
        collect() {
          this.reset()
          for (const s of snapshots()) this.labels(s.name).set(pick(s))
        },
      })
    }
    gauge('hookrelay_destination_lag', 'Journal head minus the destination cursor (events not yet done with).', (s) => s.lag)
    gauge('hookrelay_destination_dead_letters', 'Events in the destination dead-letter list.', (s) => s.deadLetters)
    gauge('hookrelay_destination_circuit_state', 'Circuit: 0 closed, 1 open, 2 half-open (probing).', (s) => CIRCUIT_VALUE[s.circuit])
    gauge('hookrelay_destination_paused', '1 while the destination is paused (by an operator or a 410).', (s) => (s.paused ? 1 : 0))
  }
}
