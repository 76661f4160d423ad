import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { RelayError } from '../src/errors.js'
import { downloadToFile, OriginStatusError } from '../src/mirror/fetch.js'
import { HostGuard } from '../src/mirror/ssrf.js'
import { uuidv7 } from '../src/sample.js'
import {
  eventsOf,
  getRun,
  mirrorConfig,
  postCallback,
  runCallback,
  settled,
  sha256,
  startOrigin,
  startRelay,
  startS3,
  testDir,
  waitForRow,
} from './mirror-harness.js'

// A hang fails in bounded time instead of waiting for tap's global timeout.
t.setTimeout(45_000)

const guard = new HostGuard(['127.0.0.1'])

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (e) {
    return e instanceof RelayError ? e.code : `not a RelayError: ${String(e)}`
  }
}

/** A TCP server that accepts and never says a word (for TLS handshake timeouts). */
async function silentServer(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return (server.address() as { port: number }).port
}

t.test('download: spool file is the body, sha256 and content type reported', async (t) => {
  const origin = await startOrigin(t)
  const body = randomBytes(300_000)
  origin.file('/f.bin', body, 'application/x-test')
  const file = join(t.testdir(), 'f.spool')
  const got = await downloadToFile(origin.url('/f.bin'), file, {
    guard,
    maxBytes: body.length,
    timeouts: { connect_ms: 1000, headers_ms: 1000, total_ms: 5000 },
  })
  t.match(got, { size: body.length, sha256: sha256(body), contentType: 'application/x-test' })
  t.ok(readFileSync(file).equals(body))
})

t.test('download: byte cap, by Content-Length and by counting', async (t) => {
  const origin = await startOrigin(t)
  const dir = t.testdir()
  origin.file('/declared', randomBytes(1001))
  let sentChunked = 0
  origin.route('/chunked', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const timer = setInterval(() => {
      // Never ends by itself: only the cap stops it.
      sentChunked += 400
      if (!res.write(randomBytes(400))) return
    }, 1)
    res.on('close', () => clearInterval(timer))
  })
  const opts = { guard, maxBytes: 1000, timeouts: { connect_ms: 1000, headers_ms: 1000, total_ms: 5000 } }
  t.equal(await codeOf(downloadToFile(origin.url('/declared'), join(dir, 'a'), opts)), 'HOOKRELAY_MIRROR_TOO_LARGE')
  t.equal(await codeOf(downloadToFile(origin.url('/chunked'), join(dir, 'b'), opts)), 'HOOKRELAY_MIRROR_TOO_LARGE')
  t.ok(sentChunked < 1_000_000, 'the download stopped soon after the cap')
})

t.test('download: connect, headers, body-idle and total timeouts', async (t) => {
  const origin = await startOrigin(t)
  const dir = t.testdir()
  origin.route('/no-answer', () => {})
  origin.route('/stall', (_req, res) => {
    res.writeHead(200, { 'content-length': 1000 })
    res.write(Buffer.alloc(10))
  })
  origin.route('/trickle', (_req, res) => {
    res.writeHead(200, { 'content-length': 1_000_000 })
    const timer = setInterval(() => res.write(Buffer.alloc(10)), 20)
    res.on('close', () => clearInterval(timer))
  })
  const silent = await silentServer(t)
  const timeouts = { connect_ms: 150, headers_ms: 150, total_ms: 5000 }

  // Each timeout names itself in the error; one that never fired would hang the
  // test until tap's own timeout fails it. No wall-clock bound here: a loaded
  // machine stretches them all.
  // A TLS handshake that never completes is a connect timeout.
  const tlsGuard = new HostGuard(['127.0.0.1'])
  const e1 = await downloadToFile(`https://127.0.0.1:${silent}/x`, join(dir, 'a'), { guard: tlsGuard, maxBytes: 10, timeouts }).catch((e: RelayError) => e)
  t.match(e1, { code: 'HOOKRELAY_MIRROR_TIMEOUT', message: /connecting/ })

  const e2 = await downloadToFile(origin.url('/no-answer'), join(dir, 'b'), { guard, maxBytes: 10, timeouts }).catch((e: RelayError) => e)
  t.match(e2, { code: 'HOOKRELAY_MIRROR_TIMEOUT', message: /response headers/ })

  const e3 = await downloadToFile(origin.url('/stall'), join(dir, 'c'), { guard, maxBytes: 2000, timeouts }).catch((e: RelayError) => e)
  t.match(e3, { code: 'HOOKRELAY_MIRROR_TIMEOUT', message: /body bytes/ })

  const e4 = await downloadToFile(origin.url('/trickle'), join(dir, 'd'), {
    guard,
    maxBytes: 2_000_000,
    timeouts: { connect_ms: 1000, headers_ms: 1000, total_ms: 300 },
  }).catch((e: RelayError) => e)
  t.match(e4, { code: 'HOOKRELAY_MIRROR_TIMEOUT', message: /took over 300 ms/ })
})

