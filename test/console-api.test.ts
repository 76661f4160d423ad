// The console's server side: the page's headers and size, its JSON endpoints, consumers, config.
import t from 'tap'
import { gzipSync } from 'node:zlib'
import { consoleExtension } from '../src/console/extension.js'
import { CSP } from '../src/console/static-files.js'
import { loadConfigText } from '../src/config/load.js'
import { ConfigError } from '../src/config/load.js'
import { fanoutExtension } from '../src/fanout/hub.js'
import { restartRequired } from '../src/reload-diff.js'
import { get, postRunflow, startTestRelay, testConfig, testConfigYaml, TOKEN, TOKEN_GH } from './helpers/relay.js'
import { connect } from './helpers/ws-conn.js'
import { ensureConsoleBuilt } from './helpers/console-build.js'

ensureConsoleBuilt()

const extensions = () => [fanoutExtension(), consoleExtension()]
const operatorApp = (yaml: string): string => yaml.replace('sources: ["*"]', 'sources: ["*"]\n    role: operator')

async function raw(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(url, { headers })
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) }
}

async function del(url: string, token: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, json: await res.json() }
}

t.test('the page: strict CSP, nosniff, hashed immutable assets, index revalidated, ≤ 150 KB gzipped', async (t) => {
  const { base } = await startTestRelay(t, { relay: { extensions: extensions() } })
  const page = await raw(`${base}/console`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.headers.get('cache-control'), 'no-cache')
  t.equal(page.headers.get('x-content-type-options'), 'nosniff')
  const csp = page.headers.get('content-security-policy') ?? ''
  t.equal(csp, CSP)
  t.match(csp, /script-src 'self'(;|$)/)
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:/, 'no inline script, no eval, no other origin')
  t.match(csp, /default-src 'none'/)
  t.match(csp, /frame-ancestors 'none'/)
  const html = page.body.toString()
  t.notMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'every script has a src: nothing inline')
  t.notMatch(html, /\sstyle=|\son[a-z]+=/i, 'no inline style or handler attributes')
  t.notMatch(html, /https?:\/\//, 'nothing fetched from elsewhere')
  const assets = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!)
  t.equal(assets.length, 2, 'one script, one style sheet')
  t.equal((await raw(`${base}/console/`)).body.toString(), html, 'the trailing slash serves the same page')

  let gzipped = gzipSync(page.body).length
  for (const a of assets) {
    t.match(a, /\/console-[A-Z0-9]{8}\.(js|css)$/, 'named by content hash')
    const r = await raw(`${base}${a}`, { 'accept-encoding': 'gzip' })
    t.equal(r.status, 200)
    t.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    t.equal(r.headers.get('x-content-type-options'), 'nosniff')
    t.match(r.headers.get('content-type'), a.endsWith('.js') ? /^text\/javascript/ : /^text\/css/)
    t.equal(r.headers.get('content-encoding'), 'gzip', 'sent gzipped')
    const text = r.body.toString()
    t.notMatch(text, /(fetch|WebSocket)\(\s*["'`](https?|wss?):/, 'no fetch or socket to another origin')
    // fetch hands over the decoded body; what goes over the wire is its gzip.
    gzipped += gzipSync(r.body, { level: 9 }).length
  }
  t.ok(gzipped <= 150 * 1024, `all files gzipped: ${gzipped} bytes ≤ 150 KB`)

  const head = await fetch(`${base}${assets[0]}`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal((await head.arrayBuffer()).byteLength, 0, 'HEAD: headers only')
  t.ok(Number(head.headers.get('content-length')) > 0)

  const etag = page.headers.get('etag')!
  t.equal((await raw(`${base}/console`, { 'if-none-match': etag })).status, 304, 'revalidation of an unchanged page')
  t.equal((await raw(`${base}/console/assets/console-NOPE.js`)).status, 404)
})

t.test('console.path moves the page; console.enabled: false turns it off; an unbuilt console answers 503', async (t) => {
  const moved = await startTestRelay(t, { relay: { extensions: extensions() }, extra: 'console: { path: /ops/console }' })
  const page = await raw(`${moved.base}/ops/console`)
  t.equal(page.status, 200)
  t.match(page.body.toString(), /src="\/ops\/console\/assets\/console-/, 'asset URLs follow the path')
  t.equal((await raw(`${moved.base}/console`)).status, 404)

  const off = await startTestRelay(t, { relay: { extensions: extensions() }, extra: 'console: { enabled: false }' })
  t.equal((await raw(`${off.base}/console`)).status, 404)
  t.equal((await postRunflow(off.base, '{"event":"run.completed","run_id":"r1","status":"succeeded"}')).status, 200)
  t.equal((await get(`${off.base}/v1/events/1`, TOKEN)).status, 200, 'the JSON endpoints stay')

  const empty = t.testdir()
  const unbuilt = await startTestRelay(t, { relay: { extensions: [fanoutExtension(), consoleExtension({ dir: empty })] } })
  const r = await get(`${unbuilt.base}/console`)
  t.equal(r.status, 503)
  t.equal(r.json.error.code, 'HOOKRELAY_CONSOLE_NOT_BUILT')
})

t.test('console config: unknown keys and bad paths are positioned errors; a changed path needs a restart', async (t) => {
  const bad = (extra: string): string => {
    try {
      loadConfigText(testConfigYaml('/tmp/x', extra), 'c.yaml', { env: {} })
    } catch (e) {
      if (e instanceof ConfigError) return e.format()
      throw e
    }
    return ''
  }
  t.match(bad('console: { enable: true }'), /c\.yaml:\d+:\d+: console\.enable/)
  t.match(bad('console: { path: console }'), /console\.path: "console" is not a plain path/)
  t.match(bad('console: { path: /console/ }'), /console\.path/)
  t.match(bad('console: { path: /v1/console }'), /console\.path: "\/v1\/console" is reserved/)
  const a = testConfig('/tmp/x')
  t.same(a.console, { enabled: true, path: '/console' }, 'defaults: on, at /console')
  t.same(restartRequired(a, testConfig('/tmp/x', 'console: { path: /c }')), ['console'])
})

t.test('GET /v1/events/<seq>: the entry with its headers and revisions, for tokens that may read it', async (t) => {
  const { base } = await startTestRelay(t, { relay: { extensions: extensions() } })
  const v1 = '{"event":"run.completed","run_id":"r1","status":"succeeded"}'
  const v2 = '{"event":"run.completed","run_id":"r1","status":"failed"}'
  t.equal((await postRunflow(base, v1)).status, 200)
  t.equal((await postRunflow(base, '{"event":"run.completed","run_id":"other","status":"succeeded"}')).status, 200)
  t.equal((await postRunflow(base, v2)).status, 200)

  const none = await get(`${base}/v1/events/1`)
  t.equal(none.status, 401)
  t.equal(none.json.error.code, 'HOOKRELAY_API_UNAUTHORIZED')

  const e = await get(`${base}/v1/events/3`, TOKEN)
  t.equal(e.status, 200)
  t.equal(e.headers.get('cache-control'), 'no-store')
  t.match(e.json, { seq: 3, source: 'runflow', event: 'run.completed', key: 'r1', revision: 2, body: v2 })
  t.equal(e.json.headers['content-type'], 'application/json')
  t.match(e.json.headers['runflow-signature'], /^[0-9a-f]{64}$/, 'the signature header kept with the entry')
  t.same(e.json.revisions, [
    { revision: 1, seq: 1 },
    { revision: 2, seq: 3 },
  ])
  t.equal((await get(`${base}/v1/events/1`, TOKEN)).json.body, v1, 'the body byte for byte')

  const hidden = await get(`${base}/v1/events/1`, TOKEN_GH)
  t.equal(hidden.status, 404, 'another source: the same answer as absent')
  t.equal(hidden.json.error.code, 'HOOKRELAY_API_NOT_FOUND')
  t.equal((await get(`${base}/v1/events/99`, TOKEN)).status, 404)
  t.equal((await get(`${base}/v1/events/x1`, TOKEN)).status, 404)
  t.equal((await get(`${base}/v1/events?after=0`, TOKEN)).json.events.length, 3, 'the page of events still answers')
})

t.test('GET /v1/console/session and /v1/console/stats: only what the token reads', async (t) => {
  const { base, relay } = await startTestRelay(t, { relay: { extensions: extensions() } })
  for (const id of ['a', 'b', 'c']) t.equal((await postRunflow(base, `{"event":"run.completed","run_id":"${id}","status":"succeeded"}`)).status, 200)

  t.equal((await get(`${base}/v1/console/session`, 'nope')).status, 401)
  t.match((await get(`${base}/v1/console/session`, TOKEN)).json, { subscriber: 'app', role: 'reader', sources: ['runflow', 'gh'], head: 3, epoch: relay.journal.epoch })
  t.same((await get(`${base}/v1/console/session`, TOKEN_GH)).json.sources, ['gh'])

  t.equal((await get(`${base}/v1/console/stats`)).status, 401)
  const s = (await get(`${base}/v1/console/stats`, TOKEN)).json
  t.match(s, { head: 3, ingested: 3, ack_count: 3 })
  t.ok(s.ack_sum_seconds > 0, 'ack latency summed from the histogram')
  t.ok(s.journal_bytes > 0)
  t.match((await get(`${base}/v1/console/stats`, TOKEN_GH)).json, { ingested: 0, ack_count: 0 }, 'runflow traffic is not counted for a gh-only token')
})

t.test('consumers: listed with lag, deleted by operators, refused while connected', async (t) => {
  const { base, relay } = await startTestRelay(t, { relay: { extensions: extensions() }, edit: operatorApp })
  for (const id of ['a', 'b', 'c']) t.equal((await postRunflow(base, `{"event":"run.completed","run_id":"${id}","status":"succeeded"}`)).status, 200)
  const ws = `ws://127.0.0.1:${relay.port}/v1/stream`

  const app = await connect(t, ws, TOKEN)
  await app.next()
  app.send({ type: 'subscribe', after: 0, consumer: 'billing', ack: true })
  await app.next()
  await app.next()
  app.send({ type: 'ack', seq: 1 })
  const gh = await connect(t, ws, TOKEN_GH)
  await gh.next()
  gh.send({ type: 'subscribe', after: 0, consumer: 'audit' })
  await gh.next()

  t.equal((await get(`${base}/v1/consumers`)).status, 401)
  // The ack lands in memory when the relay reads the frame: ask until it shows (bounded by the check count).
  let all: any
  for (let i = 0; i < 100; i++) {
    all = (await get(`${base}/v1/consumers`, TOKEN)).json
    if (all.consumers.find((c: any) => c.name === 'app/billing')?.acked === 1) break
  }
  t.same(all, {
    head: 3,
    consumers: [
      { name: 'app/billing', subscriber: 'app', consumer: 'billing', acked: 1, lag: 2, connected: true },
      // Entries it may not read move its position without acks.
      { name: 'ghonly/audit', subscriber: 'ghonly', consumer: 'audit', acked: 3, lag: 0, connected: true },
    ],
  }, 'an operator sees every subscriber’s consumers')
  t.same((await get(`${base}/v1/consumers`, TOKEN_GH)).json.consumers.map((c: any) => c.name), ['ghonly/audit'], 'a reader sees its own')

  const forbidden = await del(`${base}/v1/consumers/ghonly/audit`, TOKEN_GH)
  t.equal(forbidden.status, 403)
  t.equal(forbidden.json.error.code, 'HOOKRELAY_API_FORBIDDEN')
  const busy = await del(`${base}/v1/consumers/app/billing`, TOKEN)
  t.equal(busy.status, 409)
  t.equal(busy.json.error.code, 'HOOKRELAY_API_CONSUMER_CONNECTED')
  t.equal((await app.next()).seq, 2, 'the connected consumer keeps going')

  app.ws.close()
  t.not((await app.end()).code, 0, 'the consumer disconnected')
  // The close stores the ack; wait for it on disk so the delete has something to remove there.
  for (let i = 0; i < 100 && (await relay.journal.getCursor('app/billing')) === undefined; i++) await get(`${base}/livez`)
  t.same((await relay.journal.getCursor('app/billing'))?.seq, 1)
  const ok = await del(`${base}/v1/consumers/app/billing`, TOKEN)
  t.equal(ok.status, 200)
  t.same(ok.json, { deleted: 'app/billing' })
  t.equal(await relay.journal.getCursor('app/billing'), undefined, 'removed from the journal')
  t.same((await get(`${base}/v1/consumers`, TOKEN)).json.consumers.map((c: any) => c.name), ['ghonly/audit'])
  const again = await del(`${base}/v1/consumers/app/billing`, TOKEN)
  t.equal(again.status, 404)
  t.equal(again.json.error.code, 'HOOKRELAY_API_NOT_FOUND')

  // The same name coming back is a new consumer: from the start, not from the deleted ack (1).
  const back = await connect(t, ws, TOKEN)
  await back.next()
  back.send({ type: 'subscribe', consumer: 'billing' })
  t.match(await back.next(), { type: 'subscribed', after: 0 })
})
