/**
 * `hookrelay cluster-status`: what the NATS cluster under a cluster-mode relay
 * holds and how healthy it is, read with the config's own `journal.jetstream`
 * connection: the stream's state, its leader and replicas (current, lag, last
 * seen), its durable consumers, the KV buckets beside it, and the start-up
 * check a relay would make of it. Loaded only for this command (it loads the
 * NATS client).
 *
 * With `--monitor URL…` (the nodes' monitoring ports) it also reads each
 * node's `/varz` and says whether it fsyncs before each PubAck, which a client
 * connection cannot see.
 *
 * Exit status: 0 healthy; 2 degraded (a replica not current or offline, fewer
 * peers than replicas, a KV bucket missing or without a leader, a monitored
 * node that does not fsync before each PubAck or does not answer); 1 when the
 * stream is missing, has no leader, would be refused by a relay, or the
 * cluster cannot be reached or does not answer; 78 when the config is not a
 * cluster-mode one; 64 for a bad `--monitor`. Start-up check warnings alone
 * do not change it.
 */
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { jetstreamManager, type ClusterInfo, type ConsumerInfo, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream'
import type { Config, JetStreamConfig } from '../../config/types.js'
import { formatDuration, formatSize } from '../../config/units.js'
import { EX_CONFIG, RelayError } from '../../errors.js'
import { bucketName, streamSubjects, type BucketKind } from './names.js'
import { connectCluster } from './options.js'
import { checkStream, SYNC_ALWAYS_LINE } from './stream-check.js'

export interface ClusterStatusIo {
  out: (line: string) => void
  err: (line: string) => void
}

const BUCKETS: BucketKind[] = ['runs', 'cursors', 'jobs', 'meta']
const NANOS_PER_MS = 1_000_000

export interface PeerStatus {
  name: string
  role: 'leader' | 'replica'
  current: boolean
  offline: boolean
  /** Operations behind the leader (replicas only). */
  lag: number
  /** How long ago the leader last heard from it, in ms (replicas only). */
  active_ms: number
}

export interface GroupStatus {
  cluster: string | undefined
  leader: string | undefined
  leader_since: string | undefined
  peers: PeerStatus[]
}

export interface BucketStatus {
  name: string
  kind: BucketKind
  exists: boolean
  values?: number
  bytes?: number
  replicas?: number
  group?: GroupStatus
}

export interface ConsumerStatus {
  name: string
  durable: boolean
  /** Stream seqs not yet delivered to it. */
  pending: number
  ack_pending: number
  redelivered: number
  delivered_seq: number
  ack_floor_seq: number
  created: string
}

/** One node's fsync setting, read from its monitoring port (`--monitor`). */
export interface NodeSync {
  url: string
  server: string | undefined
  version: string | undefined
  /** True when the node fsyncs before each PubAck (`sync_interval: always`). */
  sync_always: boolean | undefined
  sync_interval_ms: number | undefined
  error: string | undefined
}

export interface ClusterStatus {
  stream: string
  servers: string[]
  /** The server this command talked to. */
  connected_to: string | undefined
  exists: boolean
  created?: string
  config?: { storage: string; retention: string; replicas: number; max_age_ms: number; max_bytes: number; duplicate_window_ms: number; subjects: string[] }
  state?: { messages: number; bytes: number; first_seq: number; first_ts: string; last_seq: number; last_ts: string; deleted: number; consumers: number }
  group?: GroupStatus
  consumers: ConsumerStatus[]
  buckets: BucketStatus[]
  check?: { refusal: string | undefined; warnings: string[] }
  /** Set with `--monitor`: each node's fsync setting. */
  sync?: NodeSync[]
  /** What is wrong, one line each; empty when healthy. */
  problems: string[]
  health: 'healthy' | 'degraded' | 'unhealthy'
}

/** Reads the cluster's view of the journal on `cfg`'s stream. */
export async function readClusterStatus(config: Config, monitors: string[] = []): Promise<ClusterStatus> {
  const cfg = config.journal.jetstream
  if (cfg === undefined) throw new Error('cluster-status needs journal.jetstream')
  const nc = await connectCluster(cfg, `hookrelay cluster-status ${hostname()} ${process.pid}`)
  try {
    const jsm = await jetstreamManager(nc, { timeout: cfg.timeout_ms })
    const status = await collect(jsm, config, cfg)
    status.connected_to = nc.info?.server_name
    if (monitors.length > 0) addSync(status, await Promise.all(monitors.map((u) => nodeSync(u, cfg.timeout_ms))))
    return status
  } catch (err) {
    if (isTimeout(err)) {
      throw new RelayError(
        'HOOKRELAY_JOURNAL_CONNECT',
        `JetStream did not answer within journal.jetstream.timeout (${formatDuration(cfg.timeout_ms)}): the cluster may have lost its quorum or the stream ${cfg.stream} its leader`,
        { cause: err },
      )
    }
    throw err
  } finally {
    await nc.close().catch(() => undefined)
  }
}

async function collect(jsm: JetStreamManager, config: Config, cfg: JetStreamConfig): Promise<ClusterStatus> {
  const s: ClusterStatus = { stream: cfg.stream, servers: cfg.servers, connected_to: undefined, exists: false, consumers: [], buckets: [], problems: [], health: 'healthy' }
  const unhealthy: string[] = []
  const degraded: string[] = []
  const info = await streamInfo(jsm, cfg.stream)
  if (info === undefined) {
    unhealthy.push(`stream ${cfg.stream} does not exist (the first relay to start creates it)`)
  } else {
    s.exists = true
    s.created = info.created
    const c = info.config
    s.config = {
      storage: c.storage,
      retention: c.retention,
      replicas: c.num_replicas,
      max_age_ms: Math.round(c.max_age / NANOS_PER_MS),
      max_bytes: c.max_bytes,
      duplicate_window_ms: Math.round(c.duplicate_window / NANOS_PER_MS),
      subjects: c.subjects ?? [],
    }
    const st = info.state
    s.state = {
      messages: st.messages,
      bytes: st.bytes,
      first_seq: st.first_seq,
      first_ts: st.first_ts,
      last_seq: st.last_seq,
      last_ts: st.last_ts,
      deleted: st.num_deleted ?? 0,
      consumers: st.consumer_count,
    }
    s.group = group(info.cluster)
    judgeGroup(`stream ${cfg.stream}`, s.group, c.num_replicas, unhealthy, degraded)
    s.check = checkStream(info, cfg, streamSubjects(cfg.stream), config.journal.retention)
    if (s.check.refusal !== undefined) unhealthy.push(`a relay would refuse stream ${cfg.stream}: ${s.check.refusal}`)
    for await (const ci of jsm.consumers.list(cfg.stream)) s.consumers.push(consumer(ci))
    s.consumers.sort((a, b) => a.name.localeCompare(b.name))
  }
  for (const kind of BUCKETS) {
    const name = bucketName(cfg.stream, kind)
    const b = await streamInfo(jsm, `KV_${name}`)
    if (b === undefined) {
      s.buckets.push({ name, kind, exists: false })
      if (s.exists) degraded.push(`KV bucket ${name} does not exist (a relay creates it when it starts)`)
      continue
    }
    const g = group(b.cluster)
    s.buckets.push({ name, kind, exists: true, values: b.state.messages, bytes: b.state.bytes, replicas: b.config.num_replicas, group: g })
    judgeGroup(`KV bucket ${name}`, g, b.config.num_replicas, degraded, degraded)
  }
  s.problems = [...unhealthy, ...degraded]
  s.health = unhealthy.length > 0 ? 'unhealthy' : degraded.length > 0 ? 'degraded' : 'healthy'
  return s
}

/** Stream info, or undefined when the stream does not exist. */
async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name)
  } catch (err) {
    const e = err as { api_error?: { err_code?: number }; message?: string; name?: string }
    if (e.api_error?.err_code === 10059 || /stream not found/i.test(e.message ?? '')) return undefined
    throw err
  }
}

