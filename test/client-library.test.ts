// The `hookrelay/client` library against a real relay: iterator and handler modes,
// acks, reconnect and resume across a relay restart on the same data dir and port,
// epoch changes, fatal errors.
import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { Backoff, ClientError, subscribe, type StreamEvent } from '../src/client/index.js'
import { loadConfigText } from '../src/config/load.js'
import { fanoutExtension } from '../src/fanout/hub.js'
import { Relay } from '../src/relay.js'
import { sampleRunflowCallback } from '../src/sample.js'
import { TOKEN, postRunflow, silent, testConfigYaml, ingestDirect } from './helpers/relay.js'

interface TapLike {
  testdir(fixture?: unknown): string
  teardown(fn: () => unknown): void
}

/** A relay with the hub on `dir`, closed at teardown. */
async function startOn(t: TapLike, dir: string) {
  const config = loadConfigText(testConfigYaml(dir), '<test>', { env: {} })
  const relay = await Relay.start(config, { logger: silent, processMetrics: false, extensions: [fanoutExtension()] })
  t.teardown(() => relay.close())
  return { relay, base: `http://127.0.0.1:${relay.port}`, url: `ws://127.0.0.1:${relay.port}/v1/stream` }
}

/**
 * A stable loopback address in front of whichever relay is running, so a
 * client can reconnect to "the same relay" across a restart. (The relay's own
 * port cannot be rebound within TIME_WAIT after it closed connections: the
 * bundled uWS does not set SO_REUSEADDR.) No relay behind it: connections are
 * dropped at once, like a refused connect.
 */
async function frontDoor(t: TapLike): Promise<{ url: string; target: (port: number | undefined) => void }> {
  let target: number | undefined
  const open = new Set<Socket>()
  const server = createServer((down) => {
    if (target === undefined) {
      down.destroy()
      return
    }
    const up = connect(target, '127.0.0.1')
    open.add(down).add(up)
    down.pipe(up)
    up.pipe(down)
    const end = (): void => {
      down.destroy()
      up.destroy()
      open.delete(down)
      open.delete(up)
    }
    up.on('error', end).on('close', end)
    down.on('error', end).on('close', end)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of open) s.destroy()
    server.close()
  })
  const port = (server.address() as { port: number }).port
  return { url: `ws://127.0.0.1:${port}/v1/stream`, target: (p) => (target = p) }
}

async function post(base: string, n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const body = sampleRunflowCallback()
    ids.push(JSON.parse(body).run_id)
    const r = await postRunflow(base, body)
    if (r.status !== 200) throw new Error(`post answered ${r.status}`)
  }
  return ids
}

/** Resolves when `pred` holds, checked after each call of the returned `poke`. */
function until(pred: () => boolean): { poke: () => void; done: Promise<void> } {
  let resolve!: () => void
  const done = new Promise<void>((r) => (resolve = r))
  const poke = (): void => {
    if (pred()) resolve()
  }
  return { poke, done }
}

const fast = { initialMs: 10, maxMs: 100 }

t.test('async iterator: typed events in order; the last one counts as processed once the next is pulled', async (t) => {
  const { base, url } = await startOn(t, t.testdir())
  const ids = await post(base, 5)
  const sub = subscribe<{ run_id: string; status: string }>({ url, token: TOKEN, after: 0, backoff: fast })
  t.teardown(() => sub.close())
  const got: StreamEvent<{ run_id: string; status: string }>[] = []
  for await (const e of sub) {
    got.push(e)
    if (got.length === 5) break
  }
  t.same(
    got.map((e) => [e.seq, e.key, e.body.run_id, e.body.status, e.source, e.event, e.revision]),
    ids.map((id, i) => [i + 1, id, id, 'succeeded', 'runflow', 'run.completed', 1]),
  )
  t.equal(sub.lastProcessed, 4, 'breaking out does not count the last event as processed')
  await sub.done
  t.match(sub.epoch, /^[0-9a-f]{16}$/)
})

