// `hookrelay cluster-status` through the built CLI against a real 3-node
// nats-server cluster: missing stream, a healthy one with entries, consumers
// and KV buckets, one node killed (its replica shows as not current, exit 2),
// quorum lost (exit 1), and the config errors.
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { connect } from '@nats-io/transport-node'
import t from 'tap'
import type { JournalConfig } from '../src/config/types.js'
import { bucketName, entrySubject } from '../src/journal/jetstream/names.js'
import { ensureStream } from '../src/journal/jetstream/setup.js'
import type { ClusterStatus } from '../src/journal/jetstream/cluster-status.js'
import { startNatsCluster } from './helpers/nats.js'
import { freePortNotListening } from './helpers/nats-auth.js'
import { CLI } from './helpers/spawn.js'

const run = promisify(execFile)

async function cli(args: string[], cwd: string) {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd, timeout: 60_000 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

function configFile(dir: string, servers: string[], timeout = '3s'): string {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'cluster.yaml')
  writeFileSync(
    file,
    [
      'data_dir: ./data',
      'sources:',
      '  runflow: { verify: { scheme: runflow, secrets: ["whsec_cluster_status_test_0123456789"] } }',
      'journal:',
      '  retention: { max_age: 7d, max_bytes: 64mb }',
      '  backend: jetstream',
      '  jetstream:',
      `    servers: [${servers.map((s) => JSON.stringify(s)).join(', ')}]`,
      '    stream: HOOKRELAY',
      '    replicas: 3',
      `    timeout: ${timeout}`,
      '',
    ].join('\n'),
  )
  return file
}

t.test('config errors: an lmdb config is exit 78; unreachable servers are exit 1 with HOOKRELAY_JOURNAL_CONNECT', async (t) => {
  const dir = t.testdir()
  const lmdb = join(dir, 'lmdb.yaml')
  writeFileSync(lmdb, 'sources:\n  runflow: { verify: { scheme: runflow } }\n')
  const r = await cli(['cluster-status', '--config', lmdb], dir)
  t.equal(r.code, 78)
  t.match(r.stderr, /journal\.backend is lmdb; cluster-status reads a cluster-mode \(jetstream\) journal/)
  const port = await freePortNotListening()
  const gone = await cli(['cluster-status', '--config', configFile(dir, [`nats://127.0.0.1:${port}`])], dir)
  t.equal(gone.code, 1)
  t.match(gone.stderr, `HOOKRELAY_JOURNAL_CONNECT: cannot connect to NATS at nats://127.0.0.1:${port}`)
  const json = await cli(['cluster-status', '--json', '--config', configFile(dir, [`nats://127.0.0.1:${port}`])], dir)
  t.match(JSON.parse(json.stdout), { stream: 'HOOKRELAY', health: 'unhealthy', error: { code: 'HOOKRELAY_JOURNAL_CONNECT' } })
})

