// The JetStream journal's stream watch, on a fake of the little it reads (stream info, the tail,
// one message by seq) beside the black-box tests on a real cluster (test/jetstream-relays.test.ts,
// test/jetstream-faults.test.ts): a stale stream info — its last seq below what the tail already
// received, common under concurrent publishers — must neither refuse appends nor fail the journal;
// a stream that stays below, or comes back with another entry at that seq, must.
import { createHash } from 'node:crypto'
import type { JetStreamManager, StoredMsg, StreamInfo } from '@nats-io/jetstream'
import t from 'tap'
import { decodeEvent, encodeEvent, type StoredEvent } from '../src/journal/record.js'
import { StreamWatch } from '../src/journal/jetstream/stream-watch.js'
import type { Tail } from '../src/journal/jetstream/tail.js'
import { silent } from './helpers/relay.js'

function entry(seq: number, body: string): { raw: Buffer; event: StoredEvent } {
  const b = Buffer.from(body)
  const raw = encodeEvent(
    { source: 'runflow', event: 'run.completed', key: `run-${seq}`, revision: 1, received_at: '2026-12-04T23:00:00.000Z' },
    { sha256: createHash('sha256').update(b).digest('hex') },
    b,
  )
  return { raw, event: decodeEvent(seq, raw) }
}

function world(t: { teardown(fn: () => unknown): void }) {
  const state = { last: 0, first: 1, messages: 0, created: '2026-12-04T22:00:00Z' }
  const stored = new Map<number, Buffer>()
  const delivered = new Map<number, StoredEvent>()
  let head = 0
  const info = (): StreamInfo =>
    ({ created: state.created, state: { last_seq: state.last, first_seq: state.first, messages: state.messages, bytes: 0 }, cluster: { leader: 'n1' } }) as unknown as StreamInfo
  const jsm = { streams: { info: async () => info() } } as unknown as JetStreamManager
  const tail = { get head() { return head }, cached: (seq: number) => delivered.get(seq), restart: async () => undefined } as unknown as Tail
  const message = async (seq: number): Promise<StoredMsg | null> => {
    const raw = stored.get(seq)
    return raw === undefined ? null : ({ seq, data: new Uint8Array(raw) } as unknown as StoredMsg)
  }
  const watch = new StreamWatch(info(), { jsm, stream: 'W', replicas: 3, log: silent, tail, message, pollMs: 3_600_000 })
  t.teardown(() => watch.close())
  /** The stream takes `n` entries, and the tail receives them. */
  const publish = (n: number, tag = 'a'): void => {
    for (let i = 0; i < n; i++) {
      const seq = ++state.last
      const e = entry(seq, `${tag}-${seq}`)
      stored.set(seq, e.raw)
      delivered.set(seq, e.event)
      head = seq
      state.messages++
      watch.delivered(seq)
    }
  }
  return { state, stored, watch, publish }
}

t.test('a stream info trailing the tail (stale under load) neither refuses appends nor fails the journal', async (t) => {
  const w = world(t)
  w.publish(57)
  w.state.last = 53 // the answer was put together before the last 4 were applied where it came from
  await w.watch.check()
  t.equal(w.watch.unavailable, undefined, 'appends are not refused')
  t.equal(w.watch.failed, undefined, 'the journal has not failed')
  w.state.last = 57
  w.publish(10)
  await w.watch.check()
  t.equal(w.watch.failed, undefined, 'caught up, with the same entry at seq 57')
  t.equal(w.watch.unavailable, undefined)
})

t.test('a stream that comes back past the seq with another entry there fails the journal', async (t) => {
  const w = world(t)
  w.publish(20)
  w.state.last = 12
  await w.watch.check()
  t.equal(w.watch.failed, undefined)
  // Restored from an older copy and written again: seq 20 now holds something else.
  for (let seq = 13; seq <= 25; seq++) w.stored.set(seq, entry(seq, `other-${seq}`).raw)
  w.state.last = 25
  await w.watch.check()
  t.match(w.watch.failed, { code: 'HOOKRELAY_JOURNAL_STREAM_CHANGED', message: /another entry at seq 20/ })
})

t.test('a stream that stays below the seen head past the grace period went backwards', async (t) => {
  const w = world(t)
  w.publish(30)
  w.state.last = 10
  const realNow = Date.now
  let now = realNow()
  Date.now = () => now
  t.teardown(() => { Date.now = realNow })
  await w.watch.check()
  t.equal(w.watch.failed, undefined, 'not at once')
  now += 9_000
  await w.watch.check()
  t.equal(w.watch.failed, undefined, 'not inside the grace period')
  now += 2_000
  await w.watch.check()
  t.match(w.watch.failed, { code: 'HOOKRELAY_JOURNAL_STREAM_CHANGED', message: /went backwards: its last seq is 10, this relay had seen 30/ })
})

t.test('a recreated stream fails the journal at once', async (t) => {
  const w = world(t)
  w.publish(3)
  w.state.created = '2026-12-04T23:30:00Z'
  await w.watch.check()
  t.match(w.watch.failed, { message: /was recreated/ })
})
