/**
 * The console's view logic that needs no browser: filters, the line diff of
 * two revisions, the tail's resume bookkeeping, and how destinations read. Unit-tested in
 * test/console-logic.test.ts.
 */
import { eventMatcher } from '../../src/fanout/event-glob.js'
import type { StreamEvent } from '../../src/protocol/frames.js'

/** One event as the tail keeps it (the stream's event frame). */
export type TailEvent = StreamEvent

export interface TailFilter {
  /** '' = every source the token reads. */
  source: string
  /** Comma-separated event globs (`run.*, batch.failed`); '' = every event. */
  events: string
  /** Substring of the key; '' = any. */
  key: string
}

export const NO_FILTER: TailFilter = { source: '', events: '', key: '' }

/** A predicate for `f`, with the stream's own glob rules. */
export function matcher(f: TailFilter): (e: TailEvent) => boolean {
  const globs = f.events
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '')
  const ev = eventMatcher(globs)
  const key = f.key.trim()
  return (e) => (f.source === '' || e.source === f.source) && (ev === null || ev(e.event)) && (key === '' || e.key.includes(key))
}

/**
 * What the tail holds and where it resumes. Events arrive over reconnects;
 * `add` drops anything at or below the last seq kept (a replay after a
 * resume) and remembers a gap when seqs the token may read could be missing
 * (the stream skips seqs of other sources, so a gap is only noted when the
 * relay says it resumed from a position other than ours).
 */
export class TailBook {
  readonly limit: number
  #events: TailEvent[] = []
  #last = 0
  #epoch: string | undefined

  constructor(limit = 500) {
    this.limit = limit
  }

  get events(): readonly TailEvent[] {
    return this.#events
  }

  /** The last seq shown: where a reconnect resumes (0 before any event). */
  get lastSeq(): number {
    return this.#last
  }

  /**
   * The `after` for the next `subscribe`: the last seq shown, or for a first
   * connection a short backlog before `head`. A new epoch (the journal was
   * replaced) starts over.
   */
  resumeAfter(welcome: { epoch: string; head: number }, backlog = 50): number {
    if (this.#epoch !== undefined && this.#epoch !== welcome.epoch) {
      this.#events = []
      this.#last = 0
      this.#epoch = welcome.epoch
      return Math.max(0, welcome.head - backlog)
    }
    this.#epoch = welcome.epoch
    if (this.#last > 0) return Math.min(this.#last, welcome.head)
    return Math.max(0, welcome.head - backlog)
  }

  /** After `cursor_expired`: the oldest position still in the journal. */
  expired(earliest: number): number {
    this.#last = Math.max(this.#last, earliest - 1)
    return this.#last
  }

  /** Adds an event; false when it was already shown. Keeps the newest `limit`. */
  add(e: TailEvent): boolean {
    if (e.seq <= this.#last) return false
    this.#last = e.seq
    this.#events.push(e)
    if (this.#events.length > this.limit) this.#events.splice(0, this.#events.length - this.limit)
    return true
  }
}

/** Reconnect delay after `failures` failed attempts in a row: 0.5 s doubling to 10 s. */
export function reconnectDelay(failures: number): number {
  return Math.min(10_000, 500 * 2 ** Math.min(failures, 5))
}

/** The body pretty-printed when it is JSON, else as it came. */
export function pretty(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2)
  } catch {
    return raw
  }
}

export type DiffLine = { kind: 'same' | 'removed' | 'added'; text: string }

/** Lines of `a` and `b` paired by their longest common subsequence. */
export function lineDiff(a: string, b: string, maxLines = 2000): DiffLine[] {
  const x = a.split('\n')
  const y = b.split('\n')
  if (x.length > maxLines || y.length > maxLines) {
    // The table is |a|·|b|; past this, show both as changed rather than stall the page.
    return [...x.map((text) => ({ kind: 'removed' as const, text })), ...y.map((text) => ({ kind: 'added' as const, text }))]
  }
  const n = x.length
  const m = y.length
  const lcs = new Uint32Array((n + 1) * (m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] = x[i] === y[j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!)
    }
  }
  const out: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ kind: 'same', text: x[i]! })
      i++
      j++
    } else if (lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!) {
      out.push({ kind: 'removed', text: x[i++]! })
    } else {
      out.push({ kind: 'added', text: y[j++]! })
    }
  }
  while (i < n) out.push({ kind: 'removed', text: x[i++]! })
  while (j < m) out.push({ kind: 'added', text: y[j++]! })
  return out
}

