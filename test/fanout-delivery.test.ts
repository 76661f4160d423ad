// Black-box delivery guarantees of /v1/stream: random disconnect schedules, bursts
// to many subscribers, a stalled subscriber, durable consumers across reconnects.
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import WebSocket from 'ws'
import { fanoutExtension, type Hub } from '../src/fanout/hub.js'
import type { Relay } from '../src/relay.js'
import { TOKEN, startTestRelay, ingestDirect } from './helpers/relay.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

async function startHub(t: TapLike, opts: { extra?: string; dir?: string } = {}) {
  const { relay, base, dir } = await startTestRelay(t, {
    dir: opts.dir,
    extra: opts.extra,
    relay: { extensions: [fanoutExtension()] },
  })
  return { relay, base, dir, hub: relay.component<Hub>('hub')!, url: `ws://127.0.0.1:${relay.port}/v1/stream` }
}

let keyN = 0
/** Journals `n` events directly (bulk, one group commit); returns the last seq. */
async function ingest(relay: Relay, n: number, opts: { source?: string; pad?: number } = {}): Promise<number> {
  const source = opts.source ?? 'runflow'
  const pad = 'x'.repeat(opts.pad ?? 0)
  const all: Array<Promise<{ seq: number }>> = []
  for (let i = 0; i < n; i++) {
    const key = `k${++keyN}`
    all.push(ingestDirect(relay, key, { source, body: `{"event":"run.completed","run_id":"${key}","pad":"${pad}"}` }))
  }
  const r = await Promise.all(all)
  return r[r.length - 1]?.seq ?? relay.journal.head
}

/** mulberry32: a small seeded PRNG so that a failing schedule can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) }
}

/** What one connection of a subscriber saw. */
interface ConnLog {
  /** Where the relay said it starts (`subscribed.after`). */
  after: number
  /** The least `after` that is right: the position asked for, or the consumer's last ack known to be taken. */
  minAfter: number
  seqs: number[]
}

/**
 * Checks one subscriber's connections: each is gapless and ordered from its
 * `after`, which is where it should resume; duplicates only as the first
 * events of a connection (what earlier ones already had); together they
 * cover 1..total.
 */
function checkDelivery(t: { same: (a: unknown, b: unknown, m: string) => unknown }, name: string, conns: ConnLog[], total: number): void {
  let seen = 0
  let gaps = 0
  let reorders = 0
  let lateDuplicates = 0
  let wrongResume = 0
  let duplicates = 0
  const got = new Set<number>()
  for (const c of conns) {
    if (c.after < c.minAfter || c.after > seen) wrongResume++
    let prev = c.after
    let fresh = false
    for (const s of c.seqs) {
      if (s < prev + 1) reorders++
      else if (s > prev + 1) gaps++
      if (got.has(s)) {
        duplicates++
        if (fresh) lateDuplicates++
      } else fresh = true
      got.add(s)
      prev = s
    }
    seen = Math.max(seen, prev)
  }
  let lost = 0
  for (let s = 1; s <= total; s++) if (!got.has(s)) lost++
  t.same(
    { lost, gaps, reorders, lateDuplicates, wrongResume },
    { lost: 0, gaps: 0, reorders: 0, lateDuplicates: 0, wrongResume: 0 },
    `${name}: ${conns.length} connections, ${duplicates} duplicates, all right after reconnects`,
  )
}

