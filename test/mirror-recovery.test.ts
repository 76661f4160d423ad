import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { uuidv7 } from '../src/sample.js'
import { MEMORY_MAX_BYTES } from '../src/mirror/worker.js'
import { spawnRelay, writeConfig } from './helpers/spawn.js'
import {
  eventsOf,
  mirrorConfig,
  mirrorConfigYaml,
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

const RETRY_LOG = 'mirror attempt failed; will retry'

t.test('S3 down during the upload, started again: mirrored from the spool, downloaded once', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const dataDir = testDir(t, 'data')
  const { relay, base, log } = await startRelay(t, mirrorConfig(dataDir, s3.endpoint))
  const runId = uuidv7()
  const bytes = randomBytes(3 * 1024 * 1024)
  origin.file(`/o/${runId}/out.bin`, bytes)

  const outage = s3.failNextPut()
  t.equal((await postCallback(base, runCallback(runId, { file: origin.url(`/o/${runId}/out.bin`) }))).status, 200)
  await outage
  // The interrupted upload, then at least one attempt against the stopped store.
  await log.waitFor(RETRY_LOG, 2)
  t.match(log.lines.find((l) => l.msg === RETRY_LOG), { code: 'HOOKRELAY_MIRROR_STORE_UNAVAILABLE' })
  t.equal((await mirroredRow(relay, runId))?.mirror.state, 'pending')
  t.equal(readdirSync(join(dataDir, 'spool')).length, 1, 'the download waits in the spool')

  await s3.start()
  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.equal(origin.hits(`/o/${runId}/out.bin`), 1, 'not downloaded again')
  t.equal((await s3.objectDigest(`runflow/${runId}/0-out.bin`)).sha256, sha256(bytes))
  t.same(readdirSync(join(dataDir, 'spool')), [], 'spool emptied once the upload is confirmed')
})

t.test('relay closed mid-download and restarted on the same data_dir: mirrored once', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const dataDir = testDir(t, 'data')
  const config = mirrorConfig(dataDir, s3.endpoint)
  const first = await startRelay(t, config)
  const runId = uuidv7()
  const path = `/o/${runId}/big.bin`
  const bytes = randomBytes(2 * 1024 * 1024)
  let halfSent!: () => void
  const half = new Promise<void>((resolve) => (halfSent = resolve))
  origin.route(path, (_req, res) => {
    res.writeHead(200, { 'content-length': bytes.length, 'content-type': 'application/octet-stream' })
    if (origin.hits(path) === 1) {
      // The first attempt stalls halfway, as if the file were huge; the relay goes down meanwhile.
      res.write(bytes.subarray(0, bytes.length / 2), () => halfSent())
    } else {
      res.end(bytes)
    }
  })
  t.equal((await postCallback(first.base, runCallback(runId, { file: origin.url(path) }))).status, 200)
  await half
  await first.relay.close()
  t.equal(origin.hits(path), 1)

  const second = await startRelay(t, config)
  t.equal((await mirroredRow(second.relay, runId))?.mirror.state, 'pending', 'the job survived the restart')
  const row = await waitForRow(second.relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.equal(row.mirror.objects[0]?.sha256, sha256(bytes))
  t.equal(origin.hits(path), 2)
  t.equal((await eventsOf(second.base, 'mirror.completed')).length, 1, 'exactly one mirror.completed')
  t.equal((await s3.objectDigest(`runflow/${runId}/0-big.bin`)).sha256, sha256(bytes))
  t.same(readdirSync(join(dataDir, 'spool')), [])
})

