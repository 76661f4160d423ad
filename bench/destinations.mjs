#!/usr/bin/env node
// Destination delivery throughput and added latency, side by side with two
// plain client loops POSTing the same bodies to the same local 200-answering
// server (bench/servers/sink.mjs, its own process): Node's `fetch` and a
// node:http keep-alive Agent (the fastest plain client built into Node).
// Runs against dist/ (build first).
//
//   node bench/destinations.mjs [--events 20000] [--rounds 1] [--json bench/results/destinations.json]
//
// Each round: first what the sink alone can take (two client processes of
// their own at 32 requests each, so the sink is the busy one). Then for each
// concurrency (16, then 1 = in journal order): the two plain loops, then the
// relay: the destination is paused, the events are journaled, the
// destination is resumed, and the time from resume to the last arrival
// gives deliveries/s (with the CPU the relay and the sink used per delivery).
// Then, with the destination running, callbacks are posted at 1k/s for 5 s:
// the added latency is the sink's arrival time minus the time the sender got
// its 200 (same clock). Every phase records the CPU other processes on the
// machine used meanwhile (cores busy besides this benchmark's own processes).
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  BENCH,
  PATH,
  TOKEN,
  cleanup,
  cpuSeconds,
  freePort,
  machine,
  machineBusySeconds,
  makeBody,
  median,
  percentile,
  sign,
  startServer,
  trackChild,
  waitQuiet,
} from './lib/common.mjs'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '1' },
    json: { type: 'string', default: join(BENCH, 'results', 'destinations.json') },
  },
})
const N = Number(values.events)
const ROUNDS = Number(values.rounds)
const now = () => performance.timeOrigin + performance.now()
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number)
const selfCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/**
 * Measures a phase: wall seconds, CPU seconds of each pid given (and of this
 * process as `bench`), and `others`: the cores the rest of the machine kept
 * busy meanwhile (machine busy time minus ours, per second).
 */
async function measured(pids, fn) {
  const c0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]))
  const b0 = machineBusySeconds()
  const s0 = selfCpu()
  const t0 = now()
  const value = await fn()
  const wall = (now() - t0) / 1000
  const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) - c0[k]]))
  cpu.bench = selfCpu() - s0
  const ours = Object.values(cpu).reduce((a, b) => a + b, 0)
  const others = Math.max(0, machineBusySeconds() - b0 - ours) / wall
  return { value, wall, cpu, others_cores: Math.round(others * 100) / 100 }
}

async function startSink() {
  const port = await freePort()
  const child = fork(join(BENCH, 'servers', 'sink.mjs'), [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  trackChild(child)
  const next = (type) =>
    new Promise((r) =>
      child.on('message', function on(m) {
        if (m.type === type) {
          child.off('message', on)
          r(m)
        }
      }),
    )
  await next('listening')
  return {
    port,
    pid: child.pid,
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
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (i < total) await task(i++)
    }),
  )
}

/** The sender: signed POSTs to the relay over a keep-alive node:http Agent (fetch costs ~5× the CPU per request, and a starved sender skews the latency). */
let senderAgent = new http.Agent({ keepAlive: true, maxSockets: 64 })
function post(port, body) {
  const buf = Buffer.from(body)
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: PATH,
        method: 'POST',
        agent: senderAgent,
        headers: { 'content-type': 'application/json', 'content-length': buf.length, 'runflow-signature': sign(body) },
      },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          if (res.statusCode !== 200) reject(new Error(`ingest answered ${res.statusCode}: ${text}`))
          else resolve(JSON.parse(text))
        })
      },
    )
    req.on('error', reject)
    req.end(buf)
  })
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

const perDelivery = (seconds, n) => Math.round((seconds / n) * 1e6 * 10) / 10