t.test('on a real 3-node cluster', async (t) => {
  const dir = t.testdir()
  const nats = await startNatsCluster(t, { size: 3, dir })
  const file = configFile(dir, nats.urls)

  await t.test('no stream yet: exit 1, "missing"', async (t) => {
    const r = await cli(['cluster-status', '--config', file], dir)
    t.equal(r.code, 1, 'exit 1') || t.comment(r.stdout + r.stderr)
    t.match(r.stdout, /^cluster-status: UNHEALTHY/)
    t.match(r.stdout, /stream HOOKRELAY: missing/)
    t.match(r.stdout, /problem: stream HOOKRELAY does not exist \(the first relay to start creates it\)/)
    t.match(r.stdout, /HOOKRELAY_runs {2}missing/)
  })

  const nc = await connect({ servers: nats.urls })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc, { timeout: 10_000 })
  const journal: JournalConfig = {
    backend: 'jetstream',
    map_size: 0,
    retention: { max_age_ms: 7 * 86_400_000, max_bytes: 64 * 1024 * 1024 },
    min_free: 0,
    jetstream: { servers: nats.urls, stream: 'HOOKRELAY', replicas: 3, timeout_ms: 5000, duplicate_window_ms: 120_000, auth: { kind: 'none' }, tls: undefined },
  }
  const setup = await ensureStream(jsm, journal)
  const js = jetstream(nc)
  for (let i = 0; i < 5; i++) await js.publish(entrySubject('HOOKRELAY', 'runflow'), `{"n":${i}}`, { msgID: `m${i}` })
  const kvm = new Kvm(js)
  const kvs = await Promise.all((['runs', 'cursors', 'jobs', 'meta'] as const).map((k) => kvm.create(bucketName('HOOKRELAY', k), { replicas: 3, history: 1 })))
  await kvs[0]!.put('run_1', '{"revision":1}')
  await kvs[0]!.put('run_2', '{"revision":1}')
  await jsm.consumers.add('HOOKRELAY', { durable_name: 'app', ack_policy: AckPolicy.Explicit })

  await t.test('healthy: stream state, leader and current replicas, consumer, buckets; exit 0', async (t) => {
    const r = await cli(['cluster-status', '--config', file], dir)
    t.equal(r.code, 0, 'exit 0') || t.comment(r.stdout + r.stderr)
    t.match(r.stdout, /^cluster-status: HEALTHY/)
    t.match(r.stdout, `stream HOOKRELAY  created ${setup.info.created}  file, R3, limits retention, subjects HOOKRELAY.>`)
    t.match(r.stdout, /messages 5 {2}bytes \S+ {2}seq 1\.\.5 {2}deleted 0 {2}consumers 1/)
    t.match(r.stdout, /cluster hookrelay-test {2}leader n\d/)
    t.equal(r.stdout.match(/^ {4}n\d {2}current {2}lag 0/gm)?.length, 2, 'two replicas, both current')
    t.match(r.stdout, /consumers \(1\)\n {2}app {2}pending 5 {2}ack pending 0 {2}delivered 0 {2}ack floor 0/)
    t.match(r.stdout, /HOOKRELAY_runs {2}values 2 {2}bytes \S+ {2}R3 {2}leader n\d\n/)
    t.match(r.stdout, /HOOKRELAY_meta {2}values 0/)
    t.match(r.stdout, /check: warning: a NATS client cannot see whether the servers fsync/)
    t.notMatch(r.stdout, /problem:/)

    const j = await cli(['cluster-status', '--json', '--config', file], dir)
    t.equal(j.code, 0)
    const s = JSON.parse(j.stdout) as ClusterStatus
    t.match(s, { stream: 'HOOKRELAY', exists: true, health: 'healthy', problems: [], state: { messages: 5, first_seq: 1, last_seq: 5 }, config: { replicas: 3, storage: 'file' } })
    t.equal(s.group?.peers.length, 3)
    t.same(s.consumers.map((c) => [c.name, c.pending]), [['app', 5]])
    t.same(s.buckets.map((b) => [b.name, b.exists]), [['HOOKRELAY_runs', true], ['HOOKRELAY_cursors', true], ['HOOKRELAY_jobs', true], ['HOOKRELAY_meta', true]])
  })

  await t.test('--monitor reads each node\'s fsync setting from /varz: all "always" is healthy and drops the cannot-verify warning', async (t) => {
    const monitors = nats.nodes.map((n) => `http://127.0.0.1:${n.monitorPort}`)
    const r = await cli(['cluster-status', '--config', file, '--monitor', monitors.slice(0, 2).join(','), '--monitor', monitors[2]!], dir)
    t.equal(r.code, 0, 'exit 0') || t.comment(r.stdout + r.stderr)
    t.match(r.stdout, /fsync before PubAck \(from each node's \/varz\)/)
    for (const n of nats.nodes) t.match(r.stdout, new RegExp(`^ {2}${n.name} {2}always {2}nats-server 2\\.\\d+\\.\\d+ {2}http://127\\.0\\.0\\.1:${n.monitorPort}$`, 'm'))
    t.notMatch(r.stdout, /a NATS client cannot see whether the servers fsync/, 'verified, so not warned')
    const j = JSON.parse((await cli(['cluster-status', '--json', '--config', file, '--monitor', monitors.join(',')], dir)).stdout) as ClusterStatus
    t.same(j.sync?.map((n) => n.sync_always), [true, true, true])
  })

  await t.test('--monitor: a node with the default lazy fsync, or one that does not answer, is degraded (exit 2)', async (t) => {
    const lazy = await startNatsCluster(t, { size: 1, dir: join(dir, 'lazy'), syncInterval: '"1m"' }) // quoted: nats-server reads a bare 1m as 1000000 seconds
    const silent = await freePortNotListening()
    const r = await cli(['cluster-status', '--config', file, '--monitor', `http://127.0.0.1:${lazy.nodes[0]!.monitorPort}`, '--monitor', `http://127.0.0.1:${silent}`], dir)
    t.equal(r.code, 2, 'exit 2') || t.comment(r.stdout + r.stderr)
    t.match(r.stdout, /^cluster-status: DEGRADED/)
    t.match(r.stdout, /n1 {2}NO: every 1m/)
    t.match(r.stdout, /problem: node n1 fsyncs every 1m, not before each PubAck: set `jetstream \{ sync_interval: always \}`/)
    t.match(r.stdout, new RegExp(`problem: node at http://127\\.0\\.0\\.1:${silent}: its monitoring port did not answer /varz`))
    t.match(r.stdout, /check: warning: a NATS client cannot see/, 'not verified, so still warned')
    const bad = await cli(['cluster-status', '--config', file, '--monitor', 'nats://127.0.0.1:4222'], dir)
    t.equal(bad.code, 64)
    t.match(bad.stderr, /--monitor nats:\/\/127\.0\.0\.1:4222 is not a monitoring URL; write it like http:\/\/10\.0\.0\.1:8222/)
    await lazy.stop()
  })

  await t.test('a stream a relay would refuse: exit 1 with the reason', async (t) => {
    await jsm.streams.add({ name: 'WORKQ', subjects: ['WORKQ.>'], retention: 'workqueue', storage: 'file', num_replicas: 3 })
    const wq = configFile(join(dir, 'wq'), nats.urls)
    writeFileSync(wq, readFileSync(wq, 'utf8').replace('stream: HOOKRELAY', 'stream: WORKQ'))
    const r = await cli(['cluster-status', '--config', wq], dir)
    t.equal(r.code, 1, 'exit 1') || t.comment(r.stdout + r.stderr)
    t.match(r.stdout, /^cluster-status: UNHEALTHY/)
    t.match(r.stdout, /check: REFUSED: its retention is workqueue/)
    t.match(r.stdout, /problem: a relay would refuse stream WORKQ: its retention is workqueue/)
    t.match(r.stdout, /problem: KV bucket WORKQ_runs does not exist/)
  })

  await t.test('one node killed: its replica shows as not current or offline, exit 2 (degraded)', async (t) => {
    const info = await jsm.streams.info('HOOKRELAY')
    const leader = info.cluster?.leader
    const victim = nats.nodes.findIndex((n) => n.name !== leader)
    const name = nats.nodes[victim]!.name
    await nats.kill(victim)
    // More entries while it is gone: the survivors take them (2 of 3 is a quorum).
    for (let i = 5; i < 8; i++) await js.publish(entrySubject('HOOKRELAY', 'runflow'), `{"n":${i}}`, { msgID: `m${i}` })
    // The leader notices a lost peer on its own schedule: ask until it does (bounded by the test's timeout).
    let r = await cli(['cluster-status', '--config', file], dir)
    while (!new RegExp(`^ {4}${name} {2}(OFFLINE|NOT CURRENT)`, 'm').test(r.stdout)) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      r = await cli(['cluster-status', '--config', file], dir)
    }
    t.equal(r.code, 2, 'exit 2') || t.comment(r.stdout + r.stderr)
    t.match(r.stdout, /^cluster-status: DEGRADED/)
    t.match(r.stdout, /messages 8 .* seq 1\.\.8/, 'the stream still answers, with the new entries')
    t.match(r.stdout, new RegExp(`problem: stream HOOKRELAY: replica ${name} is (offline|not current)`))
    t.match(r.stdout, new RegExp(`^ {4}n\\d {2}current`, 'm'), 'the other replica is current')
  })

  await t.test('a second node killed: no quorum, exit 1', async (t) => {
    const running = nats.nodes.map((n, i) => [n, i] as const).filter(([n]) => n.proc !== undefined)
    await nats.kill(running[0]![1])
    const r = await cli(['cluster-status', '--config', file], dir)
    t.equal(r.code, 1, 'exit 1') || t.comment(r.stdout + r.stderr)
    // Either JetStream does not answer at all (the meta group lost its quorum too) or the stream answers without a leader.
    t.match(r.stderr + r.stdout, /HOOKRELAY_JOURNAL_CONNECT: JetStream did not answer within journal\.jetstream\.timeout \(3s\): the cluster may have lost its quorum|stream HOOKRELAY has no leader/)
  })
})
