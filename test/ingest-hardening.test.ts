// Hostile or odd input must never take the relay down, poison subscribers, or
// grow memory without bound (findings of the core review, each reproduced here).
import { connect } from 'node:net'
import t from 'tap'
import { sampleRunflowCallback, uuidv7 } from '../src/sample.js'
import { signGithub, signRunflow } from '../src/verify/sign.js'
import { loadConfigText } from '../src/config/load.js'
import { SECRET, TOKEN, TOKEN_GH, get, post, postRunflow, startTestRelay, testConfigYaml, ingestDirect } from './helpers/relay.js'

t.test('an over-long idempotency key is a 400, and the relay stays up', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const long = JSON.stringify({ event: 'run.completed', run_id: 'r'.repeat(3000), status: 'succeeded' })
  const a = await postRunflow(base, long)
  t.equal(a.status, 400)
  t.equal(a.json.error.code, 'HOOKRELAY_INGEST_BAD_KEY')
  // GitHub's delivery id is a header outside the signature: a replayed delivery with a huge id.
  const body = JSON.stringify({ action: 'opened' })
  const gh = await post(`${base}/webhook/github`, body, { ...signGithub('gh-secret', body), 'x-github-event': 'issues', 'x-github-delivery': 'd'.repeat(2000) })
  t.equal(gh.status, 400)
  t.equal((await postRunflow(base, sampleRunflowCallback())).status, 200, 'still acknowledging')
  t.equal((await get(`${base}/readyz`)).status, 200)
  t.equal(relay.journal.head, 1)
})

t.test('an entry that cannot be stored fails alone; its batch and the relay carry on', async (t) => {
  const poison = uuidv7()
  const { relay, base } = await startTestRelay(t, {
    relay: {
      extensions: [
        (host) => {
          host.journal.addAppendHook((ctx) => {
            if (ctx.key === poison) throw new Error('hook refused this entry')
          })
          return undefined
        },
      ],
    },
  })
  const bodies = [sampleRunflowCallback(), sampleRunflowCallback({ runId: poison }), sampleRunflowCallback()]
  const answers = await Promise.all(bodies.map((b) => postRunflow(base, b)))
  t.same(
    answers.map((a) => a.status),
    [200, 500, 200],
  )
  t.equal(answers[1]!.json.error.code, 'HOOKRELAY_JOURNAL_ENTRY_REJECTED')
  t.same(
    (await relay.journal.read(0, 10)).map((e) => e.seq),
    [1, 2],
    'the rejected entry left no trace and no gap',
  )
  t.notOk(await relay.journal.getRun('runflow', poison), 'no run row either')
  t.equal((await get(`${base}/readyz`)).status, 200, 'not fail-stop')
  t.equal((await postRunflow(base, sampleRunflowCallback())).json.seq, 3)
})

