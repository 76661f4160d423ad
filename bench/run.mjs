#!/usr/bin/env node
// hookrelay benchmarks, side by side (issue 5). Runs against dist/ (build first).
//
//   node bench/run.mjs            full run (~10 min)
//   node bench/run.mjs --quick    under 3 minutes
//   node bench/run.mjs --only ingest,fixed,fanout,memory,startup
//       (re-runs those sections and merges them into the existing results file)
//
// Prints a table and writes bench/results/latest.json. See BENCHMARKS.md for the method.
import { parseArgs } from 'node:util'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import {
  BENCH,
  cleanup,
  cpuSeconds,
  ensureWrk,
  machineBusySeconds,
  forkSubscribers,
  machine,
  median,
  removeDir,
  rssMB,
  rssSampler,
  runAutocannon,
  runNodeJson,
  runWrk,
  sleep,
  startServer,
  syncDisks,
  waitQuiet,
  tempDir,
  writePool,
} from './lib/common.mjs'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: join(BENCH, 'results/latest.json') },
  },
})
const Q = values.quick
const P = {
  duration: Q ? 5 : 10, // s per closed-loop ingest run
  warmup: 1, // s of unmeasured load before each measured ingest run
  rounds: Q ? 2 : 3, // A/B/A/B rounds (each round runs every server once)
  connections: 64,
  fixedRates: [1000, 5000],
  fixedDuration: Q ? 3 : 10,
  catchup: Q ? 100_000 : 200_000,
  liveDuration: Q ? 4 : 8,
  liveSubs: [1, 10, 100],
  startupEvents: 1_000_000,
  startupEventBytes: 256,
  startupSamples: Q ? 2 : 3,
}
const only = new Set((values.only ?? 'ingest,fixed,fanout,memory,startup').split(','))
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a)
/** 1-minute load average (includes this harness's own processes, ~2 under load): a noisy run shows here. */
const load1 = () => Math.round(loadavg()[0] * 10) / 10
const r1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))

const started = performance.now()
// With --only, the other sections of an earlier run are kept (and marked with their date).
const earlier = values.only && existsSync(values.out) ? JSON.parse(readFileSync(values.out, 'utf8')) : undefined
const results = { mode: Q ? 'quick' : 'full', machine: machine(), params: P, generator: undefined }
if (earlier) {
  results.merged_from = { date: earlier.machine?.date, mode: earlier.mode, sections_rerun: values.only }
  for (const k of ['ingest', 'fixed', 'catchup', 'memory_stalled', 'live', 'e2e', 'startup', 'memory_idle']) {
    if (earlier[k] !== undefined) results[k] = earlier[k]
  }
}
results.machine.fsync = await runNodeJson(join(BENCH, 'fsync.mjs'), [])
log(`fdatasync 4 KiB: p50 ${r1(results.machine.fsync.overwrite.p50_ms)} ms, p99 ${r1(results.machine.fsync.overwrite.p99_ms)} ms (overwrite); p50 ${r1(results.machine.fsync.append.p50_ms)} ms p99 ${r1(results.machine.fsync.append.p99_ms)} ms (append)`)
const wrk = ensureWrk(log)
results.generator = wrk ? `wrk (${wrk}), 1 thread, ${P.connections} connections, Lua pool of pre-signed unique bodies` : 'autocannon (npx), single body'

// Pre-signed unique ~1 KB bodies: enough that no measured run wraps at ~25k req/s.
const poolDir = tempDir('pool')
const poolSize = Q ? 160_000 : 330_000
log(`writing ${poolSize} pre-signed bodies`)
const pool = await writePool(join(poolDir, 'pool.txt'), poolSize)
const warmPool = await writePool(join(poolDir, 'warm.txt'), 40_000)
syncDisks()

async function closedLoop(port, duration, p = pool) {
  if (!wrk) return runAutocannon({ port, duration, connections: P.connections })
  return runWrk({ wrk, port, pool: p, duration, connections: P.connections, threads: 1 })
}

/**
 * The servers compared: bare uWS on one thread and on two (BARE_THREADS), Express +
 * SQLite, and hookrelay with `http.threads: 1` (the main thread alone) and `auto`.
 */