t.test('handler mode with a consumer: acks after the handler resolves, resumes after the ack', async (t) => {
  const { base, url } = await startOn(t, t.testdir())
  await post(base, 10)
  const seen: number[] = []
  const w = until(() => seen.length === 10)
  const sub = subscribe({
    url,
    token: TOKEN,
    consumer: 'mailer',
    backoff: fast,
    handler: async (e) => {
      await new Promise((r) => setImmediate(r))
      seen.push(e.seq)
      w.poke()
    },
  })
  t.teardown(() => sub.close())
  await w.done
  await sub.close()
  await sub.done
  t.same(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

  // The relay resumes the consumer after its last ack.
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.teardown(() => ws.terminate())
  await once(ws, 'message')
  ws.send('{"type":"subscribe","consumer":"mailer"}')
  const [frame] = await once(ws, 'message')
  t.match(JSON.parse(String(frame)), { type: 'subscribed', after: 10 })
})

t.test('reconnects and resumes across a relay restart on the same data dir and address: no loss, no duplicates', async (t) => {
  const dir = t.testdir()
  const door = await frontDoor(t)
  const first = await startOn(t, dir)
  door.target(first.relay.port)
  await post(first.base, 30)

  const bySub: Record<string, number[]> = { consumer: [], position: [] }
  const w = until(() => bySub.consumer!.length >= 60 && bySub.position!.length >= 60)
  const slowHandler = (name: string) => async (e: StreamEvent) => {
    // Slow enough that events are queued client-side when the relay goes away.
    await new Promise((r) => setImmediate(r))
    bySub[name]!.push(e.seq)
    w.poke()
  }
  const consumer = subscribe({ url: door.url, token: TOKEN, consumer: 'restart', backoff: fast, handler: slowHandler('consumer') })
  t.teardown(() => consumer.close())
  const position = subscribe({ url: door.url, token: TOKEN, after: 0, backoff: fast, handler: slowHandler('position') })
  t.teardown(() => position.close())
  const disconnects: number[] = []
  consumer.on('disconnected', (d) => disconnects.push(d.code))
  let resubscribed = 0
  consumer.on('subscribed', (s) => {
    if (s.reconnects > 0) resubscribed++
  })

  await once(consumer, 'live')
  await once(position, 'live').catch(() => undefined)
  await post(first.base, 10) // some of these are still queued when the relay closes
  door.target(undefined)
  await first.relay.close()
  if (!disconnects.includes(1001)) await once(consumer, 'disconnected')
  t.ok(disconnects.includes(1001), `the client saw 1001 (${disconnects.join(',')})`)
  // A few refused attempts while nothing runs.
  while (disconnects.length < 3) await once(consumer, 'disconnected')

  const second = await startOn(t, dir)
  door.target(second.relay.port)
  await post(second.base, 20)
  await w.done
  t.same(bySub.consumer, Array.from({ length: 60 }, (_, i) => i + 1), 'consumer: 1..60 once each, in order')
  t.same(bySub.position, Array.from({ length: 60 }, (_, i) => i + 1), 'position: 1..60 once each, in order')
  t.ok(resubscribed >= 1, 'resubscribed after the restart')
  await consumer.close() // waits for the running handler
  t.equal(consumer.lastProcessed, 60)
})

t.test('epoch change: an error by default, a restart from seq 0 when asked', async (t) => {
  const door = await frontDoor(t)
  const a = await startOn(t, t.testdir())
  door.target(a.relay.port)
  await post(a.base, 3)
  const strict = subscribe({ url: door.url, token: TOKEN, after: 0, backoff: fast, handler: () => undefined })
  t.teardown(() => strict.close())
  const got: number[] = []
  const w = until(() => got.length === 5)
  const lenient = subscribe({
    url: door.url,
    token: TOKEN,
    after: 0,
    backoff: fast,
    onEpochChange: 'restart',
    handler: (e) => {
      got.push(e.seq)
      w.poke()
    },
  })
  t.teardown(() => lenient.close())
  await Promise.all([once(strict, 'live'), once(lenient, 'live')])
  const oldEpoch = a.relay.journal.epoch
  const epochSeen = once(lenient, 'epoch')
  await a.relay.close()

  // A new journal (another data dir) behind the same address.
  const b = await startOn(t, t.testdir())
  door.target(b.relay.port)
  const err = await strict.done.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof ClientError)
  t.match(err, { code: 'HOOKRELAY_CLIENT_EPOCH_CHANGED', details: { previous: oldEpoch, current: b.relay.journal.epoch } })
  const [change] = (await epochSeen) as [{ previous: string; current: string }]
  t.same(change, { previous: oldEpoch, current: b.relay.journal.epoch })
  await post(b.base, 2)
  await w.done
  t.same(got, [1, 2, 3, 1, 2], 'the new journal from its start')
})

