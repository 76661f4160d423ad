// Pre-journals `count` signed-looking Runflow callbacks straight into a data dir,
// in-process and in big batches (each batch is one LMDB group commit), so that
// catch-up and start-up can be measured against a large journal quickly.
// Usage: node bench/lib/prejournal.mjs <data_dir> <count> [body bytes=1024]
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { ROOT, makeBody } from './common.mjs'

const { LmdbJournal } = await import(join(ROOT, 'dist/journal/lmdb-journal.js'))
const [dir, countArg, sizeArg] = process.argv.slice(2)
const count = Number(countArg)
const size = Number(sizeArg ?? 1024)
const t0 = performance.now()
const journal = await LmdbJournal.open({ dir, mapSize: 8 * 1024 ** 3, minFree: 0 })
const BATCH = 10_000
const now = Date.now()
for (let at = 0; at < count; at += BATCH) {
  const ps = []
  for (let i = at; i < Math.min(count, at + BATCH); i++) {
    const { runId, body } = makeBody(i, size, now)
    const b = Buffer.from(body)
    ps.push(
      journal.append({
        source: 'runflow',
        event: 'run.completed',
        key: runId,
        status: 'succeeded',
        body: b,
        sha256: createHash('sha256').update(b).digest('hex'),
        receivedAt: now,
        requestId: undefined,
        json: undefined,
      }),
    )
  }
  await Promise.all(ps)
}
const head = journal.head
await journal.close()
console.log(JSON.stringify({ count, head, seconds: (performance.now() - t0) / 1000 }))
