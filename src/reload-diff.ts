/**
 * What a config reload may take over while the relay runs, and what needs a
 * restart: `Relay.reload` refuses a new config whose restart-only keys differ.
 */
import type { Config } from './config/types.js'

type Pick = [string, (c: Config) => unknown]

/** Config keys a running relay cannot take over; changing them needs a restart. */
const RESTART_ONLY: Pick[] = [
  ['listen', (c) => c.listen],
  ['data_dir', (c) => c.data_dir],
  ['sources (names, paths, schemes)', (c) => Object.values(c.sources).map((s) => [s.name, s.path, s.verify.scheme])],
  ['journal.map_size', (c) => c.journal.map_size],
  // The journal is opened once: which backend, and the cluster connection and stream of cluster mode.
  ['journal.backend, journal.jetstream', (c) => [c.journal.backend, c.journal.jetstream]],
  ['stream', (c) => c.stream],
  // The mirror worker takes its settings once at start and has no way to swap them.
  ['mirror', (c) => c.mirror],
  // Its routes are registered once, at start.
  ['console', (c) => c.console],
  // Set on the listener and the ingest routes when they are made.
  ['http (timeouts)', (c) => [c.http.body_timeout_ms, c.http.header_timeout_ms, c.http.keepalive_timeout_ms]],
  // A destination's window and cursor are built around these when its worker starts.
  [
    'destinations (names, sources, events, concurrency, signing scheme)',
    (c) => Object.values(c.destinations).map((d) => [d.name, d.sources, d.events, d.concurrency, d.signing.mode]),
  ],
]

/** Keys a reload applies, compared only to say in the log what changed. */
const RELOADABLE: Pick[] = [
  ['sources (secrets, keys, tolerance, max_body)', (c) => c.sources],
  ['subscribers', (c) => c.subscribers],
  ['rate_limit', (c) => c.rate_limit],
  ['journal.retention', (c) => c.journal.retention],
  ['journal.min_free', (c) => c.journal.min_free],
  ['log.level', (c) => c.log.level],
  ['shutdown.drain', (c) => c.shutdown.drain_ms],
  ['http (body budget)', (c) => [c.http.max_body_in_flight, c.http.max_body_per_address]],
  ['metrics.token', (c) => c.metrics.token],
  ['destinations (url, headers, timeout, retry, circuit, signing keys, attempts_kept)', (c) => c.destinations],
]

/** The restart-only keys that differ between `prev` and `next` (empty: a reload may apply `next`). */
export function restartRequired(prev: Config, next: Config): string[] {
  return differing(RESTART_ONLY, prev, next)
}

/** The reloadable keys that differ, for the log. */
export function reloadedKeys(prev: Config, next: Config): string[] {
  return differing(RELOADABLE, prev, next)
}

function differing(keys: Pick[], prev: Config, next: Config): string[] {
  return keys.filter(([, pick]) => JSON.stringify(pick(prev)) !== JSON.stringify(pick(next))).map(([key]) => key)
}