t.test('download: abort, short body, error status', async (t) => {
  const origin = await startOrigin(t)
  const dir = t.testdir()
  origin.route('/slow', (_req, res) => {
    res.writeHead(200, { 'content-length': 100 })
    res.write(Buffer.alloc(10))
  })
  origin.route('/short', (req, res) => {
    res.writeHead(200, { 'content-length': 1000 })
    res.write(Buffer.alloc(500), () => req.socket.destroy())
  })
  origin.route('/gone', (_req, res) => res.writeHead(410).end('gone'))
  const timeouts = { connect_ms: 1000, headers_ms: 5000, total_ms: 5000 }
  const ac = new AbortController()
  const p = downloadToFile(origin.url('/slow'), join(dir, 'a'), { guard, maxBytes: 1000, timeouts, signal: ac.signal })
  await origin.waitForHits('/slow', 1)
  ac.abort()
  t.equal(await codeOf(p), 'HOOKRELAY_MIRROR_ABORTED')
  t.equal(await codeOf(downloadToFile(origin.url('/short'), join(dir, 'b'), { guard, maxBytes: 2000, timeouts })), 'HOOKRELAY_MIRROR_NETWORK')
  const e = await downloadToFile(origin.url('/gone'), join(dir, 'c'), { guard, maxBytes: 2000, timeouts }).catch((x: unknown) => x)
  t.ok(e instanceof OriginStatusError)
  t.equal((e as OriginStatusError).originStatus, 410)
})

t.test('relay: a file over max_bytes fails at once; a timeout is retried until the deadline', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(
    t,
    mirrorConfig(testDir(t, 'data'), s3.endpoint, { max_bytes: '1kb', timeouts: { headers: '100ms' } }),
  )
  const runId = uuidv7()
  origin.file(`/o/${runId}/big.bin`, randomBytes(2000))
  origin.route(`/o/${runId}/hang.bin`, () => {})
  const ok = randomBytes(1000)
  origin.file(`/o/${runId}/ok.bin`, ok)
  const urls = [
    origin.url(`/o/${runId}/big.bin`),
    // Signed 52 s ago, valid 60 s: the deadline is 8 s away (room for a retry on a loaded machine).
    origin.url(`/o/${runId}/hang.bin`, { signedAt: Date.now() - 52_000, expiresS: 60 }),
    origin.url(`/o/${runId}/ok.bin`),
  ]
  t.equal((await postCallback(base, runCallback(runId, { files: urls }))).status, 200)
  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'failed')
  const run = await getRun(base, runId)
  t.match(run.mirror.objects, [
    { index: 0, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_TOO_LARGE', message: /larger than mirror.max_bytes/ } },
    { index: 1, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_TIMEOUT', message: /deadline passed after \d+ attempts: .*response headers/ } },
    { index: 2, state: 'completed', size: 1000, sha256: sha256(ok) },
  ])
  t.equal(origin.hits(`/o/${runId}/big.bin`), 1, 'a permanent error is not retried')
  t.ok(origin.hits(`/o/${runId}/hang.bin`) >= 2, `the timeout was retried (${origin.hits(`/o/${runId}/hang.bin`)} attempts)`)
  t.equal((await eventsOf(base, 'mirror.failed')).length, 2)
})
