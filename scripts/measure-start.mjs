#!/usr/bin/env node
// Start-up time to /readyz and idle RSS of a relay command, for BENCHMARKS.md "Release artifacts":
//   node scripts/measure-start.mjs RUNS -- COMMAND [ARGS...]
// COMMAND must serve on 127.0.0.1:18181 (its config's listen). Prints the median and range of the
// time from spawn to the first 200 from /readyz (polled every 10 ms), and of VmRSS (the process
// and its children) 5 s after ready.
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

const sep = process.argv.indexOf('--')
const runs = Number(process.argv[2])
const [cmd, ...args] = process.argv.slice(sep + 1)
const URL_ = 'http://127.0.0.1:18181/readyz'

function rssKiB(pid) {
  // The launcher execs node, but count children too in case a command forks.
  let total = 0
  const pids = [pid]
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(pid)) pids.push(Number(p))
    } catch {}
  }
  for (const p of pids) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
    if (m) total += Number(m[1])
  }
  return total
}

const times = []
const rss = []
for (let i = 0; i < runs; i++) {
  const t0 = performance.now()
  const child = spawn(cmd, args, { stdio: 'ignore' })
  const exited = new Promise((r) => child.on('exit', r))
  let ready = false
  while (!ready) {
    try {
      ready = (await fetch(URL_)).status === 200
    } catch {}
    if (!ready) await sleep(10)
  }
  times.push(performance.now() - t0)
  await sleep(5000)
  rss.push(rssKiB(child.pid) / 1024)
  child.kill('SIGTERM')
  await exited
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
const fmt = (a, unit) => `${med(a).toFixed(0)} ${unit} (${Math.min(...a).toFixed(0)}–${Math.max(...a).toFixed(0)})`
console.log(`start to /readyz: ${fmt(times, 'ms')}; idle RSS: ${fmt(rss, 'MiB')}; ${runs} runs`)