/** What the sink alone can take: two client processes of their own, 32 requests in flight each. */
async function sinkCapacity(sink, count) {
  await sink.reset()
  const clients = [0, 1].map(() => trackChild(fork(join(BENCH, 'lib', 'http-loop.mjs'), [sink.url, String(count / 2), '32'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })))
  await Promise.all(clients.map((c) => new Promise((r) => c.once('message', r))))
  const m = await measured({ sink: sink.pid, client0: clients[0].pid, client1: clients[1].pid }, async () => {
    const done = clients.map((c) => new Promise((r) => c.once('message', r)))
    for (const c of clients) c.send('go')
    return Promise.all(done)
  })
  for (const c of clients) c.kill()
  return {
    requests_per_s: count / m.wall,
    sink_cpu_us: perDelivery(m.cpu.sink, count),
    // The sink is one thread: its ceiling on one free core.
    sink_ceiling_per_s: count / m.cpu.sink,
    sink_busy: Math.round((m.cpu.sink / m.wall) * 100) / 100,
    others_cores: m.others_cores,
  }
}

/** The baseline with Node's fetch (undici inside, keep-alive by default). */
async function fetchLoop(sink, bodies, parallel) {
  await pool(bodies.length, parallel, async (i) => {
    const r = await fetch(sink.url, { method: 'POST', body: bodies[i], headers: { 'content-type': 'application/json' } })
    await r.arrayBuffer()
  })
}

/** The baseline with node:http over a keep-alive Agent of `parallel` sockets. */
async function agentLoop(sink, bodies, parallel) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel })
  const url = new URL(sink.url)
  const one = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
        (res) => {
          res.resume()
          res.on('end', resolve)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  await pool(bodies.length, parallel, (i) => one(bodies[i]))
  agent.destroy()
}

async function plain(sink, bodies, parallel, loop) {
  await sink.reset()
  const m = await measured({ sink: sink.pid }, () => loop(sink, bodies, parallel))
  return {
    per_s: bodies.length / m.wall,
    client_cpu_us: perDelivery(m.cpu.bench, bodies.length),
    sink_cpu_us: perDelivery(m.cpu.sink, bodies.length),
    others_cores: m.others_cores,
  }
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
    const quiet = await waitQuiet(10_000)
    const load_before = loadavg()
    const t0 = now()
    const m = await measured({ relay: relay.pid, sink: sink.pid }, async () => {
      await api(relay.port, 'POST', '/v1/destinations/bench/resume')
      return arrived(sink, bodies.length)
    })
    const rate = bodies.length / ((m.value.last - t0) / 1000)
    const throughput = {
      deliveries_per_s: rate,
      relay_cpu_us: perDelivery(m.cpu.relay, bodies.length),
      sink_cpu_us: perDelivery(m.cpu.sink, bodies.length),
      others_cores: m.others_cores,
      quiet_before: quiet,
      load_before,
    }

    // Added latency at 1k/s offered, on the same relay (the backlog is delivered).
    await sink.reset()
    const acks = new Map()
    const errors = []
    const offered = 1000
    const seconds = 5
    const lm = await measured({ relay: relay.pid, sink: sink.pid }, async () => {
      const started = now()
      const inflight = []
      for (let i = 0; i < offered * seconds; i++) {
        const due = started + (i * 1000) / offered
        const wait = due - now()
        if (wait > 1) await new Promise((r) => setTimeout(r, wait))
        const { body } = makeBody(1_000_000 + i)
        inflight.push(
          post(relay.port, body).then(
            (a) => acks.set(a.seq, now()),
            (err) => errors.push(String(err.message ?? err)),
          ),
        )
      }
      await Promise.all(inflight)
      // A callback the relay refused (a sender starved of CPU on a busy machine: 408) is not delivered: not waited for.
      return arrived(sink, offered * seconds - errors.length)
    })
    const fin = await sink.stats(true)
    const added = []
    for (const [seq, at] of fin.arrivals) {
      const ack = acks.get(seq)
      if (ack !== undefined) added.push(at - ack)
    }
    added.sort((a, b) => a - b)
    const latency = {
      offered_per_s: offered,
      samples: added.length,
      arrived: lm.value.count,
      ingest_errors: errors.length,
      ingest_error_first: errors[0],
      p50_ms: percentile(added, 50),
      p99_ms: percentile(added, 99),
      // Deliveries that reached the sink before the sender had its 200 (the relay delivers on commit, the 200 follows it).
      before_ack: added.filter((x) => x < 0).length,
      relay_busy: Math.round((lm.cpu.relay / lm.wall) * 100) / 100,
      others_cores: lm.others_cores,
    }
    return { throughput, latency }
  } finally {
    senderAgent.destroy()
    senderAgent = new http.Agent({ keepAlive: true, maxSockets: 64 })
    await relay.stop()
  }
}