t.test('delivery checker: random disconnect/reconnect schedules lose, skip and reorder nothing', async (t) => {
  for (const seed of [1, 2, 3]) {
    await t.test(`seed ${seed}`, async (t) => {
      const { relay, url } = await startHub(t, { extra: 'stream: { max_inflight: 40 }' })
      const rng = prng(seed)
      const total = 3000
      let produced = 0
      const producer = (async () => {
        while (produced < total) {
          const n = Math.min(total - produced, rng.int(1, 60))
          await ingest(relay, n)
          produced += n
          if (rng.next() < 0.3) await new Promise((r) => setImmediate(r))
        }
      })()

      const maxBehind = 5
      // Three kinds: resume from a client-side position (behind what was received,
      // to force duplicates); ack:true with max_inflight; a durable consumer the relay resumes.
      const kinds = ['position', 'position', 'acking', 'consumer'] as const
      const results = await Promise.all(
        kinds.map(async (kind, i) => {
          const r = prng(seed * 100 + i)
          const conns: ConnLog[] = []
          let received = 0
          let processed = 0
          let ackTaken = 0
          while (received < total) {
            const budget = r.int(1, 700)
            const abrupt = r.next() < 0.5
            const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } })
            const log: ConnLog = { after: -1, minAfter: kind === 'consumer' ? ackTaken : 0, seqs: [] }
            conns.push(log)
            let lastAck = 0
            let stopped = false
            await new Promise<void>((resolve) => {
              ws.on('message', (data) => {
                const f = JSON.parse(String(data))
                if (f.type === 'welcome') {
                  const sub: Record<string, unknown> = { type: 'subscribe' }
                  if (kind === 'consumer') Object.assign(sub, { consumer: `c${seed}`, ack: true })
                  else sub.after = log.minAfter = Math.max(0, processed - r.int(0, maxBehind))
                  if (kind === 'acking') sub.ack = true
                  ws.send(JSON.stringify(sub))
                } else if (f.type === 'subscribed') {
                  log.after = f.after
                } else if (f.type === 'event') {
                  log.seqs.push(f.seq)
                  received = Math.max(received, f.seq)
                  processed = f.seq
                  // Acks lag a little behind, like an application's would.
                  if (stopped) return
                  if ((kind === 'acking' || kind === 'consumer') && f.seq % 7 === 0) {
                    const seq = Math.max(log.after, f.seq - r.int(0, 3))
                    ws.send(JSON.stringify({ type: 'ack', seq }))
                    lastAck = Math.max(lastAck, seq)
                  }
                  const stop = received >= total || log.seqs.length >= budget
                  stopped = stop
                  if (stop && (received >= total || !abrupt)) {
                    // An ack sent before a clean close is taken; one before a terminate may be lost.
                    ackTaken = Math.max(ackTaken, lastAck)
                    ws.close()
                  } else if (stop) ws.terminate()
                }
              })
              ws.on('close', () => resolve())
              ws.on('error', () => undefined)
            })
          }
          return { kind, conns }
        }),
      )
      await producer
      for (const [i, r] of results.entries()) {
        // A consumer resumes from its last ack: up to 7 + 3 events behind what it received.
        checkDelivery(t, `subscriber ${i} (${r.kind})`, r.conns, total)
        t.ok(r.conns.length > 1, `subscriber ${i} reconnected ${r.conns.length - 1} times`)
      }
    })
  }
})

t.test('10 subscribers each get all of a 5k-event burst, each event encoded once', async (t) => {
  const { relay, url, hub } = await startHub(t)
  await ingest(relay, 10)
  const subs = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } })
      t.teardown(() => ws.terminate())
      const seqs: number[] = []
      let onLive!: () => void
      const live = new Promise<void>((r) => (onLive = r))
      let onAll!: () => void
      const all = new Promise<void>((r) => (onAll = r))
      ws.on('message', (data) => {
        const f = JSON.parse(String(data))
        if (f.type === 'welcome') ws.send('{"type":"subscribe","after":"latest"}')
        else if (f.type === 'live') onLive()
        else if (f.type === 'event') {
          seqs.push(f.seq)
          if (seqs.length === 5000) onAll()
        }
      })
      await live
      return { seqs, all }
    }),
  )
  const encodedBefore = hub.framesEncoded
  const started = Date.now()
  await ingest(relay, 5000)
  await Promise.all(subs.map((s) => s.all))
  const ms = Date.now() - started
  for (const [i, s] of subs.entries()) {
    t.same(s.seqs, Array.from({ length: 5000 }, (_, k) => 11 + k), `subscriber ${i}: 11..5010 in order`)
  }
  t.ok(hub.framesEncoded - encodedBefore <= 5000, `frames encoded: ${hub.framesEncoded - encodedBefore} for 5000 events × 10 subscribers`)
  t.comment(`burst of 5000 to 10 subscribers: ${ms} ms (${Math.round(50000 / (ms / 1000))} deliveries/s, journaling included)`)
})

/** Anonymous resident memory (heap, malloc, uWS buffers), without LMDB's file-backed mapped pages. */
function rssAnon(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss
}

function gc(): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