function isTimeout(err: unknown): boolean {
  const e = err as { message?: string; name?: string }
  return e.name === 'TimeoutError' || /timeout|temporarily unavailable/i.test(e.message ?? '')
}

/** A node's `/varz` (its monitoring port): name, version and JetStream's sync settings. */
async function nodeSync(url: string, timeoutMs: number): Promise<NodeSync> {
  const base = url.replace(/\/+$/, '')
  try {
    const res = await fetch(`${base}/varz`, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    const v = (await res.json()) as { server_name?: string; version?: string; jetstream?: { config?: { sync_interval?: number; sync_always?: boolean } } }
    const c = v.jetstream?.config
    if (c === undefined) throw new Error('JetStream is not enabled on this node')
    return {
      url: base,
      server: v.server_name,
      version: v.version,
      sync_always: c.sync_always === true,
      sync_interval_ms: c.sync_interval === undefined ? undefined : Math.round(c.sync_interval / NANOS_PER_MS),
      error: undefined,
    }
  } catch (err) {
    return { url: base, server: undefined, version: undefined, sync_always: undefined, sync_interval_ms: undefined, error: (err as Error).message }
  }
}

/** Folds the nodes' sync settings into the status: a node that does not fsync before each PubAck is a degradation. */
function addSync(s: ClusterStatus, nodes: NodeSync[]): void {
  s.sync = nodes
  const weak: string[] = []
  for (const n of nodes) {
    if (n.error !== undefined) weak.push(`node at ${n.url}: its monitoring port did not answer /varz (${n.error})`)
    else if (n.sync_always !== true) {
      weak.push(
        `node ${n.server ?? n.url} fsyncs every ${formatDuration(n.sync_interval_ms ?? 120_000)}, not before each PubAck: set \`${SYNC_ALWAYS_LINE}\` (nats-server >= 2.10, this is ${n.version ?? '?'})`,
      )
    }
  }
  if (weak.length === 0 && s.check !== undefined) {
    // Verified: the start-up warning that it cannot be seen from a client does not apply.
    s.check.warnings = s.check.warnings.filter((w) => !w.includes(SYNC_ALWAYS_LINE))
  }
  s.problems.push(...weak)
  if (weak.length > 0 && s.health === 'healthy') s.health = 'degraded'
}

function group(ci: ClusterInfo | undefined): GroupStatus {
  const peers: PeerStatus[] = []
  if (ci?.leader !== undefined) peers.push({ name: ci.leader, role: 'leader', current: true, offline: false, lag: 0, active_ms: 0 })
  for (const r of ci?.replicas ?? []) {
    peers.push({ name: r.name, role: 'replica', current: r.current, offline: r.offline === true, lag: r.lag ?? 0, active_ms: Math.round((r.active ?? 0) / NANOS_PER_MS) })
  }
  return { cluster: ci?.name, leader: ci?.leader, leader_since: ci?.leader_since, peers }
}

function judgeGroup(what: string, g: GroupStatus, replicas: number, noLeader: string[], weak: string[]): void {
  if (g.leader === undefined || g.leader === '') {
    noLeader.push(`${what} has no leader: it takes no writes until a majority of its ${replicas} replicas is back`)
    return
  }
  for (const p of g.peers) {
    if (p.role !== 'replica') continue
    if (p.offline) weak.push(`${what}: replica ${p.name} is offline`)
    else if (!p.current) weak.push(`${what}: replica ${p.name} is not current (${p.lag} behind, last seen ${formatDuration(p.active_ms)} ago)`)
  }
  const seen = g.peers.length
  if (seen < replicas) weak.push(`${what}: ${replicas} replicas configured, ${seen} known to the leader`)
}

function consumer(ci: ConsumerInfo): ConsumerStatus {
  return {
    name: ci.name,
    durable: ci.config.durable_name !== undefined && ci.config.durable_name !== '',
    pending: ci.num_pending,
    ack_pending: ci.num_ack_pending,
    redelivered: ci.num_redelivered,
    delivered_seq: ci.delivered.stream_seq,
    ack_floor_seq: ci.ack_floor.stream_seq,
    created: ci.created,
  }
}

/** The status as the terminal shows it. */
export function formatClusterStatus(s: ClusterStatus): string[] {
  const lines: string[] = []
  lines.push(`cluster-status: ${s.health.toUpperCase()}  (asked ${s.connected_to ?? '?'} of ${s.servers.join(', ')})`)
  if (!s.exists || s.state === undefined || s.config === undefined) {
    lines.push(`stream ${s.stream}: missing`)
  } else {
    const c = s.config
    lines.push(`stream ${s.stream}  created ${s.created}  ${c.storage}, R${c.replicas}, ${c.retention} retention, subjects ${c.subjects.join(' ')}`)
    lines.push(
      `  messages ${s.state.messages}  bytes ${formatSize(s.state.bytes)}  seq ${s.state.first_seq}..${s.state.last_seq}  deleted ${s.state.deleted}  consumers ${s.state.consumers}`,
    )
    lines.push(`  first ${s.state.first_ts}  last ${s.state.last_ts}`)
    lines.push(`  keeps max_age ${c.max_age_ms === 0 ? 'unlimited' : formatDuration(c.max_age_ms)}, max_bytes ${c.max_bytes <= 0 ? 'unlimited' : formatSize(c.max_bytes)}; duplicate window ${formatDuration(c.duplicate_window_ms)}`)
    if (s.group !== undefined) lines.push(...formatGroup(s.group, '  '))
  }
  lines.push(`consumers (${s.consumers.length})`)
  for (const c of s.consumers) {
    lines.push(`  ${c.name}${c.durable ? '' : ' (ephemeral)'}  pending ${c.pending}  ack pending ${c.ack_pending}  delivered ${c.delivered_seq}  ack floor ${c.ack_floor_seq}  redelivered ${c.redelivered}`)
  }
  lines.push('KV buckets')
  for (const b of s.buckets) {
    if (!b.exists) {
      lines.push(`  ${b.name}  missing`)
      continue
    }
    const g = b.group
    const weak = g?.peers.filter((p) => p.role === 'replica' && (!p.current || p.offline)).map((p) => p.name) ?? []
    lines.push(`  ${b.name}  values ${b.values}  bytes ${formatSize(b.bytes ?? 0)}  R${b.replicas}  leader ${g?.leader ?? 'NONE'}${weak.length > 0 ? `  not current: ${weak.join(', ')}` : ''}`)
  }
  if (s.sync !== undefined) {
    lines.push('fsync before PubAck (from each node\'s /varz)')
    for (const n of s.sync) {
      if (n.error !== undefined) lines.push(`  ${n.url}  UNKNOWN (${n.error})`)
      else lines.push(`  ${n.server ?? '?'}  ${n.sync_always === true ? 'always' : `NO: every ${formatDuration(n.sync_interval_ms ?? 120_000)}`}  nats-server ${n.version ?? '?'}  ${n.url}`)
    }
  }
  if (s.check !== undefined) {
    if (s.check.refusal !== undefined) lines.push(`check: REFUSED: ${s.check.refusal}`)
    for (const w of s.check.warnings) lines.push(`check: warning: ${w}`)
  }
  for (const p of s.problems) lines.push(`problem: ${p}`)
  return lines
}

function formatGroup(g: GroupStatus, indent: string): string[] {
  const lines = [`${indent}cluster ${g.cluster ?? '(standalone)'}  leader ${g.leader ?? 'NONE'}${g.leader_since === undefined ? '' : ` since ${g.leader_since}`}`]
  for (const p of g.peers) {
    if (p.role === 'leader') {
      lines.push(`${indent}  ${p.name}  leader`)
      continue
    }
    const state = p.offline ? 'OFFLINE' : p.current ? 'current' : 'NOT CURRENT'
    lines.push(`${indent}  ${p.name}  ${state}  lag ${p.lag}  seen ${formatDuration(p.active_ms)} ago`)
  }
  return lines
}

/** The command: parses `args`, prints, returns the exit status. */
export async function runClusterStatus(args: string[], io: ClusterStatusIo, load: (file: string | undefined) => Config): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, json: { type: 'boolean' }, monitor: { type: 'string', multiple: true } } })
  // --monitor http://10.0.0.1:8222 (repeated, or comma-separated): the nodes' monitoring ports, to check their fsync setting.
  const monitors = (values.monitor ?? []).flatMap((m) => m.split(',')).map((m) => m.trim()).filter((m) => m !== '')
  for (const m of monitors) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(m)) {
      io.err(`hookrelay: --monitor ${m} is not a monitoring URL; write it like http://10.0.0.1:8222`)
      return 64
    }
  }
  const config = load(values.config)
  if (config.journal.backend !== 'jetstream' || config.journal.jetstream === undefined) {
    io.err(`hookrelay: ${config.file}: journal.backend is ${config.journal.backend}; cluster-status reads a cluster-mode (jetstream) journal`)
    return EX_CONFIG
  }
  let status: ClusterStatus
  try {
    status = await readClusterStatus(config, monitors)
  } catch (err) {
    if (err instanceof RelayError) {
      if (values.json === true) io.out(JSON.stringify({ stream: config.journal.jetstream.stream, health: 'unhealthy', error: { code: err.code, message: err.message } }))
      io.err(`hookrelay: ${err.code}: ${err.message}`)
      return 1
    }
    throw err
  }
  if (values.json === true) io.out(JSON.stringify(status, null, 2))
  else for (const l of formatClusterStatus(status)) io.out(l)
  return status.health === 'healthy' ? 0 : status.health === 'degraded' ? 2 : 1
}
