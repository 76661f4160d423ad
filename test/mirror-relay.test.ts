import { randomBytes } from 'node:crypto'
import t from 'tap'
import { MIRROR_QUEUE } from '../src/mirror/outbox.js'
import { sampleRunflowCallback, uuidv7 } from '../src/sample.js'
import {
  BUCKET,
  eventsOf,
  getRun,
  mirrorConfig,
  mirroredRow,
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

t.test('small and 8 MB+ files land byte-exact; run row and events show where', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const small = randomBytes(1000)
  const big = randomBytes(8 * 1024 * 1024 + 12345)
  origin.file(`/outputs/${runId}/image-0.png`, small, 'image/png')
  origin.file(`/outputs/${runId}/video%201.mp4`, big, 'video/mp4')
  const urls = [origin.url(`/outputs/${runId}/image-0.png`), origin.url(`/outputs/${runId}/video%201.mp4`)]
  const body = sampleRunflowCallback({ runId, outputUrls: urls })
  const answer = await postCallback(base, body)
  t.equal(answer.status, 200)

  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  // The small file is confirmed by its PUT's ETag (its MD5), the 8 MB+ one by a stat of its size.
  t.equal(s3.heads(), 1, 'one statObject, for the file over 4 MiB only')

  const run = await getRun(base, runId)
  t.equal(run.mirror.state, 'completed')
  t.equal(run.mirror.objects.length, 2)
  const [o0, o1] = run.mirror.objects
  t.match(o0, {
    index: 0,
    state: 'completed',
    bucket: BUCKET,
    key: `runflow/${runId}/0-image-0.png`,
    size: small.length,
    sha256: sha256(small),
    content_type: 'image/png',
  })
  t.match(o1, {
    index: 1,
    state: 'completed',
    bucket: BUCKET,
    key: `runflow/${runId}/1-video_1.mp4`,
    size: big.length,
    sha256: sha256(big),
  })
  // Byte-exact in the bucket, read back through the S3 API.
  t.same(await s3.objectDigest(`runflow/${runId}/0-image-0.png`), { sha256: sha256(small), size: small.length, contentType: 'image/png' })
  t.match(await s3.objectDigest(`runflow/${runId}/1-video_1.mp4`), { sha256: sha256(big), size: big.length })

  const completed = await eventsOf(base, 'mirror.completed')
  t.equal(completed.length, 2)
  t.match(completed.find((e) => e.index === 1), {
    event: 'mirror.completed',
    source: 'runflow',
    run_id: runId,
    url: urls[1],
    bucket: BUCKET,
    key: `runflow/${runId}/1-video_1.mp4`,
    size: big.length,
    sha256: sha256(big),
    content_type: 'video/mp4',
  })
  t.equal(origin.hits(`/outputs/${runId}/image-0.png`), 1)
  t.equal(origin.hits(`/outputs/${runId}/video%201.mp4`), 1)

  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /hookrelay_mirror_objects_total\{result="completed"\} 2/)
  t.match(metrics, new RegExp(`hookrelay_mirror_bytes_total ${small.length + big.length}`))
  t.match(metrics, /hookrelay_mirror_soonest_deadline_seconds \+Inf/)
})