t.test('a subscriber that stops reading while 20k events arrive keeps memory bounded, then catches up', async (t) => {
  const { relay, base, url } = await startHub(t)
  const total = 20_000
  const pad = Number(process.env.PAD ?? 2000)
  const frameMiB = (total * (pad + 60)) / 2 ** 20
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1)
  const journal20k = async (): Promise<{ growth: number; peak: number; total: number }> => {
    gc()
    const before = rssAnon()
    const beforeTotal = process.memoryUsage().rss
    let peak = before
    for (let done = 0; done < total; done += 500) {
      await ingest(relay, 500, { pad })
      peak = Math.max(peak, rssAnon())
    }
    gc()
    return { growth: rssAnon() - before, peak: peak - before, total: process.memoryUsage().rss - beforeTotal }
  }
  // Control: the same 20k events with nobody subscribed (LMDB, allocator and heap warm up here).
  const control = await journal20k()

  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.teardown(() => ws.terminate())
  const seqs: number[] = []
  let live = 0
  let onLive!: () => void
  const firstLive = new Promise<void>((r) => (onLive = r))
  let onAll!: () => void
  const all = new Promise<void>((r) => (onAll = r))
  ws.on('message', (data) => {
    const f = JSON.parse(String(data))
    if (f.type === 'welcome') ws.send('{"type":"subscribe","after":"latest"}')
    else if (f.type === 'live') {
      live++
      onLive()
    } else if (f.type === 'event') {
      seqs.push(f.seq)
      if (seqs.length === total) onAll()
    }
  })
  await firstLive
  ws.pause()
  const stalled = await journal20k()

  const metrics = await (await fetch(`${base}/metrics`)).text()
  const buffered = Number(/hookrelay_stream_buffered_bytes (\d+)/.exec(metrics)?.[1])
  t.comment(
    `20k events × ${pad + 60} B (${frameMiB.toFixed(1)} MiB of frames): anonymous RSS growth after GC ${mib(control.growth)} MiB with no subscriber, ` +
      `${mib(stalled.growth)} MiB with a subscriber reading nothing (peaks +${mib(control.peak)} / +${mib(stalled.peak)} MiB); ` +
      `total RSS incl. LMDB's mapped file pages +${mib(control.total)} / +${mib(stalled.total)} MiB; server-buffered for it: ${buffered} B`,
  )
  t.ok(buffered <= 1024 * 1024 + 4096, `uWS holds at most high_water (1 MiB) + one frame for it (${buffered} B)`)
  // Bound: the shared frame cache (16 MiB) + high_water (1 MiB) + one page (256 KiB) + noise; buffering every frame would need the whole ${frameMiB} MiB.
  t.ok(stalled.growth < 24 * 2 ** 20, `anonymous RSS growth with the stalled subscriber ${mib(stalled.growth)} MiB < 24 MiB (frames: ${frameMiB.toFixed(1)} MiB)`)

  ws.resume()
  await all
  let gaps = 0
  for (let i = 0; i < seqs.length; i++) if (seqs[i] !== total + i + 1) gaps++
  t.equal(gaps, 0, 'caught up with every event in order, no gap')
  t.equal(live, 1, 'live sent once')
})

t.test('durable consumer: ack, reconnect, resume after the ack; across a relay restart too', async (t) => {
  const { relay, url, dir } = await startHub(t)
  await ingest(relay, 20)
  const run = async (u: string, stopAfter: number, ackAt: number) => {
    const ws = new WebSocket(u, { headers: { authorization: `Bearer ${TOKEN}` } })
    t.teardown(() => ws.terminate())
    const seqs: number[] = []
    let after = -1
    await new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        const f = JSON.parse(String(data))
        if (f.type === 'welcome') ws.send('{"type":"subscribe","consumer":"billing","ack":true}')
        else if (f.type === 'subscribed') after = f.after
        else if (f.type === 'event' && seqs.length < stopAfter) {
          seqs.push(f.seq)
          if (f.seq === ackAt) ws.send(JSON.stringify({ type: 'ack', seq: ackAt }))
          if (seqs.length === stopAfter) ws.close()
        }
      })
      ws.on('close', () => resolve())
    })
    return { after, seqs }
  }
  const first = await run(url, 10, 7)
  t.equal(first.after, 0, 'a new consumer starts at 0')
  t.same(first.seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  const second = await run(url, 5, 12)
  t.equal(second.after, 7, 'resumes after its last ack, not after what it received')
  t.same(second.seqs, [8, 9, 10, 11, 12])
  await relay.close()
  const again = await startHub(t, { dir })
  t.equal((await again.relay.journal.getCursor('app/billing'))?.seq, 12, 'acks stored on close')
  const third = await run(again.url, 8, 0)
  t.equal(third.after, 12)
  t.same(third.seqs, [13, 14, 15, 16, 17, 18, 19, 20])
})
