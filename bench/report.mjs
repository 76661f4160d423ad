#!/usr/bin/env node
// Renders bench/results/latest.json (or a given file) as the Markdown tables of BENCHMARKS.md.
// Usage: node bench/report.mjs [results.json]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH } from './lib/common.mjs'

const r = JSON.parse(readFileSync(process.argv[2] ?? join(BENCH, 'results/latest.json'), 'utf8'))
const n = (x, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }))
const ms = (x) => (x === undefined ? '—' : x >= 100 ? n(x) : x >= 10 ? n(x, 1) : n(x, 2))
const out = []
const p = (s = '') => out.push(s)

p(`Results of ${r.machine.date} (${r.mode}${r.merged_from ? `; sections ${r.merged_from.sections_rerun} re-run, others from ${r.merged_from.date}` : ''}), Node ${r.machine.node}, ${r.machine.cpu}, ${r.machine.cores} cores.`)
const F = r.machine.fsync
if (F) p(`fdatasync 4 KiB at the start of the run: overwrite p50 ${ms(F.overwrite.p50_ms)} / p99 ${ms(F.overwrite.p99_ms)} ms, append p50 ${ms(F.append.p50_ms)} / p99 ${ms(F.append.p99_ms)} ms.`)
if (r.ingest) {
  const I = r.ingest
  p()
  p(`Ingest, ${r.params.connections} connections, ${r.params.duration} s × ${r.params.rounds} rounds alternated (runs in order; in parentheses the CPU seconds the rest of the machine used during the run):`)
  p()
  p('| server | req/s (median) | runs | p50 ms | p99 ms | max ms | errors / non-2xx | RSS max (anon) |')
  p('|---|---:|---|---:|---:|---:|---|---|')
  for (const [k, name] of [['bare', 'bare uWS'], ['express', 'Express + SQLite'], ['hookrelay', 'hookrelay']]) {
    const s = I.summary[k]
    const runs = I.runs[k].map((x) => `${n(x.rps)} (${n(x.other_cpu_s, 1)})`).join(' / ')
    p(`| ${name} | ${n(s.rps)} | ${runs} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)} | ${s.errors} / ${s.non2xx} | ${n(s.rss_max_mb)} MB (${n(s.rss_anon_max_mb)}) |`)
  }
  p()
  p(`Ratios (medians): hookrelay / bare ${n(I.ratios.hookrelay_over_bare, 2)}×, hookrelay / Express ${n(I.ratios.hookrelay_over_express, 1)}×.`)
}
if (r.fixed) {
  p()
  p('| rate | server | achieved | p50 | p90 | p99 | p99.9 | max | load avg |')
  p('|---|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const rate of Object.keys(r.fixed)) {
    for (const [k, name] of [['bare', 'bare uWS'], ['express', 'Express + SQLite'], ['hookrelay', 'hookrelay']]) {
      const x = r.fixed[rate][k]
      p(`| ${n(Number(rate))}/s | ${name} | ${n(x.achieved)} | ${ms(x.p50)} | ${ms(x.p90)} | ${ms(x.p99)} | ${ms(x.p999)} | ${ms(x.max)} | ${x.load1 ?? '—'} |`)
    }
  }
}
if (r.catchup || r.live || r.e2e) {
  p()
  p('| measurement | result | load avg |')
  p('|---|---|---:|')
  if (r.catchup) p(`| catch-up replay, 1 subscriber, ${n(r.catchup.events)} × 1 KB events | ${ms(r.catchup.seconds)} s → **${n(r.catchup.events_per_s)} events/s** | ${r.catchup.load1 ?? '—'} |`)
  for (const k of Object.keys(r.live ?? {})) {
    const x = r.live[k]
    p(`| live, ${k} subscriber(s), ingest at full load | ingest ${n(x.ingest_rps)} req/s (p99 ${ms(x.ingest_p99)} ms); delivered **${n(x.delivered_per_s)}/s** (${n(x.per_subscriber_per_s)} per subscriber) | ${x.load1 ?? '—'} |`)
  }
  for (const k of Object.keys(r.e2e ?? {})) {
    const x = r.e2e[k]
    p(`| end to end at ${n(x.offered)} req/s, ${k} subscriber(s) | receipt − send p50 ${ms(x.after_send_p50)} ms, p99 ${ms(x.after_send_p99)} ms; receipt − 200 p50 ${ms(x.after_200_p50)} ms, p99 ${ms(x.after_200_p99)} ms; ${x.missing} missing of ${n(x.deliveries + x.missing)} | ${x.load1 ?? '—'} |`)
  }
}
if (r.memory_idle || r.memory_stalled || r.startup) {
  p()
  p('| | VmRSS | RssAnon |')
  p('|---|---:|---:|')
  const M = r.memory_idle ?? {}
  p(`| idle, empty journal | ${n(M.rss_idle_mb)} MB | ${n(M.rss_anon_idle_mb)} MB |`)
  p(`| idle, 1M events journaled | ${n(M.rss_idle_1m_mb)} MB | ${n(M.rss_anon_idle_1m_mb)} MB |`)
  if (r.ingest) p(`| max under full ingest load | ${n(r.ingest.summary.hookrelay.rss_max_mb)} MB | ${n(r.ingest.summary.hookrelay.rss_anon_max_mb)} MB |`)
  if (r.memory_stalled) p(`| max with one stalled subscriber (\`after: 0\` on ${n(r.memory_stalled.journal_events)} events) + full load (${n(r.memory_stalled.ingest_rps_meanwhile)} req/s) | ${n(r.memory_stalled.rss_max_mb)} MB | ${n(r.memory_stalled.rss_anon_max_mb)} MB |`)
  if (r.startup) {
    p()
    p('| start-up (spawn → `/readyz` 200) | median | samples |')
    p('|---|---:|---|')
    p(`| empty journal | ${n(r.startup.empty_ms)} ms | ${r.startup.empty_samples.map((x) => n(x)).join(' / ')} |`)
    if (r.startup.million_ms !== undefined) p(`| 1,000,000 events | ${n(r.startup.million_ms)} ms | ${r.startup.million_samples.map((x) => n(x)).join(' / ')} |`)
  }
}
if (r.goals) {
  p()
  p('| goal (issue 5) | measured | verdict |')
  p('|---|---:|---|')
  for (const g of r.goals) p(`| ${g.goal} | ${g.value >= 1000 ? n(g.value) : n(g.value, 2)} ${g.unit} | ${g.met ? 'met' : '**not met**'} |`)
}
console.log(out.join('\n'))