t.test('several URLs per callback and nested batch outputs, in document order', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const batchId = uuidv7()
  const files = ['a.png', 'b.png', 'c.json', 'd.wav'].map((name) => ({ name, body: randomBytes(2000), path: `/b/${batchId}/${name}` }))
  for (const f of files) origin.file(f.path, f.body)
  const u = files.map((f) => origin.url(f.path))
  const body = JSON.stringify({
    event: 'batch.succeeded',
    batch_id: batchId,
    status: 'succeeded',
    output: {
      items: [
        { run_id: uuidv7(), status: 'succeeded', output: { image_urls: [u[0], u[1]] } },
        { run_id: uuidv7(), status: 'failed', output: null, error: { message: 'see https is not a url' } },
        { run_id: uuidv7(), status: 'succeeded', output: { result: { json_url: u[2], audio: [{ url: u[3] }] } } },
      ],
      succeeded: 2,
      failed: 1,
      cancelled: 0,
      total: 3,
    },
    created_at: '2026-05-06T10:00:00.000+00:00',
    completed_at: '2026-05-06T10:00:09.000+00:00',
    metadata: { note: 'https://not-output.example/ignored' },
  })
  t.equal((await postCallback(base, body)).status, 200)
  const row = await waitForRow(relay, batchId, settled)
  t.equal(row.mirror.state, 'completed')
  t.same(
    row.mirror.objects.map((o) => [o.index, o.key, o.sha256]),
    files.map((f, i) => [i, `runflow/${batchId}/${i}-${f.name}`, sha256(f.body)]),
  )
  for (const [i, f] of files.entries()) {
    t.equal((await s3.objectDigest(`runflow/${batchId}/${i}-${f.name}`)).sha256, sha256(f.body))
  }
})

t.test('an expired URL fails after at most 3 origin hits', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const path = `/outputs/${runId}/old.png`
  origin.route(path, (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>')
  })
  const good = randomBytes(100)
  origin.file(`/outputs/${runId}/fresh.png`, good)
  const expired = origin.url(path, { signedAt: Date.now() - 2 * 3600_000, expiresS: 3600 })
  const body = runCallback(runId, { image_urls: [expired, origin.url(`/outputs/${runId}/fresh.png`)] })
  t.equal((await postCallback(base, body)).status, 200)
  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'failed', 'none open, one failed')
  t.ok(origin.hits(path) >= 1 && origin.hits(path) <= 3, `origin hit ${origin.hits(path)} times`)
  const run = await getRun(base, runId)
  t.match(run.mirror.objects[0], { index: 0, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: /expired.*403/ } })
  t.match(run.mirror.objects[1], { index: 1, state: 'completed', sha256: sha256(good) })
  const failed = await eventsOf(base, 'mirror.failed')
  t.equal(failed.length, 1)
  t.match(failed[0], {
    event: 'mirror.failed', source: 'runflow', run_id: runId, url: expired,
    reason: { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: /403/ },
  })
})

t.test('403/404/410 on a URL valid for an hour end the object in at most 3 origin hits; a fresh URL is still mirrored', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base, log } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const statuses = [403, 404, 410]
  const paths = statuses.map((s) => `/outputs/${runId}/refused-${s}.png`)
  const bytes = paths.map(() => randomBytes(700))
  let refusing = true
  paths.forEach((path, i) => {
    origin.route(path, (_req, res) => {
      if (refusing) res.writeHead(statuses[i]!, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>')
      else res.writeHead(200, { 'content-length': bytes[i]!.length }).end(bytes[i])
    })
  })
  const okPath = `/outputs/${runId}/ok.png`
  const ok = randomBytes(300)
  origin.file(okPath, ok)
  const first = [...paths.map((p) => origin.url(p)), origin.url(okPath)]
  t.equal((await postCallback(base, runCallback(runId, { image_urls: first }))).status, 200)
  let row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'failed', 'none open, some failed: failed')
  for (const path of paths) t.ok(origin.hits(path) >= 1 && origin.hits(path) <= 3, `${path}: origin hit ${origin.hits(path)} times`)
  const run = await getRun(base, runId)
  statuses.forEach((s, i) => {
    t.match(run.mirror.objects[i], {
      index: i, state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: new RegExp(`answered ${s}`) },
    })
  })
  t.match(run.mirror.objects[3], { index: 3, state: 'completed', sha256: sha256(ok) })
  const failed = await eventsOf(base, 'mirror.failed')
  t.same(failed.map((e) => e.index).sort(), [0, 1, 2], 'one mirror.failed per refused object')
  t.equal(log.count('mirror failed'), 3)
  t.match(log.lines.find((l) => l.msg === 'mirror failed'), { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS' })

  // The sender redelivers with freshly signed URLs, which the origin now serves.
  refusing = false
  const hitsBefore = paths.map((p) => origin.hits(p))
  const second = [...paths.map((p) => origin.url(p)), origin.url(okPath)]
  const answer = await postCallback(base, runCallback(runId, { image_urls: second }, { duration_ms: 1235 }))
  t.match(answer.json, { revision: 2 })
  row = await waitForRow(relay, runId, (r) => r.revision === 2 && settled(r))
  t.equal(row.mirror.state, 'completed', 'the fresh URLs were mirrored')
  paths.forEach((p, i) => {
    t.equal(row.mirror.objects[i]?.sha256, sha256(bytes[i]!), `${p}: the fresh URL's bytes`)
    t.equal(origin.hits(p) - hitsBefore[i]!, 1, `${p}: fetched once more`)
  })
  t.equal(row.mirror.objects[3]?.url, first[3], 'the completed object is left alone')
  t.equal((await eventsOf(base, 'mirror.failed')).length, 3, 'no further mirror.failed')
})

