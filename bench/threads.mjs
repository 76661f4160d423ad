#!/usr/bin/env node
// Per-thread CPU of the relay under full wrk load: is the main (JS + uWS) thread
// saturated, or the LMDB writer? (A CPU profile counts uWS's native work in the
// poll phase as "(idle)", so it cannot tell.)
// Usage: node bench/threads.mjs [seconds=8] [distDir] [http.threads=auto]
// With http.threads > 1 the ingest threads show as their own rows; the last line
// sums every thread: the relay's CPU per durable request.
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ensureWrk, runWrk, startServer, tempDir, writePool, syncDisks, ROOT, removeDir } from './lib/common.mjs'

const seconds = Number(process.argv[2] ?? 8)
const dist = resolve(process.argv[3] ?? join(ROOT, 'dist'))
const relayThreads = process.argv[4] ?? 'auto'
function threads(pid) {
  const out = new Map()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
      out.set(tid, { name, user: Number(f[11]) / 100, sys: Number(f[12]) / 100 })
    } catch {}
  }
  return out
}
const dir = tempDir('threads')
// Unique bodies for the run: a run that sends more wraps around (duplicates, a cheaper path): size it above rate × seconds.
const pool = await writePool(join(dir, 'pool.txt'), Number(process.env.POOL ?? 300_000))
syncDisks()
const s = await startServer('hookrelay', { dist, configExtra: `http: { threads: ${relayThreads} }` })
const before = threads(s.pid)
const r = await runWrk({ wrk: ensureWrk(), port: s.port, pool, duration: seconds, threads: 1 })
const after = threads(s.pid)
await s.stop()
removeDir(s.dir)
console.log(`http.threads ${relayThreads}: ${r.rps.toFixed(0)} req/s over ${seconds} s (non-2xx ${r.non2xx}, wrk CPU ${r.wrk_cpu_s?.toFixed(1)} s); CPU per thread (share of one core):`)
const rows = []
for (const [tid, a] of after) {
  const b = before.get(tid) ?? { user: 0, sys: 0 }
  const u = a.user - b.user
  const sy = a.sys - b.sys
  if (u + sy > 0.05) rows.push({ tid, name: tid === String(s.pid) ? 'main' : a.name, user: u / seconds, sys: sy / seconds, us_per_req: ((u + sy) / r.requests) * 1e6 })
}
rows.sort((x, y) => y.user + y.sys - (x.user + x.sys))
for (const x of rows) console.log(`${x.name.padEnd(16)} tid ${x.tid}: user ${(x.user * 100).toFixed(0)}% sys ${(x.sys * 100).toFixed(0)}%  (${x.us_per_req.toFixed(1)} µs/req)`)
const total = rows.reduce((a, x) => a + x.us_per_req, 0)
const busy = rows.reduce((a, x) => a + x.user + x.sys, 0)
console.log('(main = the main thread; with http.threads > 1 the next busiest `node` rows are the ingest threads, then libuv pool threads running lmdb commits and V8 helpers)')
console.log(`all threads: ${(busy * 100).toFixed(0)}% of one core, ${total.toFixed(1)} µs CPU per durable request`)
