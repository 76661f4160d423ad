/**
 * Destinations: the relay POSTs every journaled event it is configured to
 * deliver to the user's own HTTP handler and retries until it answers 2xx
 * (README → "Destinations"). One worker per destination, on the relay's host.
 */
import type { Component, Extension } from '../extension.js'
import { registerDestinationApi } from './api.js'
import { DestinationMetrics } from './metrics.js'
import { JournalDestinationStore } from './store.js'
import { DestinationWorker } from './worker.js'

export interface DestinationsComponent extends Component {
  readonly workers: ReadonlyMap<string, DestinationWorker>
}

/** Off (undefined) when no destination is configured. */
export function destinationsExtension(): Extension {
  return async (host) => {
    const configured = Object.values(host.config.destinations)
    if (configured.length === 0) return undefined
    const store = new JournalDestinationStore(host.journal)
    const workers = new Map<string, DestinationWorker>()
    const metrics = new DestinationMetrics(host.registry, () =>
      [...workers.values()].map((w) => {
        const s = w.summary()
        return { name: s.name, lag: s.lag, deadLetters: s.dead_letters, circuit: s.circuit, paused: s.paused }
      }),
    )
    const log = host.log.child({ component: 'destinations' })
    for (const cfg of configured) workers.set(cfg.name, await DestinationWorker.start(cfg, host.journal, store, log, metrics))
    registerDestinationApi(host, workers)
    const stopCommits = host.journal.onCommit(() => {
      for (const w of workers.values()) w.pump()
    })
    // The set of destinations is restart-only (reload-diff.ts): a reload only updates each one.
    const stopReload = host.onReload(() => {
      for (const w of workers.values()) {
        const next = host.config.destinations[w.name]
        if (next !== undefined) w.update(next)
      }
    })
    let closed = false
    return {
      name: 'destinations',
      workers,
      async close() {
        if (closed) return
        closed = true
        stopCommits()
        stopReload()
        await Promise.all([...workers.values()].map((w) => w.close()))
      },
    } satisfies DestinationsComponent
  }
}