/** Side-by-side rows from a diff: left is the older revision, right the newer; changed lines pair up. */
export function sideBySide(diff: readonly DiffLine[]): Array<{ left?: DiffLine; right?: DiffLine }> {
  const rows: Array<{ left?: DiffLine; right?: DiffLine }> = []
  let k = 0
  while (k < diff.length) {
    if (diff[k]!.kind === 'same') {
      rows.push({ left: diff[k], right: diff[k] })
      k++
      continue
    }
    const removed: DiffLine[] = []
    const added: DiffLine[] = []
    while (k < diff.length && diff[k]!.kind === 'removed') removed.push(diff[k++]!)
    while (k < diff.length && diff[k]!.kind === 'added') added.push(diff[k++]!)
    for (let r = 0; r < Math.max(removed.length, added.length); r++) rows.push({ left: removed[r], right: added[r] })
  }
  return rows
}

/** Per-second rate and mean latency between two stats samples. */
export function statsDelta(
  prev: { at: number; ingested: number; ack_count: number; ack_sum_seconds: number },
  next: { at: number; ingested: number; ack_count: number; ack_sum_seconds: number },
): { rate: number; ackMs: number | null } {
  const dt = (next.at - prev.at) / 1000
  // A restarted relay's counters start again at 0.
  const dn = next.ingested - prev.ingested
  const dc = next.ack_count - prev.ack_count
  const rate = dt > 0 && dn >= 0 ? dn / dt : 0
  const ackMs = dc > 0 ? ((next.ack_sum_seconds - prev.ack_sum_seconds) / dc) * 1000 : null
  return { rate, ackMs }
}

/** Bytes as a short human string. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let u = 0
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024
    u++
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`
}

/** The page's views by URL hash (`#/event/12`, `#/runs/runflow/<id>`), so a view can be linked and reloaded. */
export type Route =
  | { view: 'tail' }
  | { view: 'event'; seq: number }
  | { view: 'runs'; source?: string; id?: string }
  | { view: 'consumers' }
  | { view: 'stats' }
  | { view: 'destinations'; name?: string }

/** A hand-typed `%` that is not an escape stays as it is instead of breaking the page. */
function decodePart(p: string): string {
  try {
    return decodeURIComponent(p)
  } catch {
    return p
  }
}

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodePart)
  switch (parts[0]) {
    case 'event':
      return /^\d+$/.test(parts[1] ?? '') ? { view: 'event', seq: Number(parts[1]) } : { view: 'tail' }
    case 'runs':
      return parts.length >= 3 ? { view: 'runs', source: parts[1], id: parts.slice(2).join('/') } : { view: 'runs' }
    case 'destinations':
      return parts[1] ? { view: 'destinations', name: parts[1] } : { view: 'destinations' }
    case 'consumers':
    case 'stats':
      return { view: parts[0] }
    default:
      return { view: 'tail' }
  }
}

/** What the destinations view reads of `GET /v1/destinations` (the API sends more). */
export interface DestinationRow {
  name: string
  url: string
  paused: boolean
  paused_reason: string | null
  circuit: 'closed' | 'open' | 'half-open'
  cursor: number
  head: number
  lag: number
  in_flight: number
  dead_letters: number
}

/** One word for what a destination is doing: a pause outranks the circuit, which only matters while delivering. */
export function destinationState(d: Pick<DestinationRow, 'paused' | 'paused_reason' | 'circuit'>): { kind: 'paused' | 'open' | 'delivering'; text: string } {
  if (d.paused) return { kind: 'paused', text: d.paused_reason ? `paused (${d.paused_reason})` : 'paused' }
  if (d.circuit === 'open') return { kind: 'open', text: 'circuit open' }
  if (d.circuit === 'half-open') return { kind: 'open', text: 'circuit half-open (probing)' }
  return { kind: 'delivering', text: 'delivering' }
}

/** The URL up to its query: the relay already masks the query (it may hold a credential) as `?…`. */
export function urlWithoutQuery(url: string): string {
  const q = url.search(/[?#]/)
  return q < 0 ? url : url.slice(0, q)
}

/**
 * When the next attempt goes: relative while it is ahead of `now` (epoch ms),
 * else the time it was planned for (by now it has been made, or is about to be).
 */
export function nextAttemptText(at: number | null, now: number, clock: (ms: number) => string): string {
  if (at === null) return '—'
  const s = (at - now) / 1000
  if (s <= 0) return clock(at)
  if (s < 10) return `in ${s.toFixed(1)} s`
  if (s < 120) return `in ${Math.round(s)} s`
  if (s < 7200) return `in ${Math.round(s / 60)} min`
  return `in ${Math.round(s / 3600)} h`
}

/** An attempt's latency: tenths below 10 ms, whole ms above. */
export function latencyText(ms: number): string {
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`
}

/** A replay-from seq typed by hand: a whole number of at least 1, else null. */
export function replaySeq(text: string): number | null {
  const t = text.trim()
  return /^\d{1,15}$/.test(t) && Number(t) >= 1 ? Number(t) : null
}
