import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { uuidv7 } from '../src/sample.js'
import { getRun, mirrorConfig, postCallback, runCallback, settled, startOrigin, startRelay, startS3, testDir, waitForRow } from './mirror-harness.js'

// A hang fails in bounded time instead of waiting for tap's global timeout.
t.setTimeout(45_000)

const MiB = 1024 * 1024
const SIZE_MIB = 200
/** What the mirror may add to RSS while it copies a 200 MB file (it streams; nothing is held whole). */
const RSS_BUDGET = 64 * MiB

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

t.test(`a ${SIZE_MIB} MiB file is mirrored with flat memory`, async (t) => {
  const s3 = await startS3(t)
  const origin = await startOrigin(t)
  const { relay, base } = await startRelay(t, mirrorConfig(testDir(t, 'data'), s3.endpoint, { timeouts: { total: '120s' } }))
  const runId = uuidv7()
  const path = `/o/${runId}/model.safetensors`
  // Generated on the fly: one random MiB, sent SIZE_MIB times with backpressure.
  const block = randomBytes(MiB)
  const expected = createHash('sha256')
  for (let i = 0; i < SIZE_MIB; i++) expected.update(block)
  const expectedSha = expected.digest('hex')
  origin.route(path, (_req, res) => {
    res.writeHead(200, { 'content-length': SIZE_MIB * MiB, 'content-type': 'application/octet-stream' })
    void pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < SIZE_MIB; i++) yield block
        })(),
      ),
      res,
    ).catch(() => {})
  })

  // Warm up first (allocator arenas, s3rver's and the HTTP stacks' first use: ~30 MiB once,
  // whatever the size), so that what is measured is what a 200 MB file costs on a running relay.
  const warmId = uuidv7()
  origin.file(`/o/${warmId}/warm.bin`, randomBytes(8 * MiB))
  t.equal((await postCallback(base, runCallback(warmId, { f: origin.url(`/o/${warmId}/warm.bin`) }))).status, 200)
  await waitForRow(relay, warmId, settled)

  // Origin, s3rver and relay share this process, so the budget covers all three.
  gc()
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 10)
  t.teardown(() => clearInterval(sampler))

  const started = performance.now()
  t.equal((await postCallback(base, runCallback(runId, { weights: origin.url(path) }))).status, 200)
  const row = await waitForRow(relay, runId, settled)
  const seconds = (performance.now() - started) / 1000
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)

  t.equal(row.mirror.state, 'completed')
  const run = await getRun(base, runId)
  t.match(run.mirror.objects[0], { state: 'completed', size: SIZE_MIB * MiB, sha256: expectedSha, key: `runflow/${runId}/0-model.safetensors` })
  const growth = peak - baseline
  t.comment(
    `${SIZE_MIB} MiB mirrored in ${seconds.toFixed(2)} s (${(SIZE_MIB / seconds).toFixed(1)} MiB/s download + upload); ` +
      `RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`,
  )
  t.ok(growth < RSS_BUDGET, `RSS grew ${(growth / MiB).toFixed(1)} MiB (budget ${RSS_BUDGET / MiB} MiB)`)
  const stored = await s3.client.statObject('runflow-outputs', `runflow/${runId}/0-model.safetensors`)
  t.equal(stored.size, SIZE_MIB * MiB)
})