const SERVERS = {
  bare: { name: 'bare uWS, 1 thread', start: () => startServer('bare') },
  bare2: { name: 'bare uWS, 2 threads', start: () => startServer('bare', { env: { BARE_THREADS: '2' } }) },
  express: { name: 'Express + SQLite', start: () => startServer('express') },
  relay1: { name: 'hookrelay, threads: 1', start: () => startServer('hookrelay', { configExtra: 'http: { threads: 1 }' }) },
  relayauto: { name: 'hookrelay, threads: auto', start: () => startServer('hookrelay', { configExtra: 'http: { threads: auto }' }) },
}
const KINDS = Object.keys(SERVERS)

/** One measured closed-loop run against a fresh server (fresh data dir). */
async function ingestRun(kind) {
  // Other users of this VM run test suites: the full run waits (≤ 20 s) for a quiet second; --quick does not wait.
  const quiet = Q ? undefined : await waitQuiet(20_000)
  const s = await SERVERS[kind].start()
  try {
    await closedLoop(s.port, P.warmup, warmPool)
    const rss = rssSampler(s.pid)
    const cpu0 = cpuSeconds(s.pid)
    const busy0 = machineBusySeconds()
    const r = await closedLoop(s.port, P.duration)
    r.server_cpu_s = cpuSeconds(s.pid) - cpu0
    // Every thread of the server process: µs of CPU per answered (for hookrelay: durable) request.
    r.cpu_us_per_req = (r.server_cpu_s / r.requests) * 1e6
    // CPU the rest of the machine used meanwhile (other users of this VM): a noisy run shows here.
    r.other_cpu_s = Math.max(0, machineBusySeconds() - busy0 - r.server_cpu_s - (r.wrk_cpu_s ?? 0))
    const m = rss.stop()
    r.rss_max_mb = m.max
    r.rss_anon_max_mb = m.anonMax
    r.quiet = quiet
    return r
  } finally {
    await s.stop()
    if (s.dir) removeDir(s.dir)
  }
}

// ---------------------------------------------------------------- ingest
if (only.has('ingest')) {
  delete results.ingest
  const kinds = KINDS
  const runs = Object.fromEntries(KINDS.map((k) => [k, []]))
  for (let round = 0; round < P.rounds; round++) {
    const order = round % 2 === 0 ? kinds : [...kinds].reverse()
    for (const kind of order) {
      const r = await ingestRun(kind)
      runs[kind].push(r)
      log(`ingest round ${round + 1} ${kind}: ${r1(r.rps)} req/s p50 ${r1(r.p50)} p99 ${r1(r.p99)} max ${r1(r.max)} ms, errors ${r.errors}, non-2xx ${r.non2xx}; CPU s: server ${r1(r.server_cpu_s)} wrk ${r1(r.wrk_cpu_s)} others ${r1(r.other_cpu_s)}`)
    }
  }
  const med = (k, f) => median(runs[k].map((r) => r[f]))
  const summary = {}
  for (const k of kinds) {
    summary[k] = {
      rps: med(k, 'rps'),
      p50: med(k, 'p50'),
      p99: med(k, 'p99'),
      max: med(k, 'max'),
      errors: runs[k].reduce((a, r) => a + r.errors, 0),
      non2xx: runs[k].reduce((a, r) => a + r.non2xx, 0),
      wrapped: runs[k].reduce((a, r) => a + r.wrapped, 0),
      server_cpu_s: med(k, 'server_cpu_s'),
      cpu_us_per_req: med(k, 'cpu_us_per_req'),
      other_cpu_s: runs[k].map((r) => Math.round(r.other_cpu_s * 10) / 10),
      rss_max_mb: med(k, 'rss_max_mb'),
      rss_anon_max_mb: med(k, 'rss_anon_max_mb'),
      runs: runs[k].map((r) => Math.round(r.rps)),
    }
  }
  // Readers of earlier results (bench/report.mjs) know one hookrelay: the default, threads: auto.
  summary.hookrelay = summary.relayauto
  results.ingest = {
    summary,
    ratios: {
      hookrelay_over_bare: summary.relayauto.rps / summary.bare.rps,
      hookrelay_over_express: summary.relayauto.rps / summary.express.rps,
      threads1_over_bare: summary.relay1.rps / summary.bare.rps,
      threads1_over_express: summary.relay1.rps / summary.express.rps,
      auto_over_bare2: summary.relayauto.rps / summary.bare2.rps,
      auto_over_threads1: summary.relayauto.rps / summary.relay1.rps,
      cpu_auto_over_bare: summary.relayauto.cpu_us_per_req / summary.bare.cpu_us_per_req,
      cpu_threads1_over_bare: summary.relay1.cpu_us_per_req / summary.bare.cpu_us_per_req,
    },
    runs,
  }
}