t.test('fatal: a bad token stops at once (HTTP 401, no reconnect); a handler throw stops unacked', async (t) => {
  const { base, url } = await startOn(t, t.testdir())
  const bad = subscribe({ url, token: 'nope', backoff: fast })
  let retried = false
  bad.on('disconnected', () => (retried = true))
  const e1 = await bad.done.catch((e: unknown) => e)
  t.match(e1, { code: 'HOOKRELAY_CLIENT_UNAUTHORIZED', details: { status: 401 } })
  t.notOk(retried)

  await post(base, 3)
  const failing = subscribe({
    url,
    token: TOKEN,
    consumer: 'failing',
    backoff: fast,
    handler: (e) => {
      if (e.seq === 3) throw new Error('boom')
    },
  })
  const e2 = await failing.done.catch((e: unknown) => e)
  t.match(e2, { code: 'HOOKRELAY_CLIENT_HANDLER_FAILED', details: { seq: 3 } })
  t.equal((e2 as Error).cause instanceof Error && ((e2 as Error).cause as Error).message, 'boom')
  t.equal(failing.lastProcessed, 2)
  // Not acked: the consumer resumes at 3 (acks of 1 and 2 were stored when it closed).
  const again = subscribe({ url, token: TOKEN, consumer: 'failing', backoff: fast })
  t.teardown(() => again.close())
  for await (const e of again) {
    t.equal(e.seq, 3, 'redelivered')
    break
  }
})

t.test('iterator errors: forbidden source, cursor ahead, consumer taken over', async (t) => {
  const { base, url } = await startOn(t, t.testdir())
  await post(base, 1)
  const forbidden = subscribe({ url, token: 'hr_test_token_github_only', sources: ['runflow'], backoff: fast })
  await t.rejects(
    (async () => {
      for await (const _ of forbidden) void _
    })(),
    { code: 'HOOKRELAY_CLIENT_FORBIDDEN' },
  )
  const ahead = subscribe({ url, token: TOKEN, after: 50, backoff: fast })
  await t.rejects(ahead.done, { code: 'HOOKRELAY_CLIENT_CURSOR_AHEAD' })

  const one = subscribe({ url, token: TOKEN, consumer: 'solo', backoff: fast })
  await once(one, 'live')
  const two = subscribe({ url, token: TOKEN, consumer: 'solo', backoff: fast })
  t.teardown(() => two.close())
  await t.rejects(one.done, { code: 'HOOKRELAY_CLIENT_CONSUMER_REPLACED' })
  await once(two, 'live')
})

t.test('close() and AbortSignal stop cleanly; a paused socket resumes under a slow iterator', async (t) => {
  const { relay, url } = await startOn(t, t.testdir())
  const ac = new AbortController()
  const sub = subscribe({ url, token: TOKEN, after: 'latest', signal: ac.signal, backoff: fast })
  await once(sub, 'live')
  ac.abort()
  await sub.done
  t.notOk(sub.connected)

  // 3000 events through a 50-event client buffer: the socket pauses and resumes.
  await Promise.all(Array.from({ length: 3000 }, (_, i) => ingestDirect(relay, `p${i}`)))
  const slow = subscribe({ url, token: TOKEN, after: 0, highWater: 50, backoff: fast })
  t.teardown(() => slow.close())
  let expect = 1
  for await (const e of slow) {
    if (e.seq !== expect) break
    if (expect % 500 === 0) await new Promise((r) => setTimeout(r, 5))
    if (expect++ === 3000) break
  }
  t.equal(expect, 3001, 'all 3000 in order')
})