t.test('origin 5xx is retried with backoff, then succeeds', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base, log } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const path = `/outputs/${runId}/flaky.bin`
  const bytes = randomBytes(50_000)
  origin.route(path, (_req, res) => {
    if (origin.hits(path) <= 2) res.writeHead(503).end('try later')
    else res.writeHead(200, { 'content-length': bytes.length }).end(bytes)
  })
  t.equal((await postCallback(base, runCallback(runId, { file: origin.url(path) }))).status, 200)
  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.equal(origin.hits(path), 3)
  t.equal(row.mirror.objects[0]?.sha256, sha256(bytes))
  t.equal(log.count('mirror attempt failed; will retry'), 2)
  t.match(log.lines.find((l) => l.msg === 'mirror attempt failed; will retry'), { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS' })
})

t.test('a redelivery with fresh URLs: pending objects take the new URL, completed ones stay', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const okPath = `/outputs/${runId}/ok.png`
  const slowPath = `/outputs/${runId}/late.png`
  const ok = randomBytes(300)
  const late = randomBytes(400)
  origin.file(okPath, ok)
  // The first URL of `late.png` expired already and its origin says so.
  origin.route(slowPath, (req, res) => {
    if ((req.url ?? '').includes('X-Amz-Expires=1&')) res.writeHead(403).end()
    else res.writeHead(200, { 'content-length': late.length }).end(late)
  })
  const first = [origin.url(okPath), origin.url(slowPath, { signedAt: Date.now() - 10_000, expiresS: 1 })]
  t.equal((await postCallback(base, runCallback(runId, { image_urls: first }))).status, 200)
  let row = await waitForRow(relay, runId, settled)
  t.same(row.mirror.objects.map((o) => o.state), ['completed', 'failed'])

  const second = [origin.url(okPath), origin.url(slowPath)]
  const answer = await postCallback(base, runCallback(runId, { image_urls: second }, { duration_ms: 1235 }))
  t.match(answer.json, { revision: 2 })
  row = await waitForRow(relay, runId, (r) => r.revision === 2 && settled(r))
  t.equal(row.mirror.state, 'completed')
  t.equal(row.mirror.objects[0]?.url, first[0], 'completed object keeps the URL it was mirrored from')
  t.equal(row.mirror.objects[1]?.url, second[1], 'failed object took the fresh URL')
  t.equal(row.mirror.objects[1]?.sha256, sha256(late))
  t.equal(origin.hits(okPath), 1, 'completed object not fetched again')
  t.equal((await eventsOf(base, 'mirror.completed')).length, 2)
})