// ---------------------------------------------------------------- fixed offered rates
if (only.has('fixed')) {
  results.fixed = {}
  for (const rate of P.fixedRates) {
    results.fixed[rate] = {}
    for (const kind of KINDS) {
      if (!Q) await waitQuiet(20_000)
      const s = await SERVERS[kind].start()
      try {
        const r = await runNodeJson(join(BENCH, 'lib/open-loop.mjs'), [
          JSON.stringify({ port: s.port, rate, duration: P.fixedDuration, connections: P.connections }),
        ])
        r.load1 = load1()
        results.fixed[rate][kind] = r
        log(`fixed ${rate}/s ${kind}: achieved ${r1(r.achieved)} p50 ${r1(r.p50)} p99 ${r1(r.p99)} max ${r1(r.max)} ms, non-2xx ${r.non2xx}`)
      } finally {
        await s.stop()
        if (s.dir) removeDir(s.dir)
      }
    }
  }
}

// ---------------------------------------------------------------- fan-out
if (only.has('fanout') || only.has('memory')) {
  if (only.has('fanout')) delete results.catchup
  if (only.has('memory')) delete results.memory_stalled
  // One pre-journaled relay: catch-up replay, then the stalled-subscriber memory test.
  const dir = tempDir('catchup')
  log(`pre-journaling ${P.catchup} events of 1 KB`)
  const pj = await runNodeJson(join(BENCH, 'lib/prejournal.mjs'), [join(dir, 'data'), String(P.catchup), '1024'])
  syncDisks()
  try {
    if (only.has('fanout')) {
      if (!Q) await waitQuiet(20_000)
      const s = await startServer('hookrelay', { dir })
      const subs = forkSubscribers({ port: s.port, n: 1, after: 0 })
      const live = await subs.next('live')
      await subs.exit()
      await s.stop()
      results.catchup = { load1: load1(), events: live.events, seconds: live.seconds, events_per_s: live.events / live.seconds, prejournal_s: pj.seconds }
      log(`catch-up: ${live.events} events in ${r1(live.seconds)} s = ${r1(live.events / live.seconds)} events/s`)
    }
    if (only.has('memory')) {
      // A fresh relay on the same journal: one subscriber asks for everything
      // (after: 0) and never reads; full ingest load meanwhile.
      if (!Q) await waitQuiet(20_000)
      const s = await startServer('hookrelay', { dir })
      await sleep(1000)
      const idle = rssMB(s.pid)
      const idleAnon = rssMB(s.pid, 'RssAnon')
      const stall = forkSubscribers({ port: s.port, n: 1, after: 0, mode: 'stall' })
      await stall.next('ready')
      const rss = rssSampler(s.pid)
      const r = await closedLoop(s.port, P.duration)
      const m = rss.stop()
      const closed = stall.inbox.find((x) => x.type === 'closed')
      await stall.exit()
      await s.stop()
      results.memory_stalled = {
        load1: load1(),
        journal_events: P.catchup,
        rss_idle_before_mb: idle,
        rss_anon_idle_before_mb: idleAnon,
        rss_max_mb: m.max,
        rss_anon_max_mb: m.anonMax,
        ingest_rps_meanwhile: r.rps,
        non2xx: r.non2xx,
        subscriber_closed: closed ?? null,
      }
      log(`stalled subscriber: RSS max ${r1(m.max)} MB (anon ${r1(m.anonMax)}) under ${r1(r.rps)} req/s (idle ${r1(idle)} MB)`)
    }
  } finally {
    removeDir(dir)
  }
}

