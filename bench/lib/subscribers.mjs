// WebSocket subscribers in their own process (never in the relay's), driven over IPC.
// Speaks protocol v1 with the `ws` package directly; counts event frames from the
// first bytes only (no JSON.parse per event), so the counter costs as little as possible.
//
// Usage (forked): subscribers.mjs '{"port":8080,"n":10,"after":"latest","mode":"count"|"stall"}'
//   → sends {type:'ready'} once every subscriber is `subscribed`;
//   ← {type:'start'} resets the counters, ← {type:'stop'} answers {type:'counts', events, seconds}.
//   mode "count" with after: 0 also answers {type:'live', events, seconds, head} when the
//   subscriber reaches the head (catch-up replay).
//   mode "stall": subscribes, then pauses its socket and never reads again.
import WebSocket from 'ws'
import { HOST, TOKEN } from './common.mjs'

const o = { n: 1, after: 'latest', mode: 'count', ...JSON.parse(process.argv[2] ?? '{}') }
const send = (m) => process.send?.(m)
let events = 0
let windowStart = performance.now()
let subscribedAt = 0
let subscribed = 0
let head = 0
const socks = []

const E = 0x65 // 'e' at byte 9: "event" or "error"
const V = 0x76 // 'v' at byte 10: "event"
const L = 0x6c // 'l' at byte 9: "live"

for (let i = 0; i < o.n; i++) {
  const ws = new WebSocket(`ws://${HOST}:${o.port}/v1/stream`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
  })
  socks.push(ws)
  ws.on('message', (data) => {
    const b9 = data[9]
    if (b9 === E && data[10] === V) {
      events++
      return
    }
    const s = data.toString()
    if (s.startsWith('{"type":"welcome"')) {
      head = Math.max(head, JSON.parse(s).head)
      if (o.mode === 'count' && o.after === 0) subscribedAt = performance.now()
      ws.send(JSON.stringify({ type: 'subscribe', after: o.after, sources: ['runflow'] }))
    } else if (s.startsWith('{"type":"subscribed"')) {
      if (o.mode === 'stall') ws._socket.pause()
      if (++subscribed === o.n) send({ type: 'ready', head })
    } else if (b9 === L && o.after === 0) {
      send({ type: 'live', events, seconds: (performance.now() - subscribedAt) / 1000, head })
    } else if (s.startsWith('{"type":"error"')) {
      send({ type: 'error', frame: s })
    }
  })
  ws.on('close', (code, reason) => send({ type: 'closed', code, reason: String(reason) }))
  ws.on('error', (err) => send({ type: 'error', message: err.message }))
}

process.on('message', (m) => {
  if (m.type === 'start') {
    events = 0
    windowStart = performance.now()
  } else if (m.type === 'stop') {
    send({ type: 'counts', events, seconds: (performance.now() - windowStart) / 1000 })
  } else if (m.type === 'exit') {
    for (const ws of socks) ws.terminate()
    process.exit(0)
  }
})
