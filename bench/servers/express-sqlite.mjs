// The handler Runflow's guide suggests, made as durable as hookrelay:
// Express 5 + express.raw + HMAC verification + a better-sqlite3 upsert
// (WAL, synchronous=FULL: every commit is fsynced before the 200).
// Usage: node bench/servers/express-sqlite.mjs <port> <db file>
import { createHmac, timingSafeEqual } from 'node:crypto'
import express from 'express'
import Database from 'better-sqlite3'

const port = Number(process.argv[2] ?? 8082)
const file = process.argv[3] ?? 'runs.sqlite'
const SECRET = process.env.RUNFLOW_WEBHOOK_SECRET ?? 'whsec_bench_0123456789abcdef'

const db = new Database(file)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = FULL')
db.exec(`CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, event TEXT NOT NULL, status TEXT, body BLOB NOT NULL, received_at TEXT NOT NULL)`)
const upsert = db.prepare(`INSERT INTO runs (run_id, event, status, body, received_at) VALUES (?, ?, ?, ?, ?)
  ON CONFLICT(run_id) DO UPDATE SET event = excluded.event, status = excluded.status, body = excluded.body, received_at = excluded.received_at`)

const app = express()
app.post('/webhook/runflow', express.raw({ type: '*/*', limit: '5mb' }), (req, res) => {
  const given = String(req.get('runflow-signature') ?? '')
  const expected = createHmac('sha256', SECRET).update(req.body).digest('hex')
  if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
    return res.status(401).json({ error: 'bad signature' })
  }
  let evt
  try {
    evt = JSON.parse(req.body.toString('utf8'))
  } catch {
    return res.status(400).json({ error: 'not json' })
  }
  if (!evt.run_id) return res.status(400).json({ error: 'no run_id' })
  upsert.run(evt.run_id, evt.event, evt.status ?? null, req.body, new Date().toISOString())
  res.status(200).json({ ok: true })
})
app.get('/readyz', (_req, res) => res.send('ok'))
app.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'express-sqlite listening', port })))
process.on('SIGTERM', () => {
  db.close()
  process.exit(0)
})
