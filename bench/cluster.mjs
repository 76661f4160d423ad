#!/usr/bin/env node
// Cluster mode against one LMDB relay, side by side in the same run (issue 11).
// Runs against dist/ (build first).
//
//   node bench/cluster.mjs            3 rounds of 10 s each side
//   node bench/cluster.mjs --quick    2 rounds of 5 s
//   node bench/cluster.mjs --dist DIR another build (a scratch copy of dist/ with a change)
//
// Cluster side: a 3-node nats-server cluster on loopback (`sync_interval:
// always`: an fsync before each PubAck, the durable setting the README
// recommends), two relays on one R3 stream, each loaded by its own wrk with
// half the connections and its own pool of unique signed callbacks (so the
// load is split across both, as behind a proxy). Baseline: one LMDB relay
// loaded by one wrk with all the connections and the same kind of bodies.
// Everything shares this machine's cores: the figure is what one small box
// running the whole cluster does, not what three boxes would.
//
// Writes bench/results/cluster.json and prints a summary.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import {
  BENCH,
  ROOT,
  cpuSeconds,
  ensureWrk,
  freePort,
  machine,
  machineBusySeconds,
  median,
  removeDir,
  runWrk,
  sleep,
  startServer,
  syncDisks,
  tempDir,
  waitQuiet,
  writePool,
} from './lib/common.mjs'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: join(BENCH, 'results/cluster.json') },
    // Another build of hookrelay to measure (e.g. a fix tried in a scratch copy of dist/).
    dist: { type: 'string', default: join(ROOT, 'dist') },
  },
})
const Q = values.quick
const P = { duration: Q ? 5 : 10, warmup: 1, rounds: Q ? 2 : 3, connections: 64 }
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a)
const r1 = (x) => (x === undefined || Number.isNaN(x) ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
const load1 = () => Math.round(loadavg()[0] * 10) / 10

function natsServerBin() {
  const onPath = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim()
  const cached = join(ROOT, 'node_modules', '.cache', 'hookrelay-test-tools', 'nats-server-trixie', 'usr', 'sbin', 'nats-server')
  if (existsSync(cached)) return cached
  if (onPath !== '') return onPath
  throw new Error('no nats-server: run the JetStream tests once (they fetch Debian 13\'s package), or apt install nats-server (>= 2.10)')
}

async function jsz(port) {
  const res = await fetch(`http://127.0.0.1:${port}/jsz`)
  return res.json()
}

/** A 3-node cluster on loopback; resolves once the meta leader counts both other nodes as current. */
async function startCluster(syncInterval) {
  const bin = natsServerBin()
  const dir = tempDir('nats')
  const nodes = []
  for (let i = 0; i < 3; i++) nodes.push({ name: `n${i + 1}`, port: await freePort(), http: await freePort(), cluster: await freePort(), proc: undefined })
  for (const n of nodes) {
    mkdirSync(join(dir, n.name), { recursive: true })
    const routes = nodes.filter((o) => o !== n).map((o) => `nats-route://127.0.0.1:${o.cluster}`)
    n.conf = join(dir, `${n.name}.conf`)
    writeFileSync(
      n.conf,
      [
        `server_name: ${n.name}`,
        `listen: 127.0.0.1:${n.port}`,
        `http: 127.0.0.1:${n.http}`,
        `jetstream { store_dir: "${join(dir, n.name)}", max_memory_store: 64MB, max_file_store: 4GB, sync_interval: ${syncInterval} }`,
        `cluster { name: bench, listen: 127.0.0.1:${n.cluster}, routes: [${routes.join(', ')}] }`,
      ].join('\n') + '\n',
    )
  }
  const startNode = (n) =>
    new Promise((resolve, reject) => {
      const proc = spawn(bin, ['-c', n.conf], { stdio: ['ignore', 'ignore', 'pipe'] })
      n.proc = proc
      let logText = ''
      proc.once('exit', (code) => reject(new Error(`nats-server ${n.name} exited ${code}: ${logText}`)))
      proc.stderr.on('data', (d) => {
        logText = (logText + d).slice(-4000)
        if (logText.includes('Server is ready')) resolve()
      })
    })
  const stopNode = async (n) => {
    if (!n.proc || n.proc.exitCode !== null) return
    n.proc.removeAllListeners('exit')
    const exited = new Promise((r) => n.proc.once('exit', r))
    n.proc.kill('SIGTERM')
    const t = setTimeout(() => n.proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(t)
  }
  await Promise.all(nodes.map(startNode))
  // nats-server 2.10 sometimes leaves one node out of the meta group at a simultaneous start: restart it.
  for (let attempt = 0; ; attempt++) {
    const deadline = performance.now() + 8000
    let missing = []
    while (performance.now() < deadline) {
      try {
        const metas = await Promise.all(nodes.map((n) => jsz(n.http).then((z) => z.meta_cluster)))
        const leader = metas[0]?.leader
        const lm = metas[nodes.findIndex((n) => n.name === leader)]
        if (leader && metas.every((m) => m?.leader === leader) && lm) {
          missing = nodes.filter((n) => n.name !== leader && !(lm.replicas ?? []).some((p) => p.name === n.name && p.current))
          if (missing.length === 0) return { nodes, urls: nodes.map((n) => `nats://127.0.0.1:${n.port}`), stop: async () => (await Promise.all(nodes.map(stopNode)), removeDir(dir)) }
        }
      } catch {}
      await sleep(100)
    }
    if (attempt >= 3) throw new Error('the NATS cluster did not form')
    for (const n of missing) {
      await stopNode(n)
      await startNode(n)
    }
  }
}

function clusterConfig(urls, stream) {
  return `journal:
  retention: { max_age: 1d, max_bytes: 512mb }
  backend: jetstream
  jetstream:
    servers: [${urls.map((u) => JSON.stringify(u)).join(', ')}]
    stream: ${stream}
    replicas: 3
`
}

async function measured(servers, pools) {
  const cpu0 = servers.map((s) => cpuSeconds(s.pid))
  const busy0 = machineBusySeconds()
  const per = Math.floor(P.connections / servers.length)
  const rs = await Promise.all(servers.map((s, i) => runWrk({ wrk, port: s.port, pool: pools[i], duration: P.duration, connections: per, threads: 1 })))
  const serverCpu = servers.reduce((a, s, i) => a + (cpuSeconds(s.pid) - cpu0[i]), 0)
  const wrkCpu = rs.reduce((a, r) => a + (r.wrk_cpu_s || 0), 0)
  return {
    rps: rs.reduce((a, r) => a + r.rps, 0),
    // Answers that were 2xx, per second: a relay answering 503 fast must not look fast.
    ok_rps: rs.reduce((a, r) => a + (r.requests > 0 ? ((r.requests - r.non2xx) / r.requests) * r.rps : 0), 0),
    // p50/p99 of the split load: the worse of the two generators (their samples cannot be merged exactly).
    p50: Math.max(...rs.map((r) => r.p50)),
    p99: Math.max(...rs.map((r) => r.p99)),
    max: Math.max(...rs.map((r) => r.max)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    wrapped: rs.reduce((a, r) => a + r.wrapped, 0),
    per_relay_rps: rs.map((r) => Math.round(r.rps)),
    relay_cpu_s: serverCpu,
    wrk_cpu_s: wrkCpu,
    machine_busy_s: machineBusySeconds() - busy0,
    load1: load1(),
  }
}

const wrk = ensureWrk(log)
if (!wrk) throw new Error('bench/cluster.mjs needs wrk (apt install wrk): it splits unique signed bodies across two relays')
const results = { mode: Q ? 'quick' : 'full', machine: machine(), dist: values.dist, params: P, generator: `wrk (${wrk}), 1 thread each; cluster: 2 × ${P.connections / 2} connections, lmdb: 1 × ${P.connections}`, lmdb: [], cluster: [] }
const poolDir = tempDir('pool')
const poolSize = Q ? 60_000 : 120_000
log(`writing 3 pools of ${poolSize} pre-signed bodies`)
// Run ids carry random bytes, so no body of one pool repeats in another: no callback is a duplicate.
const pools = await Promise.all([0, 1, 2].map((k) => writePool(join(poolDir, `pool${k}.txt`), poolSize)))
const warm = await writePool(join(poolDir, 'warm.txt'), 20_000)
syncDisks()

log('starting a 3-node nats-server cluster (sync_interval: always)')
const cluster = await startCluster('always')
try {
  for (let round = 0; round < P.rounds; round++) {
    const order = round % 2 === 0 ? ['lmdb', 'cluster'] : ['cluster', 'lmdb']
    for (const kind of order) {
      const quiet = Q ? undefined : await waitQuiet(20_000)
      if (kind === 'lmdb') {
        const s = await startServer('hookrelay', { dist: values.dist })
        try {
          await runWrk({ wrk, port: s.port, pool: warm, duration: P.warmup, connections: P.connections, threads: 1 })
          const r = await measured([s], [pools[2]])
          r.quiet = quiet
          results.lmdb.push(r)
          log(`round ${round + 1} lmdb (1 relay): ${r1(r.rps)} req/s p50 ${r1(r.p50)} p99 ${r1(r.p99)} ms, errors ${r.errors}, non-2xx ${r.non2xx}, load ${r.load1}`)
        } finally {
          await s.stop()
          if (s.dir) removeDir(s.dir)
        }
      } else {
        const stream = `BENCH${round}`
        // The first relay creates the stream and buckets; the second finds them.
        const a = await startServer('hookrelay', { dist: values.dist, configExtra: clusterConfig(cluster.urls, stream) })
        const b = await startServer('hookrelay', { dist: values.dist, configExtra: clusterConfig(cluster.urls, stream) })
        try {
          await runWrk({ wrk, port: a.port, pool: warm, duration: P.warmup, connections: P.connections / 2, threads: 1 })
          const r = await measured([a, b], [pools[0], pools[1]])
          r.quiet = quiet
          results.cluster.push(r)
          if (r.non2xx > 0) {
            // What the relays said about the answers that were not 2xx (their warn/error lines).
            r.relay_log_tail = [a, b].map((s) => s.output().split('\n').filter((l) => l.trim() !== '').slice(-5))
            log('non-2xx answers; relay log tails:', JSON.stringify(r.relay_log_tail).slice(0, 1500))
          }
          log(`round ${round + 1} cluster (2 relays, R3): ${r1(r.rps)} req/s (${r.per_relay_rps.join(' + ')}) p50 ${r1(r.p50)} p99 ${r1(r.p99)} ms, errors ${r.errors}, non-2xx ${r.non2xx}, load ${r.load1}`)
        } finally {
          await Promise.all([a.stop(), b.stop()])
          for (const s of [a, b]) if (s.dir) removeDir(s.dir)
        }
      }
    }
  }
} finally {
  await cluster.stop()
}

const summary = (runs) => ({
  rps: median(runs.map((r) => r.rps)),
  ok_rps: median(runs.map((r) => r.ok_rps)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  errors: runs.reduce((a, r) => a + r.errors, 0),
  non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
  runs: runs.map((r) => Math.round(r.rps)),
})
results.summary = { lmdb: summary(results.lmdb), cluster: summary(results.cluster) }
results.summary.cluster_over_lmdb = results.summary.cluster.ok_rps / results.summary.lmdb.ok_rps
mkdirSync(join(BENCH, 'results'), { recursive: true })
writeFileSync(values.out, JSON.stringify(results, null, 2) + '\n')
const s = results.summary
console.log(`\n| setup | 2xx/s (median of ${P.rounds}) | all answers/s | p50 ms | p99 ms | non-2xx | runs (answers/s) |`)
console.log('|---|---|---|---|---|---|---|')
console.log(`| 1 LMDB relay | ${r1(s.lmdb.ok_rps)} | ${r1(s.lmdb.rps)} | ${r1(s.lmdb.p50)} | ${r1(s.lmdb.p99)} | ${s.lmdb.non2xx} | ${s.lmdb.runs.join(', ')} |`)
console.log(`| 2 relays on a 3-node R3 cluster (sync always) | ${r1(s.cluster.ok_rps)} | ${r1(s.cluster.rps)} | ${r1(s.cluster.p50)} | ${r1(s.cluster.p99)} | ${s.cluster.non2xx} | ${s.cluster.runs.join(', ')} |`)
console.log(`\ncluster / lmdb (2xx/s): ${r1(s.cluster_over_lmdb)}; written to ${values.out}`)
process.exit(0)
