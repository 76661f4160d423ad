// Per-request costs of the ingest hot path pieces, one at a time, single thread (µs per call).
// Usage: node bench/micro.mjs   (after npm run build)
import { createHash, createHmac, hash } from 'node:crypto'
import { Histogram, Registry } from 'prom-client'
import { makeBody, sign, SECRET } from './lib/common.mjs'
const { LmdbJournal } = await import('../dist/journal/lmdb-journal.js')
const body = Buffer.from(makeBody(1).body)
const N = 200000
function t(name, f) { for (let i=0;i<20000;i++) f(i); const t0=performance.now(); for (let i=0;i<N;i++) f(i); console.log(name.padEnd(40), ((performance.now()-t0)*1000/N).toFixed(2), 'µs') }
const key = (await import('node:crypto')).createSecretKey(Buffer.from(SECRET))
t('hmac createHmac(KeyObject)', () => createHmac('sha256', key).update(body).digest())
t('sha256 createHash().digest(hex)', () => createHash('sha256').update(body).digest('hex'))
t('sha256 crypto.hash(hex)', () => hash('sha256', body, 'hex'))
t('body.toString + JSON.parse', () => JSON.parse(body.toString('utf8')))
const reg = new Registry(); const h = new Histogram({ name: 'x', help: 'x', labelNames: ['source'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [reg] })
t('histogram.labels(s).observe', () => h.labels('runflow').observe(0.002))
const c = h.labels('runflow')
t('cached child.observe', () => c.observe(0.002))
t('new Date(ms).toISOString()', (i) => new Date(1764227000000 + i).toISOString())
const { mkdtempSync, rmSync } = await import('node:fs')
const dir = mkdtempSync('/work/.micro-')
const j = await LmdbJournal.open({ dir, mapSize: 1 << 30, minFree: 0 })
const stats = () => j.usedBytes
const env = j
let k = 0
// refreshUsage is private: time getStats via a commit of 1 entry vs many is not possible here; time runs.get miss
t('journal.getRun miss (runs.get)', (i) => j.getRun('runflow', 'nope' + (i & 1023)))
await j.close(); rmSync(dir, { recursive: true })
const { open } = await import('lmdb')
const dir2 = mkdtempSync('/work/.micro-'); const e = open({ path: dir2 + '/x.mdb' }); const dbs = ['a','b','c','d'].map(n => e.openDB(n, {}))
t('getStats() on env + 4 dbs (refreshUsage)', () => { e.getStats(); for (const d of dbs) d.getStats() })
await e.close(); rmSync(dir2, { recursive: true })

// GroupCommit (src/journal/group-commit.ts) wraps each entry in env.childTransaction (a bad entry fails alone):
// cost of that nesting, per entry, in batches of 32 entries of 1 KB (events + runs puts).
{
  const dir3 = mkdtempSync('/work/.micro-')
  const e3 = open({ path: dir3 + '/x.mdb', overlappingSync: false, cache: false })
  const ev = e3.openDB('events', { keyEncoding: 'uint32', encoding: 'binary' })
  const runs = e3.openDB('runs', {})
  let seq = 0
  const row = { source: 'runflow', id: 'x', event: 'run.completed', status: 'succeeded', seq: 0, revision: 1, received_at: new Date().toISOString(), revisions: [{ sha256: 'a'.repeat(64), seq: 1, revision: 1 }], mirror: { state: 'none', objects: [] } }
  const put = () => {
    seq++
    ev.putSync(seq, body, { append: true })
    runs.putSync(['runflow', `run-${seq}`], row)
  }
  for (const [name, child] of [['putSync ×2 per entry, plain', false], ['putSync ×2 per entry, in childTransaction', true], ['putSync ×2 per entry, plain', false], ['putSync ×2 per entry, in childTransaction', true]]) {
    const batches = 2000
    let txTime = 0
    for (let b = 0; b < batches; b++) {
      await e3.transaction(() => {
        const t0 = performance.now()
        for (let i = 0; i < 32; i++) child ? e3.childTransaction(put) : put()
        txTime += performance.now() - t0
      })
    }
    console.log(name.padEnd(40), ((txTime * 1000) / (batches * 32)).toFixed(2), 'µs (main thread, inside the transaction callback)')
  }
  await e3.close()
  rmSync(dir3, { recursive: true })
}