if (only.has('fanout')) {
  results.live = {}
  for (const n of P.liveSubs) {
    if (!Q) await waitQuiet(20_000)
    const s = await startServer('hookrelay')
    try {
      const subs = forkSubscribers({ port: s.port, n, after: 'latest' })
      await subs.next('ready')
      await closedLoop(s.port, P.warmup, warmPool)
      subs.child.send({ type: 'start' })
      const r = await closedLoop(s.port, P.liveDuration)
      subs.child.send({ type: 'stop' })
      const c = await subs.next('counts')
      const closes = subs.inbox.filter((x) => x.type === 'closed').length
      await subs.exit()
      results.live[n] = {
        load1: load1(),
        subscribers: n,
        ingest_rps: r.rps,
        ingest_p99: r.p99,
        delivered_per_s: c.events / c.seconds,
        per_subscriber_per_s: c.events / c.seconds / n,
        closes,
      }
      log(`live fan-out to ${n}: ingest ${r1(r.rps)} req/s, delivered ${r1(c.events / c.seconds)} events/s (p99 ack ${r1(r.p99)} ms)`)
    } finally {
      await s.stop()
      removeDir(s.dir)
    }
  }
  results.e2e = {}
  for (const n of [1, 10]) {
    if (!Q) await waitQuiet(20_000)
    const s = await startServer('hookrelay')
    try {
      const r = await runNodeJson(join(BENCH, 'lib/open-loop.mjs'), [
        JSON.stringify({ port: s.port, rate: 1000, duration: P.fixedDuration, connections: P.connections, subscribers: n }),
      ])
      results.e2e[n] = { load1: load1(), offered: 1000, ack_p50: r.p50, ack_p99: r.p99, ...r.e2e }
      log(`e2e at 1000/s, ${n} subscriber(s): receipt after send p50 ${r1(r.e2e.after_send_p50)} p99 ${r1(r.e2e.after_send_p99)} ms; after the 200 p50 ${r1(r.e2e.after_200_p50)} p99 ${r1(r.e2e.after_200_p99)} ms`)
    } finally {
      await s.stop()
      removeDir(s.dir)
    }
  }
}

// ---------------------------------------------------------------- memory idle + start-up
if (only.has('memory') || only.has('startup')) {
  const keep1m = results.startup
  const keepIdle = results.memory_idle
  const times = []
  let idle
  for (let i = 0; i < P.startupSamples; i++) {
    const dir = tempDir('empty')
    const s = await startServer('hookrelay', { dir })
    times.push(s.readyMs)
    if (i === 0) {
      await sleep(2000)
      idle = { rss: rssMB(s.pid), anon: rssMB(s.pid, 'RssAnon') }
    }
    await s.stop()
    removeDir(dir)
  }
  results.startup = { ...keep1m, empty_ms: median(times), empty_samples: times }
  results.memory_idle = { ...keepIdle, rss_idle_mb: idle.rss, rss_anon_idle_mb: idle.anon }
  log(`start-up, empty journal: ${r1(median(times))} ms; idle RSS ${r1(idle.rss)} MB (anon ${r1(idle.anon)})`)
}

if (only.has('startup')) {
  const dir = tempDir('million')
  log(`pre-journaling ${P.startupEvents} events of ${P.startupEventBytes} B`)
  const pj = await runNodeJson(join(BENCH, 'lib/prejournal.mjs'), [join(dir, 'data'), String(P.startupEvents), String(P.startupEventBytes)])
  syncDisks()
  const times = []
  let idle
  for (let i = 0; i < P.startupSamples; i++) {
    const s = await startServer('hookrelay', { dir })
    times.push(s.readyMs)
    if (i === 0) {
      await sleep(1000)
      idle = { rss: rssMB(s.pid), anon: rssMB(s.pid, 'RssAnon') }
    }
    await s.stop()
  }
  removeDir(dir)
  results.startup.million_ms = median(times)
  results.startup.million_samples = times
  results.startup.million_prejournal_s = pj.seconds
  results.memory_idle ??= {}
  results.memory_idle.rss_idle_1m_mb = idle.rss
  results.memory_idle.rss_anon_idle_1m_mb = idle.anon
  log(`start-up with ${P.startupEvents} events: ${r1(median(times))} ms; idle RSS ${r1(idle.rss)} MB (anon ${r1(idle.anon)})`)
}