t.test('a body that is not UTF-8 is refused before it can break text frames', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const bad = Buffer.concat([Buffer.from(`{"event":"run.completed","run_id":"${uuidv7()}","x":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])
  const a = await postRunflow(base, bad)
  t.equal(a.status, 400)
  t.equal(a.json.error.code, 'HOOKRELAY_INGEST_NOT_JSON')
  t.equal(relay.journal.head, 0)
})

t.test('bodies in flight are bounded by bytes received: past the budget new callbacks get 503 busy', async (t) => {
  const { relay, base } = await startTestRelay(t, { extra: 'http: { max_body_in_flight: 16kb }' })
  const body = sampleRunflowCallback() + ' '.repeat(12 * 1024)
  const headers = Object.entries({ ...signRunflow(SECRET, body), 'content-length': String(Buffer.byteLength(body)) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  // A slow sender holds the 12 KiB it has sent so far.
  const slow = connect(relay.port, '127.0.0.1')
  t.teardown(() => slow.destroy())
  await new Promise<void>((r) => slow.on('connect', () => r()))
  slow.write(`POST /webhook/runflow HTTP/1.1\r\nhost: x\r\n${headers}\r\n${body.slice(0, 12 * 1024)}`)
  while (relay.bodyBudget.inUse < 12 * 1024) await new Promise((r) => setImmediate(r))
  const busy = await postRunflow(base, sampleRunflowCallback() + ' '.repeat(8 * 1024))
  t.equal(busy.status, 503)
  t.equal(busy.json.error.code, 'HOOKRELAY_HTTP_BUSY')
  t.ok(busy.headers.get('retry-after'))
  // Once the slow one finishes, the budget is free again.
  const answered = new Promise<string>((r) => {
    let text = ''
    slow.on('data', (d) => {
      text += d.toString()
      if (text.includes('\r\n\r\n{')) r(text)
    })
  })
  slow.write(body.slice(12 * 1024))
  t.match(await answered, /^HTTP\/1\.1 200 /)
  t.equal(relay.bodyBudget.inUse, 0, 'all of it given back')
  t.equal((await postRunflow(base, body)).json.duplicate, true, 'the same body again: a duplicate')
  t.equal((await postRunflow(base, sampleRunflowCallback())).status, 200)
})

t.test('the default body budget follows max_body across a reload; an explicit one stays', async (t) => {
  const { relay, dir } = await startTestRelay(t)
  const { DEFAULT_BODY_BYTES_IN_FLIGHT } = await import('../src/relay.js')
  t.equal(relay.bodyBudget.max, DEFAULT_BODY_BYTES_IN_FLIGHT, '64 MiB while 4 × max_body is less')
  t.equal(relay.bodyBudget.perAddress, DEFAULT_BODY_BYTES_IN_FLIGHT / 8, 'an eighth of it per address')
  const raised = loadConfigText(testConfigYaml(dir).replace('max_body: 64kb', 'max_body: 32mb'), '<test>', { env: {} })
  relay.reload(raised)
  t.equal(relay.bodyBudget.max, 4 * 32 * 1024 * 1024, '4 × the new largest max_body')
  t.equal(relay.bodyBudget.perAddress, 32 * 1024 * 1024, 'at least one largest body per address')
  const extra = 'http: { max_body_in_flight: 1mb }'
  const fixed = await startTestRelay(t, { extra })
  fixed.relay.reload(loadConfigText(testConfigYaml(fixed.dir, extra).replace('max_body: 64kb', 'max_body: 32mb'), '<test>', { env: {} }))
  t.equal(fixed.relay.bodyBudget.max, 1024 * 1024)
})

t.test('GET /v1/events is bounded in scan and in bytes, and paging still ends', async (t) => {
  const { relay, base } = await startTestRelay(t)
  const { EVENTS_SCAN_MAX, EVENTS_PAGE_BYTES } = await import('../src/http/read-api.js')
  // Many runflow events the gh-only token may not see, then one it may.
  const n = EVENTS_SCAN_MAX + 50
  await Promise.all(Array.from({ length: n }, (_, i) => ingestDirect(relay, `r-${i}`)))
  const gh = JSON.stringify({ action: 'closed' })
  await post(`${base}/webhook/github`, gh, { ...signGithub('gh-secret', gh), 'x-github-event': 'issues', 'x-github-delivery': 'late' })
  const head = n + 1

  const first = await get(`${base}/v1/events?after=0&limit=1000`, TOKEN_GH)
  t.same(first.json.events, [], 'nothing visible in the first scan window')
  t.equal(first.json.next, EVENTS_SCAN_MAX, 'next stops where the scan stopped')
  const second = await get(`${base}/v1/events?after=${first.json.next}&limit=1000`, TOKEN_GH)
  t.same(second.json.events.map((e: { seq: number }) => e.seq), [head])
  t.equal(second.json.next, head)

  // Bytes: 70 bodies of 60 KB would pass the page cap; the page stops short, at least one event.
  const big = 'y'.repeat(60_000)
  const many = await Promise.all(
    Array.from({ length: 70 }, (_, i) => postRunflow(base, JSON.stringify({ event: 'run.completed', run_id: `big-${i}`, pad: big }))),
  )
  t.ok(many.every((a) => a.status === 200))
  const page = await get(`${base}/v1/events?after=${head}&limit=1000`, TOKEN)
  t.ok(page.json.events.length >= 1 && page.json.events.length < 70, `${page.json.events.length} events in one page`)
  t.ok(page.json.events.length * 60_000 <= EVENTS_PAGE_BYTES + 61_000)
  t.equal(page.json.next, page.json.events.at(-1).seq)
})