t.test('Backoff: full jitter under an exponential cap, reset after success', async (t) => {
  const top = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.999999)
  t.same([top.next(), top.next(), top.next(), top.next(), top.next()], [99, 199, 399, 799, 999])
  top.reset()
  t.equal(top.attempt, 0)
  t.equal(top.next(), 99)
  const low = new Backoff({}, () => 0)
  t.equal(low.next(), 0, 'full jitter reaches 0')
  const b = new Backoff({ initialMs: 10, maxMs: 50 })
  for (let i = 0; i < 100; i++) {
    const d = b.next()
    t.ok(d >= 0 && d < 50)
    if (d >= 50) break
  }
  t.throws(() => subscribe({ url: '', token: '' }), { code: 'HOOKRELAY_CLIENT_USAGE' })
})

t.test('which endings are final: close codes, HTTP statuses, error frames', async (t) => {
  const { fatalClose, fatalErrorFrame } = await import('../src/client/fatal.js')
  for (const code of [1000, 1001, 1006, 1011, 4008]) t.equal(fatalClose(code, '', undefined, undefined), undefined, `close ${code}: reconnect`)
  for (const status of [408, 429, 500, 503]) t.equal(fatalClose(1006, '', status, undefined), undefined, `HTTP ${status}: reconnect`)
  t.match(fatalClose(4410, 'cursor expired', undefined, undefined), { code: 'HOOKRELAY_CLIENT_CURSOR_EXPIRED', message: /close 4410: cursor expired/ })
  t.match(fatalClose(4400, '', undefined, undefined), { code: 'HOOKRELAY_CLIENT_PROTOCOL' })
  t.match(fatalClose(1006, '', 403, undefined), { code: 'HOOKRELAY_CLIENT_FORBIDDEN', details: { status: 403 } })
  t.match(fatalClose(1006, '', 404, undefined), { code: 'HOOKRELAY_CLIENT_PROTOCOL', details: { status: 404 } })
  t.match(fatalErrorFrame({ type: 'error', code: 'cursor_expired', earliest: 10 }), {
    code: 'HOOKRELAY_CLIENT_CURSOR_EXPIRED',
    message: /after: 9/,
    details: { earliest: 10 },
  })
  t.equal(fatalErrorFrame({ type: 'error', code: 'ack_ahead' }), undefined)
})

t.test('a refused upgrade is judged by its HTTP status: 429 is retried until there is room, 401 stops', async (t) => {
  const dir = t.testdir()
  const config = loadConfigText(testConfigYaml(dir, 'stream: { max_connections_per_ip: 1 }'), '<test>', { env: {} })
  const relay = await Relay.start(config, { logger: silent, processMetrics: false, extensions: [fanoutExtension()] })
  t.teardown(() => relay.close())
  const url = `ws://127.0.0.1:${relay.port}/v1/stream`
  const holder = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.teardown(() => holder.terminate())
  await once(holder, 'open')

  const sub = subscribe({ url, token: TOKEN, after: 'latest', backoff: { initialMs: 10, maxMs: 50 } })
  t.teardown(() => sub.close())
  const [refused] = (await once(sub, 'disconnected')) as [{ code: number; reason: string }]
  t.match(refused, { code: 1006, reason: /429/ }, 'the address is full: a 429, not fatal')
  holder.close()
  await once(sub, 'subscribed')
  t.ok(sub.connected, 'in once the holder left')

  const bad = subscribe({ url, token: 'nope', backoff: { initialMs: 10, maxMs: 50 } })
  t.match(await bad.done.catch((e: unknown) => e), { code: 'HOOKRELAY_CLIENT_UNAUTHORIZED', details: { status: 401 } })

  const { fatalClose } = await import('../src/client/fatal.js')
  t.equal(fatalClose(1013, 'too many stream connections from this address', undefined, undefined), undefined, 'close 1013 (frame auth past the cap): reconnect')
})