// ---------------------------------------------------------------- goals and report
const g = []
const goal = (name, value, target, ok, unit = '') => g.push({ goal: name, value, target, met: ok, unit })
const I = results.ingest
if (I) {
  goal('ingest (threads: auto) ≥ 50% of bare uWS (1 thread)', I.ratios.hookrelay_over_bare, 0.5, I.ratios.hookrelay_over_bare >= 0.5, '×')
  goal('ingest (threads: auto) ≥ 10× Express+SQLite', I.ratios.hookrelay_over_express, 10, I.ratios.hookrelay_over_express >= 10, '×')
  goal('CPU per durable request (threads: auto) ≤ 2.5× bare uWS (1 thread)', I.ratios.cpu_auto_over_bare, 2.5, I.ratios.cpu_auto_over_bare <= 2.5, '×')
  for (const k of ['relay1', 'relayauto']) goal(`p99 ack ≤ 10 ms at 64 connections (${SERVERS[k].name})`, I.summary[k].p99, 10, I.summary[k].p99 <= 10, 'ms')
}
if (results.fixed?.[5000]) {
  for (const k of ['relay1', 'relayauto']) {
    const v = results.fixed[5000][k]?.p99
    if (v !== undefined) goal(`p99 ack ≤ 5 ms at 5k req/s offered (${SERVERS[k].name})`, v, 5, v <= 5, 'ms')
  }
}
if (results.catchup) goal('catch-up replay ≥ 100k events/s', results.catchup.events_per_s, 100_000, results.catchup.events_per_s >= 100_000, 'events/s')
if (results.live?.[100]) {
  const v = results.live[100].delivered_per_s
  goal('live fan-out to 100 ≥ 200k delivered/s', v, 200_000, v >= 200_000, 'events/s')
}
if (results.memory_idle?.rss_idle_mb !== undefined) goal('idle RSS ≤ 80 MB', results.memory_idle.rss_idle_mb, 80, results.memory_idle.rss_idle_mb <= 80, 'MB')
if (results.memory_stalled) goal('RSS with a stalled subscriber under load ≤ 200 MB', results.memory_stalled.rss_max_mb, 200, results.memory_stalled.rss_max_mb <= 200, 'MB')
if (results.startup?.million_ms !== undefined) goal('ready ≤ 1 s with 1M events', results.startup.million_ms, 1000, results.startup.million_ms <= 1000, 'ms')
results.goals = g
results.elapsed_s = (performance.now() - started) / 1000

