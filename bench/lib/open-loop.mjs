// Open-loop load generator: signed POSTs at a fixed offered rate, on keep-alive
// connections, with a hand-rolled HTTP/1.1 client (node:http costs several times
// more CPU per request, and the load generator shares the 2 cores with the server).
//
// Latency is measured from the moment a request became due (the generator's 1 ms
// tick that scheduled it), not from when a connection was free to send it, so a
// stalled server cannot hide its queueing (no coordinated omission); the tick's
// own lateness (the generator's, not the server's) is left out.
// With `subscribers: N`, it also connects N WebSocket subscribers (after: latest)
// and measures end-to-end latency from the sender's 200 to each subscriber's receipt.
//
// Usage: node bench/lib/open-loop.mjs '{"port":8080,"rate":5000,"duration":10,"connections":64}'
import { connect } from 'node:net'
import WebSocket from 'ws'
import { makeBody, sign, HOST, PATH, TOKEN, percentile } from './common.mjs'

const o = { connections: 64, duration: 10, warmup: 1, size: 1024, subscribers: 0, ...JSON.parse(process.argv[2] ?? '{}') }
const total = Math.round(o.rate * o.duration)
const reqs = new Array(total)
const keys = new Array(total)
for (let i = 0; i < total; i++) {
  const { runId, body } = makeBody(i, o.size)
  keys[i] = runId
  const b = Buffer.from(body)
  reqs[i] = Buffer.concat([
    Buffer.from(
      `POST ${PATH} HTTP/1.1\r\nHost: ${HOST}:${o.port}\r\nContent-Type: application/json\r\nRunflow-Signature: ${sign(b)}\r\nContent-Length: ${b.length}\r\n\r\n`,
    ),
    b,
  ])
}

// --- subscribers (e2e latency) ---
const subs = []
const receipt = o.subscribers > 0 ? new Map() : undefined // runId -> [times]
async function openSubscribers() {
  const url = `ws://${HOST}:${o.port}/v1/stream`
  await Promise.all(
    Array.from({ length: o.subscribers }, () => new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false })
      ws.on('message', (data) => {
        const now = performance.now()
        const s = data.toString()
        if (s.startsWith('{"type":"event"')) {
          const k = s.indexOf('"key":"') + 7
          const key = s.slice(k, s.indexOf('"', k))
          const t = receipt.get(key)
          if (t) t.push(now)
          else receipt.set(key, [now])
        } else if (s.startsWith('{"type":"welcome"')) {
          ws.send(JSON.stringify({ type: 'subscribe', after: 'latest', sources: ['runflow'] }))
        } else if (s.startsWith('{"type":"subscribed"')) resolve()
      })
      ws.on('error', reject)
      subs.push(ws)
    })),
  )
}

// --- HTTP ---
const intended = new Float64Array(total)
const sentAt = new Float64Array(total)
const doneAt = new Float64Array(total)
const status = new Uint16Array(total)
let queued = 0
let completed = 0
let errors = 0
const queue = []
const idle = []
let start = 0

function makeConn() {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: HOST, port: o.port, noDelay: true })
    const c = { sock, cur: -1, buf: Buffer.alloc(0) }
    sock.on('connect', () => resolve(c))
    sock.on('error', (e) => {
      errors++
      if (start === 0) reject(e)
    })
    sock.on('data', (d) => onData(c, d))
  })
}

function onData(c, d) {
  c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d
  for (;;) {
    const he = c.buf.indexOf('\r\n\r\n')
    if (he < 0) return
    const head = c.buf.toString('latin1', 0, he)
    const m = /content-length:\s*(\d+)/i.exec(head)
    const len = m ? Number(m[1]) : 0
    if (c.buf.length < he + 4 + len) return
    const i = c.cur
    status[i] = Number(head.slice(9, 12))
    doneAt[i] = performance.now()
    completed++
    c.buf = c.buf.subarray(he + 4 + len)
    c.cur = -1
    if (queue.length) send(c, queue.shift())
    else idle.push(c)
    if (completed === total) finish()
  }
}

function send(c, i) {
  c.cur = i
  sentAt[i] = performance.now()
  c.sock.write(reqs[i])
}

function tick() {
  const now = performance.now()
  const due = Math.min(total, Math.floor(((now - start) / 1000) * o.rate) + 1)
  while (queued < due) {
    const i = queued++
    intended[i] = Math.max(now, start + (i / o.rate) * 1000)
    const c = idle.pop()
    if (c) send(c, i)
    else queue.push(i)
  }
  if (queued < total) setTimeout(tick, 1)
}

let finished = false
function finish() {
  if (finished) return
  finished = true
  setTimeout(report, o.subscribers > 0 ? 500 : 0)
}

function report() {
  const from = Math.floor(o.warmup * o.rate)
  const lat = []
  const svc = []
  let non2xx = 0
  let done = 0
  for (let i = from; i < total; i++) {
    if (doneAt[i] === 0) continue
    done++
    if (status[i] < 200 || status[i] > 299) non2xx++
    lat.push(doneAt[i] - intended[i])
    svc.push(doneAt[i] - sentAt[i])
  }
  lat.sort((a, b) => a - b)
  svc.sort((a, b) => a - b)
  const last = Math.max(...doneAt.subarray(from))
  const out = {
    offered: o.rate,
    achieved: done / ((last - intended[from]) / 1000),
    requests: done,
    unanswered: total - completed,
    p50: percentile(lat, 50),
    p90: percentile(lat, 90),
    p99: percentile(lat, 99),
    p999: percentile(lat, 99.9),
    max: lat.at(-1),
    service_p99: percentile(svc, 99),
    errors,
    non2xx,
  }
  if (o.slow !== undefined) {
    // when (s since start) the requests slower than `slow` ms were due: clustered = a stall
    out.slow = []
    for (let i = from; i < total; i++) if (doneAt[i] - intended[i] > o.slow) out.slow.push(Math.round(intended[i] - start) / 1000)
  }
  if (receipt) {
    const e2e = []
    const fromSend = []
    let missing = 0
    for (let i = from; i < total; i++) {
      const ts = receipt.get(keys[i])
      if (!ts || ts.length < o.subscribers) {
        missing += o.subscribers - (ts?.length ?? 0)
        if (!ts) continue
      }
      for (const t of ts) {
        e2e.push(t - doneAt[i])
        fromSend.push(t - sentAt[i])
      }
    }
    e2e.sort((a, b) => a - b)
    fromSend.sort((a, b) => a - b)
    out.e2e = {
      subscribers: o.subscribers,
      deliveries: e2e.length,
      missing,
      after_200_p50: percentile(e2e, 50),
      after_200_p99: percentile(e2e, 99),
      after_200_max: e2e.at(-1),
      after_send_p50: percentile(fromSend, 50),
      after_send_p99: percentile(fromSend, 99),
    }
    for (const ws of subs) ws.terminate()
  }
  console.log(JSON.stringify(out))
  process.exit(0)
}

if (o.subscribers > 0) await openSubscribers()
for (let i = 0; i < o.connections; i++) idle.push(await makeConn())
start = performance.now()
tick()
setTimeout(() => {
  if (!finished) {
    finished = true
    report()
  }
}, (o.duration + 15) * 1000).unref()
