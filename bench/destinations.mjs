#!/usr/bin/env node
// Destination delivery throughput and added latency, side by side with a plain
// fetch loop POSTing the same bodies to the same local 200-answering server
// (bench/servers/sink.mjs, its own process). Runs against dist/ (build first).
//
//   node bench/destinations.mjs [--events 20000] [--json bench/results/destinations.json]
//
// For each concurrency (16, then 1 = in journal order): the destination is
// paused, `events` callbacks are journaled, the destination is resumed, and the
// time from resume to the last arrival gives deliveries/s. Then, with the
// destination running, callbacks are posted at 1k/s for 5 s: the added latency
// is the sink's arrival time minus the time the sender got its 200 (same clock).
import { fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH, PATH, TOKEN, cleanup, freePort, machine, makeBody, percentile, sign, startServer, trackChild, waitQuiet } from './lib/common.mjs'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    json: { type: 'string', default: join(BENCH, 'results', 'destinations.json') },
  },
})
const N = Number(values.events)
const now = () => performance.timeOrigin + performance.now()

async function startSink() {
  const port = await freePort()
  const child = fork(join(BENCH, 'servers', 'sink.mjs'), [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  trackChild(child)
  const next = (type) => new Promise((r) => child.on('message', function on(m) {
    if (m.type === type) {
      child.off('message', on)
      r(m)
    }
  }))
  await next('listening')
  return {
    port,
    url: `http://127.0.0.1:${port}/webhook/runflow`,
    async reset() {
      child.send({ type: 'reset' })
      await next('reset')
    },
    async stats(arrivals = false) {
      child.send({ type: 'stats', arrivals })
      return next('stats')
    },
    stop: () => child.kill(),
  }
}

/** Runs `total` tasks with at most `parallel` at once. */
async function pool(total, parallel, task) {
  let i = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (i < total) await task(i++)
  }))
}

async function post(port, body) {
  const r = await fetch(`http://127.0.0.1:${port}${PATH}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'runflow-signature': sign(body) },
  })
  const text = await r.text()
  if (r.status !== 200) throw new Error(`ingest answered ${r.status}: ${text}`)
  return JSON.parse(text)
}

async function api(port, method, path) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } })
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`)
  return r.json()
}

/** Waits until the sink has `n` requests; resolves with its stats. */
async function arrived(sink, n, guardMs = 300_000) {
  const t0 = Date.now()
  for (;;) {
    const s = await sink.stats()
    if (s.count >= n) return s
    if (Date.now() - t0 > guardMs) throw new Error(`only ${s.count} of ${n} arrived`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** The baseline: a plain fetch loop POSTing the same bodies to the sink. */
async function plainLoop(sink, bodies, parallel) {
  await sink.reset()
  const t0 = now()
  await pool(bodies.length, parallel, async (i) => {
    const r = await fetch(sink.url, { method: 'POST', body: bodies[i], headers: { 'content-type': 'application/json' } })
    await r.arrayBuffer()
  })
  return bodies.length / ((now() - t0) / 1000)
}

async function relayDelivery(sink, concurrency, bodies) {
  const extra = `destinations:
  bench:
    url: ${sink.url}
    concurrency: ${concurrency}
    retry: { schedule: [100ms, 1s], max_age: 1h }
`
  const relay = await startServer('hookrelay', { configExtra: extra, role: 'operator' })
  try {
    await api(relay.port, 'POST', '/v1/destinations/bench/pause')
    await pool(bodies.length, 32, (i) => post(relay.port, bodies[i]))
    await sink.reset()
    await waitQuiet(10_000)
    const t0 = now()
    await api(relay.port, 'POST', '/v1/destinations/bench/resume')
    const s = await arrived(sink, bodies.length)
    const rate = bodies.length / ((s.last - t0) / 1000)

    // Added latency at 1k/s offered, on the same relay (the backlog is delivered).
    await sink.reset()
    const acks = new Map()
    const offered = 1000
    const seconds = 5
    const started = now()
    const inflight = []
    for (let i = 0; i < offered * seconds; i++) {
      const due = started + (i * 1000) / offered
      const wait = due - now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      const { body } = makeBody(1_000_000 + i)
      inflight.push(post(relay.port, body).then((a) => acks.set(a.seq, now())))
    }
    await Promise.all(inflight)
    const s2 = await arrived(sink, offered * seconds)
    const fin = await sink.stats(true)
    const added = []
    for (const [seq, at] of fin.arrivals) {
      const ack = acks.get(seq)
      if (ack !== undefined) added.push(at - ack)
    }
    added.sort((a, b) => a - b)
    return { concurrency, events: bodies.length, deliveries_per_s: rate, latency_1k: { samples: added.length, p50_ms: percentile(added, 50), p99_ms: percentile(added, 99), arrived: s2.count } }
  } finally {
    await relay.stop()
  }
}

try {
  const sink = await startSink()
  const bodies = Array.from({ length: N }, (_, i) => makeBody(i).body)
  const results = { machine: machine(), at: new Date().toISOString(), events: N, runs: [] }
  for (const concurrency of [16, 1]) {
    const count = concurrency === 1 ? Math.min(N, 5000) : N
    await waitQuiet(10_000)
    const plain = await plainLoop(sink, bodies.slice(0, count), concurrency)
    const relay = await relayDelivery(sink, concurrency, bodies.slice(0, count))
    const row = { ...relay, plain_per_s: plain, ratio: relay.deliveries_per_s / plain }
    results.runs.push(row)
    console.error(
      `concurrency ${concurrency}: relay ${row.deliveries_per_s.toFixed(0)}/s vs plain fetch loop ${plain.toFixed(0)}/s (${(row.ratio * 100).toFixed(0)}%); ` +
        `added latency at 1k/s p50 ${row.latency_1k.p50_ms.toFixed(2)} ms, p99 ${row.latency_1k.p99_ms.toFixed(2)} ms (${row.latency_1k.samples} samples)`,
    )
  }
  sink.stop()
  writeFileSync(values.json, JSON.stringify(results, null, 2) + '\n')
  console.log(JSON.stringify(results))
} finally {
  cleanup()
}
