// The start-up check of an existing stream, on real streams of a real
// 3-node nats-server cluster: each configuration that would break the
// journal's contract is refused with its reason, each weaker guarantee is a
// warning, and a stream the relay creates itself passes.
import { jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream'
import { connect, nanos } from '@nats-io/transport-node'
import t from 'tap'
import type { JetStreamConfig, JournalConfig } from '../src/config/types.js'
import { streamSubjects } from '../src/journal/jetstream/names.js'
import { ensureStream } from '../src/journal/jetstream/setup.js'
import { checkStream, subjectCovers } from '../src/journal/jetstream/stream-check.js'
import { startNatsCluster } from './helpers/nats.js'

const DAY_MS = 86_400_000
const GiB = 1024 ** 3

function journalFor(stream: string, over: Partial<JetStreamConfig> = {}, servers: string[] = []): JournalConfig {
  return {
    backend: 'jetstream',
    map_size: 4 * GiB,
    retention: { max_age_ms: 7 * DAY_MS, max_bytes: 64 * 1024 * 1024 },
    min_free: 0,
    jetstream: { servers, stream, replicas: 3, timeout_ms: 5000, duplicate_window_ms: 120_000, auth: { kind: 'none' }, tls: undefined, ...over },
  }
}

/** A stream like the one the relay would create, with `over` changed. */
function streamLike(name: string, over: Partial<StreamConfig> = {}): Partial<StreamConfig> & { name: string } {
  return {
    name,
    subjects: streamSubjects(name),
    retention: 'limits',
    storage: 'file',
    discard: 'old',
    num_replicas: 1,
    max_age: nanos(7 * DAY_MS),
    max_bytes: 64 * 1024 * 1024,
    duplicate_window: nanos(120_000),
    ...over,
  }
}

t.test('subjectCovers follows NATS wildcards', async (t) => {
  t.ok(subjectCovers('HOOKRELAY.>', 'HOOKRELAY.>'))
  t.ok(subjectCovers('>', 'HOOKRELAY.>'))
  t.ok(subjectCovers('*.>', 'HOOKRELAY.>'))
  t.ok(subjectCovers('HOOKRELAY.*.*', 'HOOKRELAY.entry.x'))
  t.notOk(subjectCovers('HOOKRELAY.entry.*', 'HOOKRELAY.>'), 'one token of wildcard does not cover many')
  t.notOk(subjectCovers('HOOKRELAY.*', 'HOOKRELAY.>'))
  t.notOk(subjectCovers('OTHER.>', 'HOOKRELAY.>'))
  t.notOk(subjectCovers('HOOKRELAY', 'HOOKRELAY.>'))
  t.notOk(subjectCovers('HOOKRELAY.entry.x', 'HOOKRELAY.entry.*'))
  t.notOk(subjectCovers('HOOKRELAY.a.b', 'HOOKRELAY.a'), 'longer is not a cover')
})

t.test('on a real cluster', async (t) => {
  const nats = await startNatsCluster(t, { size: 3, dir: t.testdir() })
  const nc = await connect({ servers: nats.urls })
  t.teardown(() => nc.close())
  const jsm: JetStreamManager = await jetstreamManager(nc, { timeout: 10_000 })

  /** Makes `cfg` as a stream and runs the relay's start-up check on it. */
  async function check(cfg: Partial<StreamConfig> & { name: string }, over: Partial<JetStreamConfig> = {}) {
    await jsm.streams.add(cfg)
    return ensureStream(jsm, journalFor(cfg.name, over, nats.urls))
  }

  t.test('a stream the relay creates passes; its only warning is the fsync one a client cannot verify', async (t) => {
    // Right after the cluster's start: creation waits for the peers to report in instead of failing on "no suitable peers".
    const setup = await ensureStream(jsm, journalFor('GOOD', {}, nats.urls))
    t.equal(setup.created, true)
    t.equal(setup.refusal, undefined)
    t.equal(setup.warnings.length, 1, setup.warnings.join('\n'))
    t.match(setup.warnings[0], /a NATS client cannot see whether the servers fsync before each PubAck.*`jetstream \{ sync_interval: always \}`.*"sync_always": true/)
    t.match(setup.info.config, { subjects: ['GOOD.>'], retention: 'limits', storage: 'file', discard: 'old', num_replicas: 3 })
    t.equal(setup.info.cluster?.replicas?.length, 2, 'R3: a leader and two replicas')
    const again = await ensureStream(jsm, journalFor('GOOD', {}, nats.urls))
    t.equal(again.created, false, 'a second start checks the same stream instead of creating one')
    t.equal(again.info.created, setup.info.created)
  })

  t.test('subjects that do not cover <stream>.> are refused', async (t) => {
    const a = await check(streamLike('PART', { subjects: ['PART.entry.*'] }))
    t.match(a.refusal, /its subjects \[PART\.entry\.\*\] do not cover PART\.>, so the relay's publishes would find no stream; add PART\.> to its subjects/)
    const b = await check(streamLike('ELSE', { subjects: ['elsewhere.>'] }))
    t.match(b.refusal, /do not cover ELSE\.>/)
    const wide = await check(streamLike('WIDE', { subjects: ['WIDE.>', 'other.stuff'] }))
    t.equal(wide.refusal, undefined, 'extra subjects beside <stream>.> are not a refusal')
  })

  t.test('work-queue and interest retention are refused: they delete consumed entries', async (t) => {
    const wq = await check(streamLike('WQ', { retention: 'workqueue' }))
    t.match(wq.refusal, /its retention is workqueue, which deletes an entry once it is consumed; the journal needs limits retention/)
    const interest = await check(streamLike('INTEREST', { retention: 'interest' }))
    t.match(interest.refusal, /its retention is interest, which deletes an entry once it is acknowledged by every consumer/)
  })

  t.test('discard new with a size or count limit is refused: full would mean 503 forever', async (t) => {
    const s = await check(streamLike('DNEW', { discard: 'new', max_bytes: 1024 * 1024 }))
    t.match(s.refusal, /discard is new with max_bytes 1mb: once full it refuses every new callback/)
    const unlimited = await check(streamLike('DNEWAGE', { discard: 'new', max_bytes: -1, max_msgs: -1 }))
    t.equal(unlimited.refusal, undefined, 'discard new with only max_age drops nothing early: allowed')
    t.match(unlimited.warnings.join('\n'), /holds unlimited bytes \(max_bytes -1\) but journal\.retention\.max_bytes is 64mb/)
  })

  t.test('a per-subject limit is refused: a busy source would lose old entries before retention', async (t) => {
    const s = await check(streamLike('PERSUBJ', { max_msgs_per_subject: 100 }))
    t.match(s.refusal, /max_msgs_per_subject is 100: entries of one source share a subject/)
  })

  t.test('memory storage is refused: a power cut of every node empties it', async (t) => {
    // Small: memory streams reserve max_bytes of each node's max_memory_store.
    const s = await check(streamLike('MEM', { storage: 'memory', max_bytes: 1024 * 1024 }))
    t.match(s.refusal, /its storage is memory: a restart of every node \(a power cut\) empties it/)
  })

  t.test('no_ack, sealed, mirror and sources are refused', async (t) => {
    // A stream without PubAcks must not capture JetStream's own API; its subjects are its own.
    const noAck = await check(streamLike('NOACK', { no_ack: true }))
    t.match(noAck.refusal, /no_ack is set: the stream sends no PubAck/)
    await jsm.streams.add(streamLike('SEALED'))
    await jsm.streams.update('SEALED', { ...streamLike('SEALED'), sealed: true } as never)
    const sealed = await ensureStream(jsm, journalFor('SEALED', {}, nats.urls))
    t.match(sealed.refusal, /it is sealed: it takes no new entries/)
    await jsm.streams.add(streamLike('ORIGIN', { subjects: ['origin.>'] }))
    const mirror = await check({ name: 'MIRROR', mirror: { name: 'ORIGIN' }, num_replicas: 1, storage: 'file', retention: 'limits' })
    t.match(mirror.refusal, /it is a mirror of ORIGIN, which takes no publishes/)
    const sourced = await check(streamLike('SOURCED', { sources: [{ name: 'ORIGIN' }] }))
    t.match(sourced.refusal, /it sources from ORIGIN: their messages would land in the journal's seq order/)
  })

  t.test('several problems are all named in one refusal', async (t) => {
    const s = await check(streamLike('MANY', { retention: 'workqueue', storage: 'memory', max_bytes: 1024 * 1024, subjects: ['x.>'] }))
    t.match(s.refusal, /do not cover MANY\.>.*; its retention is workqueue.*; its storage is memory/)
  })

  t.test('warnings: replicas under 3 and unlike the config, retention and duplicate window unlike the config, a count limit', async (t) => {
    const s = await check(streamLike('WEAK', { num_replicas: 1, max_age: nanos(DAY_MS), max_bytes: 32 * 1024 * 1024, duplicate_window: nanos(60_000), max_msgs: 1000 }))
    t.equal(s.refusal, undefined)
    const all = s.warnings.join('\n')
    t.match(all, /stream WEAK has 1 replica: losing its node loses acknowledged callbacks or stops ingest; 3 replicas survive one node/)
    t.match(all, /stream WEAK has 1 replica but journal\.jetstream\.replicas is 3; the existing stream's setting is the one in force/)
    t.match(all, /keeps entries for 1d but journal\.retention\.max_age is 1w/)
    t.match(all, /holds up to 32mb but journal\.retention\.max_bytes is 64mb/)
    t.match(all, /duplicate window of 1m but journal\.jetstream\.duplicate_window is 2m/)
    t.match(all, /has max_msgs 1000: past that count the oldest entries go/)
    const r2 = await check(streamLike('TWO', { num_replicas: 2 }), { replicas: 2 })
    t.match(r2.warnings.join('\n'), /stream TWO has 2 replicas: losing one node of two/)
    t.notMatch(r2.warnings.join('\n'), /but journal\.jetstream\.replicas/, 'as configured: only the under-3 warning')
  })

  t.test('checkStream on a live info with retention left out compares no retention', async (t) => {
    const info = await jsm.streams.info('WEAK')
    const c = checkStream(info, journalFor('WEAK').jetstream!, streamSubjects('WEAK'))
    t.notMatch(c.warnings.join('\n'), /journal\.retention\.max/)
  })
})