async function round(sink, bodies) {
  const out = { at: new Date().toISOString(), load_start: loadavg(), runs: [] }
  await waitQuiet(10_000)
  out.sink_alone = await sinkCapacity(sink, 40_000)
  console.error(
    `sink alone (2 client processes × 32): ${out.sink_alone.requests_per_s.toFixed(0)}/s, sink ${out.sink_alone.sink_cpu_us} µs CPU per request ` +
      `(one core: ${out.sink_alone.sink_ceiling_per_s.toFixed(0)}/s), sink busy ${out.sink_alone.sink_busy}, others ${out.sink_alone.others_cores} cores`,
  )
  for (const concurrency of [16, 1]) {
    const count = concurrency === 1 ? Math.min(N, 10_000) : N
    const some = bodies.slice(0, count)
    await waitQuiet(10_000)
    const fetchRun = await plain(sink, some, concurrency, fetchLoop)
    await waitQuiet(10_000)
    const agentRun = await plain(sink, some, concurrency, agentLoop)
    const relay = await relayDelivery(sink, concurrency, some)
    const row = { concurrency, events: count, fetch: fetchRun, agent: agentRun, relay: relay.throughput, latency_1k: relay.latency }
    out.runs.push(row)
    const r = row.relay
    console.error(
      `concurrency ${concurrency} (${count} events): relay ${r.deliveries_per_s.toFixed(0)}/s (${r.relay_cpu_us} µs relay + ${r.sink_cpu_us} µs sink CPU per delivery, others ${r.others_cores} cores) | ` +
        `http.Agent loop ${agentRun.per_s.toFixed(0)}/s (${agentRun.client_cpu_us} + ${agentRun.sink_cpu_us} µs) | fetch loop ${fetchRun.per_s.toFixed(0)}/s (${fetchRun.client_cpu_us} + ${fetchRun.sink_cpu_us} µs)\n` +
        `  added latency at 1k/s: p50 ${row.latency_1k.p50_ms.toFixed(2)} ms, p99 ${row.latency_1k.p99_ms.toFixed(2)} ms (${row.latency_1k.samples} samples, relay busy ${row.latency_1k.relay_busy}, others ${row.latency_1k.others_cores} cores)`,
    )
  }
  out.load_end = loadavg()
  return out
}

try {
  const sink = await startSink()
  const bodies = Array.from({ length: N }, (_, i) => makeBody(i).body)
  const results = { machine: machine(), at: new Date().toISOString(), events: N, rounds: [] }
  for (let i = 0; i < ROUNDS; i++) {
    if (ROUNDS > 1) console.error(`round ${i + 1} of ${ROUNDS}`)
    results.rounds.push(await round(sink, bodies))
  }
  sink.stop()
  // Medians over the rounds, per concurrency.
  const pick = (c, f) => median(results.rounds.map((r) => f(r.runs.find((x) => x.concurrency === c))))
  results.median = Object.fromEntries(
    [16, 1].map((c) => [
      `concurrency_${c}`,
      {
        relay_per_s: pick(c, (x) => x.relay.deliveries_per_s),
        agent_per_s: pick(c, (x) => x.agent.per_s),
        fetch_per_s: pick(c, (x) => x.fetch.per_s),
        relay_cpu_us: pick(c, (x) => x.relay.relay_cpu_us),
        sink_cpu_us: pick(c, (x) => x.relay.sink_cpu_us),
        latency_1k_p50_ms: pick(c, (x) => x.latency_1k.p50_ms),
        latency_1k_p99_ms: pick(c, (x) => x.latency_1k.p99_ms),
      },
    ]),
  )
  results.median.sink_alone_per_s = median(results.rounds.map((r) => r.sink_alone.requests_per_s))
  if (ROUNDS > 1) console.error(`medians: ${JSON.stringify(results.median)}`)
  writeFileSync(values.json, JSON.stringify(results, null, 2) + '\n')
  console.log(JSON.stringify(results))
} finally {
  cleanup()
}