t.test('downloaded, S3 down, relay restarted: the upload resumes from the spool', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const dataDir = testDir(t, 'data')
  const config = mirrorConfig(dataDir, s3.endpoint)
  const first = await startRelay(t, config)
  const runId = uuidv7()
  const bytes = randomBytes(100_000)
  origin.file(`/o/${runId}/a.bin`, bytes)
  await s3.stop()
  t.equal((await postCallback(first.base, runCallback(runId, { file: origin.url(`/o/${runId}/a.bin`) }))).status, 200)
  await first.log.waitFor(RETRY_LOG)
  await first.relay.close()
  // 100 kB is held in memory for the upload; the failed upload wrote it to the spool and noted it on the job.
  t.equal(readdirSync(join(dataDir, 'spool')).length, 1, 'the held bytes were spooled when the upload failed')
  await s3.start()

  const second = await startRelay(t, config)
  const row = await waitForRow(second.relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.equal(origin.hits(`/o/${runId}/a.bin`), 1, 'the spooled download was used after the restart')
  t.equal((await s3.objectDigest(`runflow/${runId}/0-a.bin`)).sha256, sha256(bytes))
  t.equal((await eventsOf(second.base, 'mirror.completed')).length, 1)
})

t.test('a bucket that is missing at start is created; unreachable S3 at start does not stop the relay', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  await s3.stop()
  const { relay, base, log } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  await log.waitFor('mirror bucket unavailable; jobs wait until it is')
  const runId = uuidv7()
  const bytes = randomBytes(1000)
  origin.file(`/o/${runId}/x.bin`, bytes)
  t.equal((await postCallback(base, runCallback(runId, { file: origin.url(`/o/${runId}/x.bin`) }))).status, 200)
  await log.waitFor(RETRY_LOG)
  t.match(log.lines.find((l) => l.msg === RETRY_LOG), { code: 'HOOKRELAY_MIRROR_BUCKET' })
  await s3.start()
  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.ok(await s3.client.bucketExists('runflow-outputs'))
})

t.test('the store answering 503 to an upload: retried from the spool, no second download', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base, log } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint))
  const runId = uuidv7()
  const bytes = randomBytes(10_000)
  origin.file(`/o/${runId}/s.bin`, bytes)
  s3.rejectPuts(2, 503, 'SlowDown')
  t.equal((await postCallback(base, runCallback(runId, { file: origin.url(`/o/${runId}/s.bin`) }))).status, 200)
  const row = await waitForRow(relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.equal(origin.hits(`/o/${runId}/s.bin`), 1)
  const retries = log.lines.filter((l) => l.msg === RETRY_LOG)
  t.equal(retries.length, 2)
  t.match(retries[0], { code: 'HOOKRELAY_MIRROR_STORE_STATUS', err: /503: SlowDown/ })
})

t.test('killed (SIGKILL) while uploading a small object held in memory: the job is redone after the restart, stored once', async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const dataDir = testDir(t, 'data')
  // The built relay in its own process, as `hookrelay serve` runs it.
  const first = await spawnRelay(writeConfig(testDir(t, 'conf'), mirrorConfigYaml(dataDir, s3.endpoint, { log: 'info' })))
  t.teardown(() => first.child.kill('SIGKILL'))
  const runId = uuidv7()
  const path = `/o/${runId}/small.bin`
  const bytes = randomBytes(200_000)
  t.ok(bytes.length <= MEMORY_MAX_BYTES, 'small enough to be held in memory')
  origin.file(path, bytes)
  const uploading = s3.holdNextPut()
  t.equal((await postCallback(first.base, runCallback(runId, { file: origin.url(path) }))).status, 200)
  await uploading
  t.same(readdirSync(join(dataDir, 'spool')), [], 'held in memory: nothing was spooled')
  first.child.kill('SIGKILL')
  t.match(await first.exited, { signal: 'SIGKILL' })

  const second = await startRelay(t, mirrorConfig(dataDir, s3.endpoint))
  const row = await waitForRow(second.relay, runId, settled)
  t.equal(row.mirror.state, 'completed')
  t.equal(row.mirror.objects[0]?.sha256, sha256(bytes))
  t.equal(origin.hits(path), 2, 'downloaded again: the bytes in memory died with the process, the job did not')
  t.equal((await eventsOf(second.base, 'mirror.completed')).length, 1, 'exactly one mirror.completed')
  t.equal((await s3.objectDigest(`runflow/${runId}/0-small.bin`)).sha256, sha256(bytes))
  t.same(readdirSync(join(dataDir, 'spool')), [])
})