const out = []
const p = (s = '') => out.push(s)
p(`\nhookrelay benchmarks (${results.mode}) — ${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.machine.date}`)
p(`load generator: ${results.generator}`)
const F = results.machine.fsync
p(`fdatasync 4 KiB: overwrite p50 ${r1(F.overwrite.p50_ms)} / p99 ${r1(F.overwrite.p99_ms)} ms, append p50 ${r1(F.append.p50_ms)} / p99 ${r1(F.append.p99_ms)} ms`)
if (I) {
  p(`\nIngest, ~1 KB signed Runflow body, ${P.connections} connections, ${P.duration} s × ${P.rounds} rounds alternated, medians`)
  p('server                      req/s    p50 ms   p99 ms   max ms  errors  non-2xx  RSS MB  CPU µs/req  runs')
  for (const k of KINDS) {
    const s = I.summary[k]
    p(`${SERVERS[k].name.padEnd(24)} ${r1(s.rps).padStart(8)} ${r1(s.p50).padStart(9)} ${r1(s.p99).padStart(8)} ${r1(s.max).padStart(8)} ${String(s.errors).padStart(7)} ${String(s.non2xx).padStart(8)} ${r1(s.rss_max_mb).padStart(7)} ${r1(s.cpu_us_per_req).padStart(11)}  ${s.runs.join(' / ')} (others' CPU s: ${s.other_cpu_s.join(' / ')})`)
  }
  const R = I.ratios
  p(`ratios: threads:auto / bare(1) ${r1(R.hookrelay_over_bare)}×, / Express ${r1(R.hookrelay_over_express)}×, / bare(2) ${r1(R.auto_over_bare2)}×, / threads:1 ${r1(R.auto_over_threads1)}×; threads:1 / bare(1) ${r1(R.threads1_over_bare)}×, / Express ${r1(R.threads1_over_express)}×`)
  p(`CPU per request: threads:auto / bare(1) ${r1(R.cpu_auto_over_bare)}×, threads:1 / bare(1) ${r1(R.cpu_threads1_over_bare)}×`)
}
if (results.fixed) {
  p('\nFixed offered rate (open loop, latency from when each request was due), ms')
  p('rate   server                    achieved    p50     p99   p99.9     max  non-2xx  load1')
  for (const rate of P.fixedRates) {
    for (const k of KINDS) {
      const r = results.fixed[rate][k]
      if (r === undefined) continue
      p(`${String(rate).padEnd(6)} ${SERVERS[k].name.padEnd(24)} ${r1(r.achieved).padStart(9)} ${r1(r.p50).padStart(6)} ${r1(r.p99).padStart(7)} ${r1(r.p999).padStart(7)} ${r1(r.max).padStart(7)} ${String(r.non2xx).padStart(8)} ${String(r.load1 ?? '—').padStart(6)}`)
    }
  }
}
if (results.catchup) p(`\nCatch-up replay to 1 subscriber: ${results.catchup.events} events in ${r1(results.catchup.seconds)} s = ${r1(results.catchup.events_per_s)} events/s`)
if (results.live) {
  p('\nLive fan-out under full ingest load (wrk, 64 connections)')
  p('subscribers  ingest req/s  ack p99 ms  delivered events/s  per subscriber/s  load1')
  for (const n of P.liveSubs) {
    const r = results.live[n]
    p(`${String(n).padEnd(12)} ${r1(r.ingest_rps).padStart(12)} ${r1(r.ingest_p99).padStart(11)} ${r1(r.delivered_per_s).padStart(19)} ${r1(r.per_subscriber_per_s).padStart(17)} ${String(r.load1 ?? '—').padStart(6)}`)
  }
}
if (results.e2e) {
  p('\nEnd-to-end latency at 1000 req/s offered (sender and subscribers in one process, not the relay\'s), ms')
  for (const n of [1, 10]) {
    const e = results.e2e[n]
    p(`${n} subscriber(s): receipt − send p50 ${r1(e.after_send_p50)} p99 ${r1(e.after_send_p99)}; receipt − 200 p50 ${r1(e.after_200_p50)} p99 ${r1(e.after_200_p99)}; missing ${e.missing}`)
  }
}
if (results.memory_idle || results.memory_stalled || results.startup) {
  p('\nMemory and start-up')
  p('(RSS = VmRSS, including file-backed pages such as the LMDB map; anon = RssAnon, the heap and buffers)')
  if (results.memory_idle) p(`idle RSS (empty journal) ${r1(results.memory_idle.rss_idle_mb)} MB (anon ${r1(results.memory_idle.rss_anon_idle_mb)}); idle RSS (1M events) ${r1(results.memory_idle.rss_idle_1m_mb)} MB (anon ${r1(results.memory_idle.rss_anon_idle_1m_mb)})`)
  if (I) p(`RSS under full ingest load (max, threads: auto) ${r1(I.summary.relayauto.rss_max_mb)} MB (anon ${r1(I.summary.relayauto.rss_anon_max_mb)})`)
  if (results.memory_stalled) p(`RSS with one stalled subscriber under full load (max) ${r1(results.memory_stalled.rss_max_mb)} MB (anon ${r1(results.memory_stalled.rss_anon_max_mb)})`)
  if (results.startup) p(`ready (spawn → /readyz 200): empty ${r1(results.startup.empty_ms)} ms; ${P.startupEvents} events ${r1(results.startup.million_ms)} ms`)
}
p('\nGoals (issue 5)')
for (const x of g) p(`${x.met ? 'met    ' : 'NOT met'}  ${x.goal}: ${r1(x.value)} ${x.unit} (target ${x.target})`)
p(`\n(${r1(results.elapsed_s)} s)`)
console.log(out.join('\n'))
mkdirSync(join(BENCH, 'results'), { recursive: true })
writeFileSync(values.out, `${JSON.stringify(results, null, 2)}\n`)
console.log(`wrote ${values.out}`)
cleanup()
