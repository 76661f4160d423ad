// Unit tests for the fan-out parts that a black-box run cannot steer
// deterministically: the pump against a scripted socket, frame parsing, the
// shared frame cache, event globs, consumer ack batching, connection limits.
import t from 'tap'
import { ConnectionLimits, MAX_UNAUTHENTICATED, MAX_UNAUTHENTICATED_PER_ADDRESS } from '../src/fanout/connection-limits.js'
import { ConsumerCursors } from '../src/fanout/consumer-cursors.js'
import { BadFrame, parseClientFrame } from '../src/fanout/client-frame-parser.js'
import { eventMatcher, globMatch } from '../src/fanout/event-glob.js'
import { encodeEventFrame, errorFrame, type EventFrame } from '../src/fanout/frame-encoder.js'
import { RecentFrames } from '../src/fanout/recent-frames.js'
import { Subscriber, type PumpContext, type SocketData } from '../src/fanout/subscriber.js'
import type { JournalPort } from '../src/journal/port.js'
import { encodeEvent, decodeEvent } from '../src/journal/record.js'
import type { WebSocket } from '../src/http/uws.js'
import { silent } from './helpers/relay.js'

function frame(seq: number, opts: { source?: string; event?: string; size?: number } = {}): EventFrame {
  const bytes = Buffer.alloc(opts.size ?? 100, ' ')
  bytes.write(`"seq":${seq}`)
  return { seq, source: opts.source ?? 'runflow', event: opts.event ?? 'run.completed', bytes }
}

/** A uWS socket whose buffered amount the test scripts. */
class FakeSocket {
  buffered = 0
  /** Bytes each send adds to the buffer (the kernel took nothing). */
  sticky = false
  sendStatus = 1
  sent: Array<string | number> = []
  ended: [number, string] | undefined
  cork(fn: () => void): this {
    fn()
    return this
  }
  getBufferedAmount(): number {
    return this.buffered
  }
  send(m: string | Buffer): number {
    if (typeof m === 'string') this.sent.push(m)
    else {
      this.sent.push(Number(/"seq":(\d+)/.exec(m.toString())?.[1] ?? -1))
      if (this.sticky) this.buffered += m.length
    }
    return this.sendStatus
  }
  end(code: number, reason: string): void {
    this.ended = [code, reason]
  }
}

function setup(frames: EventFrame[], over: Partial<PumpContext> = {}) {
  const calls = { reschedule: 0, slow: 0, skipped: 0, sent: 0 }
  const byseq = new Map(frames.map((f) => [f.seq, f]))
  const head = frames.length > 0 ? frames[frames.length - 1]!.seq : 0
  const ctx: PumpContext = {
    head: () => head,
    earliest: () => frames[0]?.seq ?? 1,
    page: (after, limit) => {
      const out: EventFrame[] = []
      for (let s = after + 1; s <= head && out.length < limit; s++) {
        const f = byseq.get(s)
        if (!f) return out.length > 0 ? out : null
        out.push(f)
      }
      return out
    },
    highWater: 1000,
    hardLimit: 4000,
    maxInflight: 1000,
    reschedule: () => void calls.reschedule++,
    resume: () => undefined,
    readFailed: () => undefined,
    sent: (n) => void (calls.sent += n),
    skipped: () => void calls.skipped++,
    slowConsumer: () => void calls.slow++,
    ...over,
  }
  const ws = new FakeSocket()
  const sub = new Subscriber(1, '127.0.0.1', { name: 'app', sources: null, role: 'reader' })
  sub.attach(ws as unknown as WebSocket<SocketData>)
  return { ctx, ws, sub, calls }
}

const range = (a: number, b: number, f: (s: number) => EventFrame = (s) => frame(s)) =>
  Array.from({ length: b - a + 1 }, (_, i) => f(a + i))