t.test('a redelivery while the download is in flight: one transfer, one event, the fresh job dropped', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const path = `/o/${runId}/r.bin`
  const bytes = randomBytes(5000)
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  origin.route(path, (_req, res) => {
    void released.then(() => res.writeHead(200, { 'content-length': bytes.length }).end(bytes))
  })
  const first = origin.url(path)
  t.equal((await postCallback(base, runCallback(runId, { f: first }))).status, 200)
  await origin.waitForHits(path, 1)
  const fresh = origin.url(path, { expiresS: 7200 })
  t.match((await postCallback(base, runCallback(runId, { f: fresh }, { duration_ms: 99 }))).json, { revision: 2 })
  t.equal((await mirroredRow(relay, runId))?.mirror.objects[0]?.url, fresh, 'the pending object took the fresh URL')
  release()
  const row = await waitForRow(relay, runId, settled)
  t.match(row.mirror.objects, [{ state: 'completed', url: fresh, sha256: sha256(bytes) }])
  t.equal(origin.hits(path), 1, 'not downloaded again for the fresh URL')
  t.equal((await eventsOf(base, 'mirror.completed')).length, 1)
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /hookrelay_mirror_jobs\{state="queued"\} 0/)
  t.match(metrics, /hookrelay_mirror_jobs\{state="retrying"\} 0/)
})

t.test('earliest deadline first, bounded concurrency; metrics show jobs by state', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint, { concurrency: 1 }))
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  const blockId = uuidv7()
  origin.route(`/o/${blockId}/block.bin`, (_req, res) => {
    void released.then(() => res.writeHead(200, { 'content-length': 1 }).end('x'))
  })
  t.equal((await postCallback(base, runCallback(blockId, { f: origin.url(`/o/${blockId}/block.bin`) }))).status, 200)
  await origin.waitForHits(`/o/${blockId}/block.bin`, 1)

  const order: number[] = []
  const ids: string[] = []
  for (const expiresS of [3000, 1000, 2000]) {
    const id = uuidv7()
    ids.push(id)
    origin.route(`/o/${id}/f.bin`, (_req, res) => {
      order.push(expiresS)
      res.writeHead(200, { 'content-length': 1 }).end('y')
    })
    t.equal((await postCallback(base, runCallback(id, { f: origin.url(`/o/${id}/f.bin`, { expiresS }) }))).status, 200)
  }
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /hookrelay_mirror_jobs\{state="active"\} 1/)
  t.match(metrics, /hookrelay_mirror_jobs\{state="queued"\} 3/)
  const soonest = Number(/^hookrelay_mirror_soonest_deadline_seconds (\S+)$/m.exec(metrics)?.[1])
  t.ok(soonest > 990 && soonest <= 1000, `soonest deadline in ${soonest} s`)

  release()
  for (const id of ids) await waitForRow(relay, id, settled)
  t.same(order, [1000, 2000, 3000], 'taken earliest deadline first')
})

t.test('mirror disabled: no hook, no jobs', async (t) => {
  const { Relay } = await import('../src/relay.js')
  const { mirrorExtension } = await import('../src/mirror/worker.js')
  const { loadConfigText } = await import('../src/config/load.js')
  const { pino } = await import('pino')
  const config = loadConfigText(
    `listen: { host: 127.0.0.1, port: 0 }\ndata_dir: ${JSON.stringify(testDir(t, 'data'))}\nsources:\n  runflow:\n    verify: { scheme: runflow, secrets: [whsec_x] }\n`,
    '<t>',
    { env: {} },
  )
  const relay = await Relay.start(config, { extensions: [mirrorExtension()], logger: pino({ level: 'silent' }), processMetrics: false })
  t.teardown(() => relay.close())
  t.equal(relay.component('mirror'), undefined, 'no mirror component was started')
  // A callback whose output holds URLs: with the mirror off, the run row tracks no objects.
  const { sampleRunflowCallback } = await import('../src/sample.js')
  const { signRunflow } = await import('../src/verify/sign.js')
  const body = sampleRunflowCallback()
  const runId = JSON.parse(body).run_id as string
  const base = `http://127.0.0.1:${relay.port}`
  const a = await fetch(`${base}/webhook/runflow`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...signRunflow('whsec_x', body) } })
  t.equal(a.status, 200)
  const row = await relay.journal.getRun('runflow', runId)
  t.same(row?.parts, {}, 'no objects: the run row has no mirror part')
  t.same(await relay.journal.jobs(MIRROR_QUEUE), [], 'no jobs')
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.notMatch(metrics, /hookrelay_mirror_/)
})
