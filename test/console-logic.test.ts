// The console's view logic that needs no browser (web/src/logic.ts).
import t from 'tap'
import { destinationState, latencyText, lineDiff, nextAttemptText, parseRoute, replaySeq, urlWithoutQuery, matcher, NO_FILTER, pretty, reconnectDelay, sideBySide, statsDelta, TailBook, type TailEvent } from '../web/src/logic.js'

function ev(seq: number, over: Partial<TailEvent> = {}): TailEvent {
  return { seq, source: 'runflow', event: 'run.completed', key: `run-${seq}`, revision: 1, received_at: '2026-01-01T00:00:00.000Z', body: {}, ...over }
}

t.test('filters: source, event globs with the stream’s rules, key substring', async (t) => {
  const all = [ev(1), ev(2, { source: 'gh', event: 'issues' }), ev(3, { event: 'batch.failed', key: 'batch-77' }), ev(4, { event: 'run.failed' })]
  const seqs = (f: Partial<typeof NO_FILTER>) => all.filter(matcher({ ...NO_FILTER, ...f })).map((e) => e.seq)
  t.same(seqs({}), [1, 2, 3, 4], 'no filter: everything')
  t.same(seqs({ source: 'gh' }), [2])
  t.same(seqs({ events: 'run.*' }), [1, 4])
  t.same(seqs({ events: ' batch.?ailed , issues ' }), [2, 3], 'comma-separated, trimmed, ? is one character')
  t.same(seqs({ events: 'run' }), [], 'no glob characters: exact name')
  t.same(seqs({ key: '77' }), [3])
  t.same(seqs({ source: 'runflow', events: '*.failed', key: 'run' }), [4], 'all three at once')
})

t.test('line diff pairs the two revisions by their common lines', async (t) => {
  const a = pretty('{"run_id":"r","status":"succeeded","output":{}}')
  const b = pretty('{"run_id":"r","status":"failed","output":{},"error":"oom"}')
  const d = lineDiff(a, b)
  t.same(
    d.filter((l) => l.kind !== 'same'),
    [
      { kind: 'removed', text: '  "status": "succeeded",' },
      { kind: 'removed', text: '  "output": {}' },
      { kind: 'added', text: '  "status": "failed",' },
      { kind: 'added', text: '  "output": {},' },
      { kind: 'added', text: '  "error": "oom"' },
    ],
  )
  t.same(d.filter((l) => l.kind !== 'added').map((l) => l.text).join('\n'), a, 'the left side is the old text')
  t.same(d.filter((l) => l.kind !== 'removed').map((l) => l.text).join('\n'), b, 'the right side is the new text')
  t.same(lineDiff('x', 'x'), [{ kind: 'same', text: 'x' }])

  const rows = sideBySide(d)
  t.equal(rows[2]!.left!.text, '  "status": "succeeded",', 'changed lines side by side')
  t.equal(rows[2]!.right!.text, '  "status": "failed",')
  t.equal(rows[4]!.left, undefined, 'an added line has a gap on the left')
  t.equal(rows[4]!.right!.text, '  "error": "oom"')

  const big = Array.from({ length: 30 }, (_, i) => `${i}`).join('\n')
  t.equal(lineDiff(big, `${big}\nx`, 10).length, 61, 'past the size bound: whole texts, no table')
})

t.test('pretty-prints JSON and leaves anything else as it came', async (t) => {
  t.equal(pretty('{"a":[1]}'), '{\n  "a": [\n    1\n  ]\n}')
  t.equal(pretty('not json {'), 'not json {')
})

t.test('tail book: resumes from the last seq shown, drops replays, follows a new epoch', async (t) => {
  const b = new TailBook(3)
  t.equal(b.resumeAfter({ epoch: 'e1', head: 120 }), 70, 'first connection: a short backlog before head')
  t.equal(new TailBook().resumeAfter({ epoch: 'e1', head: 10 }), 0, 'backlog never below 0')
  for (const s of [71, 72, 73]) t.ok(b.add(ev(s)))
  t.equal(b.lastSeq, 73)
  t.equal(b.resumeAfter({ epoch: 'e1', head: 130 }), 73, 'reconnect: after the last seq shown')
  t.notOk(b.add(ev(73)), 'a replayed seq is dropped')
  t.notOk(b.add(ev(50)))
  t.ok(b.add(ev(75)), 'seqs of other sources leave holes; that is not a gap')
  t.same(
    b.events.map((e) => e.seq),
    [72, 73, 75],
    'keeps the newest `limit`',
  )
  t.equal(b.resumeAfter({ epoch: 'e1', head: 60 }), 60, 'never past the head the relay reports')
  t.equal(b.expired(200), 199, 'after cursor_expired: from the oldest entry left')
  t.equal(b.lastSeq, 199)
  t.equal(b.resumeAfter({ epoch: 'e2', head: 5 }), 0, 'a new journal starts over')
  t.same(b.events, [])
  t.ok(b.add(ev(1)), 'and seq 1 of the new epoch shows')
})