t.test('pump: sends in order up to high_water, waits for drain, then continues; live once at the head', async (t) => {
  const { ctx, ws, sub } = setup(range(1, 30))
  ws.sticky = true
  sub.start(0, { ack: false, sources: null, matchEvent: null })
  sub.pump(ctx)
  t.same(ws.sent, range(1, 10).map((f) => f.seq), 'stops once 1000 bytes are buffered')
  t.ok(sub.waitingDrain)
  ws.buffered = 0
  sub.drain(ctx.highWater)
  ws.sticky = false
  sub.pump(ctx)
  t.same(ws.sent.slice(10), [...range(11, 30).map((f) => f.seq), '{"type":"live","seq":30}'])
  sub.pump(ctx)
  t.equal(ws.sent.length, 31, 'live is sent once')
})

t.test('pump: past hard_limit (or a frame uWS dropped) the subscriber is a slow consumer', async (t) => {
  const a = setup(range(1, 5, (s) => frame(s, { size: 3500 })))
  a.ws.sticky = true
  a.ws.buffered = 900 // under high_water, so the pump sends
  a.sub.start(0, { ack: false, sources: null, matchEvent: null })
  a.sub.pump(a.ctx)
  t.equal(a.calls.slow, 1, '900 + 3500 > hard_limit 4000')
  t.same(a.ws.sent, [1])

  const b = setup(range(1, 5, (s) => frame(s, { size: 5000 })))
  b.ws.sticky = true
  b.sub.start(0, { ack: false, sources: null, matchEvent: null })
  b.sub.pump(b.ctx)
  t.equal(b.calls.slow, 0, 'one frame bigger than hard_limit into an empty buffer goes through')
  t.same(b.ws.sent, [1])

  const c = setup(range(1, 5))
  c.ws.sendStatus = 2
  c.sub.start(0, { ack: false, sources: null, matchEvent: null })
  c.sub.pump(c.ctx)
  t.equal(c.calls.slow, 1, 'a dropped frame ends the stream')
})

t.test('pump: max_inflight with ack:true, resumes on ack; ack_ahead and stale acks', async (t) => {
  const { ctx, ws, sub } = setup(range(1, 10), { maxInflight: 3 })
  sub.start(0, { ack: true, sources: null, matchEvent: null })
  sub.pump(ctx)
  t.same(ws.sent, [1, 2, 3])
  t.equal(sub.inflight, 3)
  t.equal(sub.applyAck(4), 'ahead')
  t.equal(sub.applyAck(0), 'stale')
  t.equal(sub.applyAck(2), 'ok')
  t.equal(sub.inflight, 1)
  sub.pump(ctx)
  t.same(ws.sent, [1, 2, 3, 4, 5])
  t.equal(sub.applyAck(5), 'ok')
  t.equal(sub.inflight, 0)
})

t.test('pump: budget per run, then rescheduled; filters skip and let a consumer’s position pass them', async (t) => {
  const { ctx, ws, sub, calls } = setup(range(1, 5000, (s) => frame(s, { event: s % 1000 === 0 ? 'run.failed' : 'run.completed' })))
  sub.start(0, { consumer: 'c', ack: true, sources: null, matchEvent: eventMatcher(['run.failed']) })
  sub.pump(ctx)
  t.same(ws.sent, [1000, 2000], 'matches only')
  t.equal(calls.reschedule, 1, 'yielded after its budget')
  t.equal(calls.skipped, 0, 'unacked delivery: the position must not pass it')
  sub.applyAck(2000)
  sub.pump(ctx)
  sub.pump(ctx)
  t.same(ws.sent, [1000, 2000, 3000, 4000, 5000, '{"type":"live","seq":5000}'])
  sub.applyAck(5000)
  const ctx2 = { ...ctx, head: () => 5000 }
  sub.pump(ctx2)
  t.equal(calls.skipped, 0, 'nothing to skip past')
})

