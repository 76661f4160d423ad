// Unit: the subscribe decision as a pure function, every branch, beside the
// black-box runs in fanout-protocol / fanout-authz / fanout-admission.
import t from 'tap'
import type { Principal } from '../src/http/auth.js'
import type { SubscribeFrame } from '../src/protocol/frames.js'
import { MAX_CONSUMERS_PER_SUBSCRIBER, decideSubscribe, type ConsumerLookup, type SubscribeInput } from '../src/fanout/subscribe-decision.js'

const all: Principal = { name: 'app', sources: null, role: 'reader' }
const ghOnly: Principal = { name: 'ghonly', sources: new Set(['gh']), role: 'reader' }
const configured = new Set(['runflow', 'gh'])

function decide(frame: Omit<SubscribeFrame, 'type'>, over: Partial<SubscribeInput> = {}) {
  return decideSubscribe({
    frame: { type: 'subscribe', ...frame },
    principal: all,
    isSource: (s) => configured.has(s),
    journal: { head: 50, earliest: 1 },
    ...over,
  })
}

/** Events 1-10 pruned. */
const pruned = { head: 50, earliest: 11 }
const known = (position: number): ConsumerLookup => ({ position, known: true })
const fresh = (subscriberConsumers: number): ConsumerLookup => ({ position: 0, known: false, subscriberConsumers })

t.test('after N starts after N; "latest" and omitted (without a consumer) start at the head', async (t) => {
  t.match(decide({ after: 20 }), { kind: 'start', after: 20, consumer: undefined, ack: false })
  t.match(decide({ after: 'latest' }), { kind: 'start', after: 50 })
  t.match(decide({}), { kind: 'start', after: 50 })
  t.match(decide({ after: 50 }), { kind: 'start', after: 50 }, 'the head itself is not ahead')
  t.match(decide({ after: 10 }, { journal: pruned }), { kind: 'start', after: 10 }, 'earliest - 1 is not expired: the next event is still there')
})

t.test('a consumer resumes after its position when after is omitted; an explicit after wins', async (t) => {
  t.match(decide({ consumer: 'billing' }, { consumer: known(42) }), { kind: 'start', after: 42, consumer: 'app/billing' })
  t.match(decide({ consumer: 'billing' }, { consumer: fresh(0) }), { kind: 'start', after: 0 }, 'a new consumer at 0 when nothing was pruned')
  t.match(decide({ consumer: 'billing', after: 'latest' }, { consumer: known(42) }), { kind: 'start', after: 50 })
  t.match(decide({ consumer: 'billing', after: 30 }, { consumer: known(42) }), { kind: 'start', after: 30 })
  t.match(decide({ consumer: 'billing' }, { principal: ghOnly, consumer: known(3), journal: { head: 5, earliest: 1 } }), {
    kind: 'start',
    consumer: 'ghonly/billing',
  }, 'namespaced by subscriber')
})

t.test('cursor_ahead past the head, cursor_expired before earliest - 1 (also for a consumer)', async (t) => {
  t.same(decide({ after: 51 }), { kind: 'error', code: 'cursor_ahead', head: 50, after: 51 })
  t.same(decide({ after: 9 }, { journal: pruned }), { kind: 'error', code: 'cursor_expired', earliest: 11, after: 9 })
  t.same(decide({ consumer: 'c' }, { consumer: known(3), journal: pruned }), { kind: 'error', code: 'cursor_expired', earliest: 11, after: 3 })
  t.same(decide({ consumer: 'c' }, { consumer: known(60) }), { kind: 'error', code: 'cursor_ahead', head: 50, after: 60 })
})

t.test('a source the token may not read closes 4403, before any check of existence', async (t) => {
  t.match(decide({ sources: ['gh', 'runflow'] }, { principal: ghOnly }), { kind: 'close', code: 4403, reason: /runflow/ })
  t.match(decide({ sources: ['nope'] }, { principal: ghOnly }), { kind: 'close', code: 4403 })
  t.match(decide({ sources: ['gh'], after: 0 }, { principal: ghOnly }), { kind: 'start', sources: new Set(['gh']), followsToken: false })
})

t.test('a source that is not configured closes 4400', async (t) => {
  t.match(decide({ sources: ['runflow', 'runflw'] }), { kind: 'close', code: 4400, reason: 'no source named runflw is configured' })
  t.match(decide({ sources: ['*', 'nope'] }), { kind: 'close', code: 4400, reason: /nope/ })
  t.match(decide({ sources: ['x'.repeat(300)] }), { kind: 'close', code: 4400, reason: `no source named ${'x'.repeat(64)} is configured` }, 'the name is cut for the close frame')
})

t.test('no sources or "*" follow the token; filters and ack pass through', async (t) => {
  const d = decide({ sources: ['*'], events: ['run.*'], ack: true }, { principal: ghOnly })
  t.match(d, { kind: 'start', followsToken: true, events: ['run.*'], ack: true })
  t.equal(d.kind === 'start' && d.sources, ghOnly.sources, "the token's own sources")
  t.match(decide({}), { kind: 'start', sources: null, followsToken: true, events: undefined })
})

t.test(`a new consumer past ${MAX_CONSUMERS_PER_SUBSCRIBER} closes 4400; a known one is let in`, async (t) => {
  t.match(decide({ consumer: 'c101' }, { consumer: fresh(MAX_CONSUMERS_PER_SUBSCRIBER) }), { kind: 'close', code: 4400, reason: /app has 100 durable consumers/ })
  t.match(decide({ consumer: 'c100' }, { consumer: fresh(MAX_CONSUMERS_PER_SUBSCRIBER - 1) }), { kind: 'start', consumer: 'app/c100' })
  t.match(decide({ consumer: 'c1', after: 20 }, { consumer: known(20) }), { kind: 'start', consumer: 'app/c1' })
})
