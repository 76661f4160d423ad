#!/usr/bin/env node
// CPU profile of hookrelay's ingest hot path under wrk load, summarized by self time.
//   node bench/profile.mjs [seconds=10] [http.threads=auto]   profile dist/cli.js serve under load
//       (every thread writes its own profile: the main thread's and each ingest thread's are summarized)
//   node bench/profile.mjs --summarize FILE.cpuprofile
// Prints the top functions by self time and the time per area (uWS, crypto, lmdb, pino, ...).
import { readdirSync, readFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH, ensureWrk, runWrk, startServer, tempDir, writePool, syncDisks, cleanup } from './lib/common.mjs'

/** Area of a profile node, from its script URL and function name. */
function area(cf) {
  const u = cf.url ?? ''
  const f = cf.functionName
  if (f === '(garbage collector)') return 'GC'
  if (f === '(idle)') return 'idle (waiting for I/O)'
  if (f === '(program)') return 'native, outside JS (uWS I/O, syscalls, lmdb thread hand-off)'
  if (u.includes('/lmdb/') || u.includes('/msgpackr/')) return 'lmdb / msgpackr'
  if (u.includes('/pino')) return 'pino'
  if (u.includes('/prom-client/')) return 'prom-client'
  if (u.includes('uWebSockets') || u.includes('uws')) return 'uWS'
  if (u.includes('/dist/http/')) return 'hookrelay http (ingest, respond)'
  if (u.includes('/dist/journal/')) return 'hookrelay journal'
  if (u.includes('/dist/verify/')) return 'hookrelay verify'
  if (u.includes('/dist/fanout/')) return 'hookrelay fanout'
  if (u.includes('/dist/mirror/')) return 'hookrelay mirror'
  if (u.includes('/dist/')) return 'hookrelay other'
  if (u.includes('internal/crypto')) return 'node crypto (HMAC, sha256)'
  if (u.startsWith('node:internal/timers') || u.includes('internal/process/task_queues')) return 'timers, microtasks'
  if (u.startsWith('node:') || u === '') {
    if (f === 'parse' || f === 'stringify') return `JSON.${f}`
    if (/^(toString|from|concat|allocUnsafe|set|copy|subarray|write|slice)$/.test(f)) return 'Buffer / strings'
    return u === '' ? `V8 builtins` : 'node internals'
  }
  return 'other'
}

export function summarize(file, top = 25) {
  const prof = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map()
  const dt = prof.timeDeltas
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fn = new Map()
  const ar = new Map()
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame
    const k = `${cf.functionName || '(anonymous)'} ${cf.url ? `${cf.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${cf.lineNumber + 1}` : ''}`
    fn.set(k, (fn.get(k) ?? 0) + us)
    const a = area(cf)
    ar.set(a, (ar.get(a) ?? 0) + us)
  }
  const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5)
  const lines = [`profile ${file}: ${(total / 1e6).toFixed(1)} s sampled`, '', 'self time by area:']
  for (const [k, us] of [...ar].sort((a, b) => b[1] - a[1])) lines.push(`${pct(us)}%  ${k}`)
  lines.push('', `top ${top} functions by self time:`)
  for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}%  ${k}`)
  return { text: lines.join('\n'), areas: Object.fromEntries([...ar].map(([k, v]) => [k, (100 * v) / total])) }
}

const args = process.argv.slice(2)
if (args[0] === '--summarize') {
  console.log(summarize(args[1]).text)
} else {
  const seconds = Number(args[0] ?? 10)
  const relayThreads = args[1] ?? 'auto'
  const wrk = ensureWrk()
  const dir = tempDir('profile')
  const pool = await writePool(join(dir, 'pool.txt'), 350_000)
  syncDisks()
  const profDir = join(dir, 'prof')
  mkdirSync(profDir)
  const s = await startServer('hookrelay', { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir], configExtra: `http: { threads: ${relayThreads} }` })
  const r = await runWrk({ wrk, port: s.port, pool, duration: seconds, threads: 1 })
  await s.stop('SIGTERM')
  console.log(`http.threads ${relayThreads}, under load: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms (profiling slows the relay)`)
  // CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile: thread 0 is the main thread.
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))
  for (const file of files.sort((a, b) => Number(a.split('.')[4]) - Number(b.split('.')[4]))) {
    const tid = Number(file.split('.')[4])
    console.log(`\n=== ${tid === 0 ? 'main thread' : `thread ${tid} (ingest thread)`}`)
    console.log(summarize(join(profDir, file)).text)
  }
  cleanup()
}