t.test('pump: a pruned cursor ends with cursor_expired and 4410', async (t) => {
  const { ctx, ws, sub } = setup(range(5, 9))
  sub.start(2, { ack: false, sources: null, matchEvent: null })
  sub.pump(ctx)
  t.same(ws.sent, ['{"type":"error","code":"cursor_expired","earliest":5}'])
  t.same(ws.ended, [4410, 'cursor expired: events were pruned'])
})

t.test('pump: a page read from the journal (a promise) holds the pump until it arrives, then it goes on from the same cursor', async (t) => {
  const frames = range(1, 6)
  let release: (() => void) | undefined
  const asked: number[] = []
  const { ctx, ws, sub } = setup(frames, {
    page: (after, limit) => {
      asked.push(after)
      return new Promise((resolve) => {
        release = () => resolve(frames.filter((f) => f.seq > after).slice(0, limit))
      })
    },
  })
  let resumed = 0
  ctx.resume = (s) => {
    resumed++
    s.pump(ctx)
  }
  sub.start(0, { ack: false, sources: null, matchEvent: null })
  sub.pump(ctx)
  t.same(ws.sent, [], 'nothing sent before the page arrives')
  t.notOk(sub.runnable, 'not runnable while it waits (a commit does not start a second read)')
  sub.pump(ctx)
  t.same(asked, [0], 'one read only')
  release!()
  await new Promise((r) => setImmediate(r))
  t.equal(resumed, 1)
  t.same(ws.sent, [...range(1, 6).map((f) => f.seq), '{"type":"live","seq":6}'])

  const failing = setup(frames, { page: () => Promise.reject(new Error('backend down')) })
  let failed: unknown
  failing.ctx.readFailed = (_s, err) => void (failed = err)
  failing.sub.start(0, { ack: false, sources: null, matchEvent: null })
  failing.sub.pump(failing.ctx)
  await new Promise((r) => setImmediate(r))
  t.match(failed, { message: 'backend down' }, 'a failed read is reported to the hub')

  const pruned = setup(frames, { page: async () => null })
  pruned.sub.start(0, { ack: false, sources: null, matchEvent: null })
  pruned.sub.pump(pruned.ctx)
  await new Promise((r) => setImmediate(r))
  t.same(pruned.ws.ended?.[0], 4410, 'a pruned cursor found by a read ends with cursor_expired')
})

t.test('frames: event frame splices fragment and raw body; errors; client frame validation', async (t) => {
  const body = Buffer.from('{"event":"run.completed",  "run_id":"r1","n":1.50}')
  const raw = encodeEvent({ source: 'runflow', event: 'run.completed', key: 'r1', revision: 2, received_at: '2026-01-01T00:00:00.000Z' }, { sha256: 'x' }, body)
  const f = encodeEventFrame(decodeEvent(42, raw))
  t.equal(
    f.bytes.toString(),
    '{"type":"event","seq":42,"source":"runflow","event":"run.completed","key":"r1","revision":2,"received_at":"2026-01-01T00:00:00.000Z","body":{"event":"run.completed",  "run_id":"r1","n":1.50}}',
    'the body is spliced in byte for byte (spacing and 1.50 kept)',
  )
  t.equal(errorFrame('cursor_ahead', { head: 3 }), '{"type":"error","code":"cursor_ahead","head":3}')

  t.same(parseClientFrame('{"type":"subscribe","after":"latest","sources":["a"],"events":["run.*"],"consumer":"c-1","ack":true}'), {
    type: 'subscribe',
    after: 'latest',
    sources: ['a'],
    events: ['run.*'],
    consumer: 'c-1',
    ack: true,
  })
  t.same(parseClientFrame('{"type":"subscribe","after":null,"consumer":null}'), { type: 'subscribe' })
  t.same(parseClientFrame('{"type":"ack","seq":3}'), { type: 'ack', seq: 3 })
  t.same(parseClientFrame('{"type":"auth","token":"x"}'), { type: 'auth', token: 'x' })
  for (const bad of [
    '',
    'null',
    '"x"',
    '{"type":"ack","seq":-1}',
    '{"type":"ack","seq":1.5}',
    '{"type":"ack"}',
    '{"type":"auth","token":1}',
    '{"type":"subscribe","after":"soon"}',
    '{"type":"subscribe","sources":"a"}',
    '{"type":"subscribe","sources":[""]}',
    '{"type":"subscribe","events":[1]}',
    '{"type":"subscribe","consumer":"has space"}',
    '{"type":"subscribe","consumer":"a:b"}',
    `{"type":"subscribe","consumer":"${'c'.repeat(65)}"}`,
    `{"type":"subscribe","events":${JSON.stringify(Array.from({ length: 33 }, (_, i) => `e${i}`))}}`,
    `{"type":"subscribe","events":["${'e'.repeat(129)}"]}`,
    '{"type":"subscribe","ack":"yes"}',
    '{}',
  ]) {
    t.throws(() => parseClientFrame(bad), { name: 'BadFrame' }, bad)
    t.ok(catchIt(() => parseClientFrame(bad)) instanceof BadFrame)
  }
})