t.test('reconnect delay doubles from 0.5 s up to 10 s', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 6, 50].map(reconnectDelay), [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
})

t.test('stats: rate and mean ack latency between two samples', async (t) => {
  const a = { at: 1000, ingested: 10, ack_count: 10, ack_sum_seconds: 0.05 }
  const d = statsDelta(a, { at: 3000, ingested: 30, ack_count: 30, ack_sum_seconds: 0.09 })
  t.equal(d.rate, 10)
  t.ok(Math.abs(d.ackMs! - 2) < 1e-9, 'mean of the interval’s acks, in ms')
  t.same(statsDelta(a, { ...a, at: 2000 }), { rate: 0, ackMs: null }, 'no callbacks: no latency point')
  t.same(statsDelta(a, { at: 2000, ingested: 2, ack_count: 2, ack_sum_seconds: 0.001 }), { rate: 0, ackMs: null }, 'a restarted relay’s counters do not go negative')
})

t.test('routes: each view has a URL hash; anything else is the tail', async (t) => {
  t.same(parseRoute(''), { view: 'tail' })
  t.same(parseRoute('#/event/12'), { view: 'event', seq: 12 })
  t.same(parseRoute('#/event/x'), { view: 'tail' })
  t.same(parseRoute('#/runs'), { view: 'runs' })
  t.same(parseRoute('#/runs/runflow/a%2Fb'), { view: 'runs', source: 'runflow', id: 'a/b' })
  t.same(parseRoute('#/runs/runflow/100%'), { view: 'runs', source: 'runflow', id: '100%' }, 'a stray % does not throw')
  t.same(parseRoute('#/consumers'), { view: 'consumers' })
  t.same(parseRoute('#/destinations'), { view: 'destinations' })
  t.same(parseRoute('#/destinations/'), { view: 'destinations' }, 'a trailing slash is the list')
  t.same(parseRoute('#/destinations/billing%20app'), { view: 'destinations', name: 'billing app' })
  t.same(parseRoute('#/nowhere'), { view: 'tail' })
})

t.test('destinations: one state, a pause first, the circuit only while delivering', async (t) => {
  t.same(destinationState({ paused: false, paused_reason: null, circuit: 'closed' }), { kind: 'delivering', text: 'delivering' })
  t.same(destinationState({ paused: false, paused_reason: null, circuit: 'open' }), { kind: 'open', text: 'circuit open' })
  t.same(destinationState({ paused: false, paused_reason: null, circuit: 'half-open' }), { kind: 'open', text: 'circuit half-open (probing)' })
  t.same(destinationState({ paused: true, paused_reason: 'gone (410)', circuit: 'open' }), { kind: 'paused', text: 'paused (gone (410))' }, 'paused outranks an open circuit')
  t.same(destinationState({ paused: true, paused_reason: null, circuit: 'closed' }), { kind: 'paused', text: 'paused' })
})

t.test('destinations: the url without its masked query, next attempt relative to now (a past one by its time), latency, the replay seq', async (t) => {
  t.equal(urlWithoutQuery('http://127.0.0.1:3000/webhook/runflow?…'), 'http://127.0.0.1:3000/webhook/runflow')
  t.equal(urlWithoutQuery('https://app.example/hook#x'), 'https://app.example/hook')
  t.equal(urlWithoutQuery('https://app.example/hook'), 'https://app.example/hook')
  const now = 1_000_000
  t.same(
    [null, now - 5, now, now + 1234, now + 45_000, now + 30 * 60_000, now + 6 * 3_600_000].map((at) => nextAttemptText(at, now, (ms) => `at ${ms}`)),
    ['—', `at ${now - 5}`, `at ${now}`, 'in 1.2 s', 'in 45 s', 'in 30 min', 'in 6 h'],
  )
  t.same([0.04, 1.66, 9.94, 28.7, 1234.5].map(latencyText), ['0.0 ms', '1.7 ms', '9.9 ms', '29 ms', '1235 ms'], 'latency: tenths only while small')
  t.equal(replaySeq(' 42 '), 42)
  t.same(['0', '-1', '1.5', '', 'x', '1e3', '9'.repeat(16)].map(replaySeq), [null, null, null, null, null, null, null], 'only whole seqs of at least 1')
})
