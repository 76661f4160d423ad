// The worker's retry state machine against a handler answering at random (seeded): every request is a
// recorded attempt, every retry is planned in the future, and every event ends delivered or dead-lettered.
import t from 'tap'
import type { AttemptRecord } from '../src/destinations/store.js'
import { ingestDirect } from './helpers/relay.js'
import { startDestinationRelay, startHandler, type Script } from './destinations-harness.js'
import { prng } from './helpers/prng.js'


for (const seed of [7, 42, 2026]) {
  t.test(`random answers (seed ${seed}): attempts recorded, next attempt in the future, each event ends`, async (t) => {
    const r = prng(seed)
    const script: Script = () => {
      const p = r()
      if (p < 0.3) return { status: 200 }
      if (p < 0.35) return { status: 410 }
      if (p < 0.45) return { status: 429, headers: { 'retry-after': '0' } }
      if (p < 0.55) return 'drop'
      if (p < 0.6) return 'hang'
      return { status: [500, 502, 503, 404, 301][Math.floor(r() * 5)]! }
    }
    const h = await startHandler(t, script)
    const N = 40
    const { relay, worker } = await startDestinationRelay(
      t,
      `destinations:
  app:
    url: ${h.url}
    concurrency: ${1 + (seed % 3)}
    timeout: 50ms
    retry: { schedule: [2ms, 2ms, 2ms, 2ms], jitter: 0.5 }
    circuit: { failures: 4, cooldown: 5ms, max_cooldown: 20ms }`,
    )
    const final = new Map<number, string>()
    const records: AttemptRecord[] = []
    const ended = new Promise<void>((resolve) => {
      worker().on('attempt', (a) => {
        records.push(a)
        // A 410 pauses the destination; an operator would resume it.
        if (a.outcome === 'paused') void worker().resume()
        if (a.outcome === 'delivered' || a.outcome === 'dead') final.set(a.seq, a.outcome)
        if (final.size === N) resolve()
      })
    })
    for (let i = 0; i < N; i++) await ingestDirect(relay, `prop-${seed}-${i}`)
    await ended
    await relay.journal.idle()
    t.equal(final.size, N, 'every event ended delivered or dead-lettered')
    t.ok(records.every((a) => a.outcome !== 'retry' || (a.next_at !== null && a.next_at > a.at)), 'every retry planned after its attempt')
    t.ok(records.every((a) => (a.outcome === 'retry') === (a.next_at !== null)), 'next_at exactly on retries')
    const stored = await worker().attempts(undefined, 10_000)
    t.equal(stored.length, records.length, 'every attempt stored')
    // A timed-out attempt on a starved machine may end before its request was written (a new connection
    // not yet up after 50 ms): such a record has no request. Every other record has exactly one.
    const timedOut = records.filter((a) => a.error === 'timeout').length
    t.ok(h.received.length <= records.length, `an attempt record for every request the handler got (${h.received.length} requests, ${records.length} records)`)
    t.ok(h.received.length >= records.length - timedOut, `a request for every record but timed-out ones (${timedOut} timed out)`)
    const perSeq = new Map<number, number[]>()
    for (const a of stored) perSeq.set(a.seq, [...(perSeq.get(a.seq) ?? []), a.attempt])
    for (const [seq, ns] of perSeq) t.same(ns.sort((x, y) => x - y), ns.map((_, i) => i + 1), `seq ${seq}: attempts numbered 1..n`)
    t.ok([...perSeq.values()].every((ns) => ns.length <= 5 + records.filter((a) => a.outcome === 'paused').length), 'at most the schedule plus one (and the paused ones)')
    const dead = [...final.values()].filter((o) => o === 'dead').length
    t.equal((await worker().deadLetters()).length, dead, 'the dead-letter list holds the dead ones')
    t.equal((await relay.journal.read(0, 10_000)).filter((e) => e.event === 'delivery.failed').length, dead, 'one delivery.failed entry each')
  })
}
