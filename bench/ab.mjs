#!/usr/bin/env node
// A/B a hot-path change: two builds of hookrelay (two dist/ directories, e.g. this
// checkout and a scratch copy with the change), alternated A/B/A/B under the same
// wrk load, then 5 s at a fixed 5k req/s offered; medians reported. Each run gets a fresh data dir.
//   node bench/ab.mjs <distA> <distB> [rounds=4] [seconds=8]
import { join, resolve } from 'node:path'
import { BENCH, runNodeJson, waitQuiet, ensureWrk, median, removeDir, runWrk, startServer, syncDisks, tempDir, writePool, cpuSeconds, machineBusySeconds } from './lib/common.mjs'

const [a, b, roundsArg, secondsArg] = process.argv.slice(2)
const dists = { A: resolve(a), B: resolve(b) }
const rounds = Number(roundsArg ?? 4)
const seconds = Number(secondsArg ?? 8)
const wrk = ensureWrk()
const dir = tempDir('ab')
const pool = await writePool(join(dir, 'pool.txt'), 300_000)
const warm = await writePool(join(dir, 'warm.txt'), 30_000)
syncDisks()
const res = { A: [], B: [] }
for (let r = 0; r < rounds; r++) {
  for (const k of r % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
    await waitQuiet(30_000) // other users of the VM: wait (≤ 30 s) for a quiet second
    const s = await startServer('hookrelay', { dist: dists[k] })
    await runWrk({ wrk, port: s.port, pool: warm, duration: 1, threads: 1 })
    const c0 = cpuSeconds(s.pid)
    const b0 = machineBusySeconds()
    const x = await runWrk({ wrk, port: s.port, pool, duration: seconds, threads: 1 })
    x.cpu_per_req_us = ((cpuSeconds(s.pid) - c0) / x.requests) * 1e6
    x.others = machineBusySeconds() - b0 - (cpuSeconds(s.pid) - c0) - x.wrk_cpu_s
    // and the ack latency at a fixed 5k req/s offered (open loop), on the same relay
    const f = await runNodeJson(join(BENCH, 'lib/open-loop.mjs'), [JSON.stringify({ port: s.port, rate: 5000, duration: 5 })])
    x.fixed5k_p50 = f.p50
    x.fixed5k_p99 = f.p99
    await s.stop()
    removeDir(s.dir)
    res[k].push(x)
    console.error(`${k} ${x.rps.toFixed(0)} req/s p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)} ms, server CPU ${x.cpu_per_req_us.toFixed(1)} µs/req, others ${x.others.toFixed(1)} s, non-2xx ${x.non2xx}; at 5k/s p50 ${f.p50.toFixed(2)} p99 ${f.p99.toFixed(2)} ms`)
  }
}
// Other users of the VM disturb runs: medians over the quiet runs (others used < 1.5 CPU s) when both have some.
const QUIET = 1.5
const quiet = (k) => res[k].filter((x) => x.others < QUIET)
const useQuiet = quiet('A').length > 0 && quiet('B').length > 0
const pick = (k) => (useQuiet ? quiet(k) : res[k])
const m = (k, f) => median(pick(k).map((x) => x[f]))
const out = { medians_over: useQuiet ? `quiet runs only (others < ${QUIET} CPU s)` : 'all runs' }
for (const k of ['A', 'B']) out[k] = {
    quiet_runs: quiet(k).length, dist: dists[k], rps: m(k, 'rps'), p50: m(k, 'p50'), p99: m(k, 'p99'), cpu_per_req_us: m(k, 'cpu_per_req_us'), fixed5k_p50: m(k, 'fixed5k_p50'), fixed5k_p99: m(k, 'fixed5k_p99'), runs: res[k].map((x) => Math.round(x.rps)) }
out.B_over_A = out.B.rps / out.A.rps
console.log(JSON.stringify(out, null, 2))
