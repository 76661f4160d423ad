/**
 * Whether an existing stream keeps the journal's contract: what the relay
 * refuses to run on (it would break acknowledged-means-kept or seq order) and
 * what it only warns about (a guarantee weaker than the LMDB backend's fsync).
 *
 * Refused, because entries would go without anyone deciding so:
 * - subjects that do not cover `<stream>.>`: publishes would find no stream;
 * - a mirror, or sources: foreign messages in the journal's seq order, or no writes;
 * - retention `workqueue` / `interest`: an entry is deleted once consumed or acked;
 * - `discard: new` with a count or size limit: full means refusing every callback
 *   (503 forever) instead of retention dropping the oldest;
 * - `max_msgs_per_subject` or `discard_new_per_subject`: a busy source's older
 *   entries dropped (or its new ones refused) long before retention;
 * - `sealed`: no writes at all; `no_ack`: no PubAck, so no 200 can be honest;
 * - memory storage: a restart of every node (a power cut) empties the journal,
 *   while a `200` from the LMDB backend survives one; refused, not warned, since
 *   it is never what an operator of a webhook journal wants.
 *
 * Warned: fewer than 3 replicas, a persist mode that acks before the write,
 * retention or duplicate window different from the config, a count limit, and
 * that a client cannot see whether the servers fsync before each PubAck.
 */
import type { StreamInfo } from '@nats-io/jetstream'
import type { JetStreamConfig } from '../../config/types.js'
import { formatDuration, formatSize } from '../../config/units.js'

export interface StreamCheck {
  /** Why the relay must not use this stream; undefined when it may. */
  refusal: string | undefined
  /** One line each, logged at warn on start. */
  warnings: string[]
}

/** What the journal's retention is configured to (`journal.retention`), to compare with the stream's limits. */
export interface RetentionWanted {
  max_age_ms: number
  max_bytes: number
}

/** The line a nats-server config needs for an fsync before every PubAck. */
export const SYNC_ALWAYS_LINE = 'jetstream { sync_interval: always }'

const NANOS_PER_MS = 1_000_000