function catchIt(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

t.test('event globs', async (t) => {
  t.equal(eventMatcher(undefined), null)
  t.equal(eventMatcher([]), null)
  t.equal(eventMatcher(['run.*', '*']), null)
  const m = eventMatcher(['run.*', 'batch.?ailed'])!
  t.ok(m('run.completed'))
  t.ok(m('run.partial_succeeded'))
  t.ok(m('batch.failed'))
  t.notOk(m('batch.completed'))
  t.notOk(m('xrun.completed'), 'anchored')
  t.notOk(m('run'), 'the dot is literal')
  const literal = eventMatcher(['a+b(c)'])!
  t.ok(literal('a+b(c)'))
  t.notOk(literal('aab(c)'))
  const stars = eventMatcher(['**a**', 'x?'])!
  t.ok(stars('a') && stars('bab') && stars('xy'))
  t.notOk(stars('b') || stars('x') || stars('xyz'))
  const pathological = eventMatcher([`${'*?'.repeat(20)}#`])!
  t.notOk(pathological('x'.repeat(200)), 'no #: false (without backtracking for ages)')
  t.ok(pathological(`${'x'.repeat(20)}#`))
  t.notOk(pathological(`${'x'.repeat(19)}#`), 'each ? needs a character')
  t.notOk(pathological(`${'x'.repeat(19)}#`), 'asked again: the cached answer')
})

t.test('globMatch agrees with an anchored regex on random globs and names', async (t) => {
  let seed = 7
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const pick = (alphabet: string, max: number): string => Array.from({ length: rand(max + 1) }, () => alphabet[rand(alphabet.length)]).join('')
  let mismatches = 0
  for (let i = 0; i < 20_000; i++) {
    const glob = pick('ab*?.', 7)
    const name = pick('ab.', 9)
    const re = new RegExp(`^${glob.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's')
    if (globMatch(glob, name) !== re.test(name)) {
      mismatches++
      if (mismatches < 5) t.fail(`${JSON.stringify(glob)} vs ${JSON.stringify(name)}`)
    }
  }
  t.equal(mismatches, 0)
  t.ok(globMatch('', ''))
  t.notOk(globMatch('', 'a'))
  t.ok(globMatch('*', ''))
  t.notOk(globMatch('?', ''))
})

t.test('RecentFrames: bounded by count and bytes, oldest out first', async (t) => {
  const c = new RecentFrames(3, 1000)
  for (let s = 1; s <= 4; s++) c.add(frame(s))
  t.equal(c.size, 3)
  t.equal(c.get(1), undefined)
  t.ok(c.get(4))
  c.add(frame(4))
  t.equal(c.size, 3, 'adding a known seq is a no-op')
  c.add(frame(5, { size: 900 }))
  t.equal(c.get(3), undefined, 'bytes over the budget evict, oldest first')
  t.ok(c.get(4) && c.get(5))
  t.equal(c.bytes, 1000)
  c.add(frame(6, { size: 5000 }))
  t.equal(c.size, 1, 'a single frame over the budget is still kept')
  c.clear()
  t.equal(c.size, 0)
})

t.test('ConsumerCursors: acks in memory at once, stored batched, ignored when not ahead', async (t) => {
  const saved: Array<Map<string, number>> = []
  const stored = new Map<string, number>()
  const journal = {
    getCursor: async (n: string) => (stored.has(n) ? { seq: stored.get(n)!, epoch: 'e' } : undefined),
    listCursors: async () => [...stored].map(([name, seq]) => ({ name, seq })),
    saveCursors: async (m: Map<string, number>) => {
      saved.push(new Map(m))
      for (const [k, v] of m) stored.set(k, v)
    },
  } as unknown as JournalPort
  const c = new ConsumerCursors(journal, silent, 50)
  t.equal(await c.position('a'), 0)
  c.record('a', 5)
  c.record('a', 3)
  c.record('b', 1)
  c.record('a', 7)
  t.equal(await c.position('a'), 7, 'in memory at once')
  t.equal(saved.length, 0, 'not written per ack')
  while (saved.length === 0) await new Promise((r) => setTimeout(r, 5))
  t.same(saved, [new Map([['a', 7], ['b', 1]])], 'one batch')
  c.record('a', 9)
  await c.close()
  t.same(saved[1], new Map([['a', 9]]), 'close flushes')
  c.record('a', 10)
  t.equal(await c.position('a'), 9, 'closed: no more acks')
  t.same([...(await c.list())], [['a', 9], ['b', 1]])

  const failing = new ConsumerCursors({ ...journal, getCursor: async () => undefined, saveCursors: async () => Promise.reject(new Error('disk')) } as unknown as JournalPort, silent, 10)
  failing.record('z', 1)
  await failing.flush()
  t.equal(await failing.position('z'), 1, 'a failed write keeps the ack in memory')
})

t.test('ConnectionLimits: the auth window is counted apart from max_connections_per_ip, per address and in all', async (t) => {
  let max = 1
  const limits = new ConnectionLimits(() => max)
  const waiting = Array.from({ length: MAX_UNAUTHENTICATED_PER_ADDRESS }, (_, i) => new Subscriber(i, '10.0.0.1', undefined))
  for (const s of waiting) {
    t.ok(limits.mayWait('10.0.0.1'))
    limits.wait(s)
  }
  t.notOk(limits.mayWait('10.0.0.1'), 'the address is full in the auth window')
  t.ok(limits.hasRoom('10.0.0.1'), 'which takes nothing from the authenticated share')
  const a = new Subscriber(100, '10.0.0.1', { name: 'app', sources: null, role: 'reader' })
  limits.admit(a)
  t.notOk(limits.hasRoom('10.0.0.1'), 'max_connections_per_ip reached')
  max = 2
  t.ok(limits.hasRoom('10.0.0.1'), 'the limit is read at each check (reload)')
  limits.leaveWaiting(waiting[0]!)
  t.ok(limits.mayWait('10.0.0.1'), 'a socket that authenticates leaves the window')
  limits.release(waiting[0]!)
  limits.release(waiting[1]!)
  limits.release(waiting[1]!)
  limits.wait(waiting[0]!)
  limits.wait(waiting[1]!)
  t.notOk(limits.mayWait('10.0.0.1'), 'a release is counted once')
  limits.release(a)
  max = 1
  t.ok(limits.hasRoom('10.0.0.1'))

  const all = new ConnectionLimits(() => 100)
  for (let i = 0; i < MAX_UNAUTHENTICATED; i++) all.wait(new Subscriber(i, `10.1.${Math.floor(i / MAX_UNAUTHENTICATED_PER_ADDRESS)}.1`, undefined))
  t.notOk(all.mayWait('10.9.9.9'), `${MAX_UNAUTHENTICATED} in all: a new address waits too`)
})
