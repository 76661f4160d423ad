// Ingest on two threads (http.threads: 2): the key ingest behaviour, black-box.
import t from 'tap'
import { startTestRelay, postRunflow, get, TOKEN } from './helpers/relay.js'
import { sampleRunflowCallback } from '../src/sample.js'

t.test('two ingest threads: 200 with gapless seqs, dedupe, 401, read API through the main thread', async (t) => {
  const { relay, base } = await startTestRelay(t, { threads: 2 })
  t.equal(relay.ingestThreads, 2)
  const bodies = Array.from({ length: 50 }, (_, i) => sampleRunflowCallback({ runId: `run-${i}` }))
  const answers = await Promise.all(bodies.map((b) => postRunflow(base, b)))
  t.same(answers.map((a) => a.status), bodies.map(() => 200))
  t.same(answers.map((a) => a.json.seq).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1))
  const again = await postRunflow(base, bodies[0]!)
  t.equal(again.json.duplicate, true)
  const bad = await postRunflow(base, bodies[1]!, 'wrong-secret')
  t.equal(bad.status, 401)
  const events = await get(`${base}/v1/events?after=0&limit=100`, TOKEN)
  t.equal(events.status, 200, JSON.stringify(events.json).slice(0, 200))
  const m = await get(`${base}/metrics`)
  t.match(m.json, /hookrelay_requests_total\{source="runflow",status="200"\} 51/)
  t.match(m.json, /hookrelay_requests_total\{source="runflow",status="401"\} 1/)
})