export function checkStream(info: StreamInfo, cfg: JetStreamConfig, subjects: string[], retention?: RetentionWanted): StreamCheck {
  const c = info.config
  const refusals: string[] = []
  const warnings: string[] = []
  const name = c.name

  const have = c.subjects ?? []
  const uncovered = subjects.filter((want) => !have.some((s) => subjectCovers(s, want)))
  if (c.mirror != null) {
    refusals.push(`it is a mirror of ${c.mirror.name}, which takes no publishes; give journal.jetstream.stream a stream of its own`)
  } else if (uncovered.length > 0) {
    refusals.push(
      `its subjects [${have.join(', ')}] do not cover ${uncovered.join(', ')}, so the relay's publishes would find no stream; add ${uncovered.join(', ')} to its subjects (nats stream edit ${name} --subjects ...) or use another stream name`,
    )
  }
  if (c.sources != null && c.sources.length > 0) {
    refusals.push(`it sources from ${c.sources.map((s) => s.name).join(', ')}: their messages would land in the journal's seq order as if they were callbacks; use a stream without sources`)
  }
  if (c.retention !== 'limits') {
    refusals.push(
      `its retention is ${c.retention}, which deletes an entry once it is ${c.retention === 'workqueue' ? 'consumed' : 'acknowledged by every consumer'}; the journal needs limits retention (entries stay until max_age/max_bytes): create the stream anew with --retention limits`,
    )
  }
  const limited = [
    c.max_msgs > 0 ? `max_msgs ${c.max_msgs}` : '',
    c.max_bytes > 0 ? `max_bytes ${formatSize(c.max_bytes)}` : '',
    c.max_msgs_per_subject > 0 ? `max_msgs_per_subject ${c.max_msgs_per_subject}` : '',
  ].filter((s) => s !== '')
  if (c.discard === 'new' && limited.length > 0) {
    refusals.push(
      `discard is new with ${limited.join(', ')}: once full it refuses every new callback (503 until someone purges) instead of dropping the oldest as journal.retention does; set --discard old`,
    )
  }
  if (c.max_msgs_per_subject > 0) {
    refusals.push(
      `max_msgs_per_subject is ${c.max_msgs_per_subject}: entries of one source share a subject, so a busy source's older entries would be dropped long before retention; set it to -1 (unlimited)`,
    )
  }
  if (c.discard_new_per_subject === true) {
    refusals.push('discard_new_per_subject is set: new entries of a source would be refused at a per-subject limit; turn it off')
  }
  if (c.sealed === true) refusals.push('it is sealed: it takes no new entries; use another stream name')
  if (c.no_ack === true) refusals.push('no_ack is set: the stream sends no PubAck, so the relay could never honestly answer 200; turn it off')
  if (c.storage !== 'file') {
    refusals.push(
      `its storage is ${c.storage}: a restart of every node (a power cut) empties it, where an LMDB relay keeps every acknowledged callback; create it anew with --storage file`,
    )
  }

  const replicas = c.num_replicas
  if (replicas < 3) {
    warnings.push(
      `stream ${name} has ${replicas} replica${replicas === 1 ? '' : 's'}: losing ${replicas === 1 ? 'its node' : 'one node of two'} loses acknowledged callbacks or stops ingest; 3 replicas survive one node (nats stream edit ${name} --replicas 3)`,
    )
  }
  if (replicas !== cfg.replicas) {
    warnings.push(
      `stream ${name} has ${replicas} replica${replicas === 1 ? '' : 's'} but journal.jetstream.replicas is ${cfg.replicas}; the existing stream's setting is the one in force (the relay never changes a stream it did not create)`,
    )
  }
  if (c.persist_mode === 'async') {
    warnings.push(
      `stream ${name} has persist_mode async: its PubAck comes before the write reaches disk on any node, so a cut of power to the cluster can lose acknowledged callbacks; only a stream created with the default persist mode is as durable as LMDB's fsync`,
    )
  }
  if (c.max_msgs > 0) {
    warnings.push(`stream ${name} has max_msgs ${c.max_msgs}: past that count the oldest entries go, before journal.retention says so (cursors on them answer cursor_expired)`)
  }
  if (retention !== undefined) {
    const age = Math.round(c.max_age / NANOS_PER_MS)
    if (age !== retention.max_age_ms) {
      warnings.push(
        `stream ${name} keeps entries for ${age === 0 ? 'ever (max_age 0)' : formatDuration(age)} but journal.retention.max_age is ${formatDuration(retention.max_age_ms)}; the stream's max_age is the one in force`,
      )
    }
    if (c.max_bytes !== retention.max_bytes) {
      warnings.push(
        `stream ${name} holds ${c.max_bytes <= 0 ? 'unlimited bytes (max_bytes -1)' : `up to ${formatSize(c.max_bytes)}`} but journal.retention.max_bytes is ${formatSize(retention.max_bytes)}; the stream's max_bytes is the one in force`,
      )
    }
  }
  const window = Math.round(c.duplicate_window / NANOS_PER_MS)
  if (window !== cfg.duplicate_window_ms) {
    warnings.push(
      `stream ${name} has a duplicate window of ${formatDuration(window)} but journal.jetstream.duplicate_window is ${formatDuration(cfg.duplicate_window_ms)}; the stream's is in force (past it, the run projection alone keeps copies out)`,
    )
  }
  warnings.push(
    `a NATS client cannot see whether the servers fsync before each PubAck (nats-server's default syncs every 2 minutes, so a power cut of the whole cluster can lose acknowledged callbacks); set \`${SYNC_ALWAYS_LINE}\` on every node (nats-server >= 2.10) and check it on each node's monitoring port: /jsz shows "sync_always": true`,
  )
  return { refusal: refusals.length === 0 ? undefined : refusals.join('; '), warnings }
}

/** Whether every subject `want` matches is also matched by the stream subject `have` (NATS wildcards `*` and `>`). */
export function subjectCovers(have: string, want: string): boolean {
  const h = have.split('.')
  const w = want.split('.')
  for (let i = 0; i < w.length; i++) {
    const ht = h[i]
    if (ht === undefined) return false
    if (ht === '>') return true
    const wt = w[i]!
    if (wt === '>') return false
    if (ht === '*') continue
    if (ht !== wt) return false
  }
  return h.length === w.length
}
