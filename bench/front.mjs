#!/usr/bin/env node
// What the HTTP front costs: bare uWS and bare node:http, each answering 200
// to the same signed 1 KiB POSTs under the same wrk load, alternated, medians.
// (The relay itself, old front against new, is bench/ab.mjs with two dist/ builds.)
//   node bench/front.mjs [rounds=3] [seconds=6]
import { join } from 'node:path'
import { ensureWrk, median, runWrk, startServer, tempDir, waitQuiet, writePool, cleanup } from './lib/common.mjs'

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 6)
const wrk = ensureWrk()
const pool = await writePool(join(tempDir('front'), 'pool.txt'), 100_000)
const res = { bare: [], 'bare-node': [] }
try {
  for (let r = 0; r < rounds; r++) {
    for (const kind of r % 2 === 0 ? ['bare', 'bare-node'] : ['bare-node', 'bare']) {
      await waitQuiet(20_000)
      const s = await startServer(kind)
      await runWrk({ wrk, port: s.port, pool, duration: 1, threads: 1 })
      const x = await runWrk({ wrk, port: s.port, pool, duration: seconds, threads: 1 })
      await s.stop()
      res[kind].push(x.rps)
      console.error(`${kind} ${x.rps.toFixed(0)} req/s p99 ${x.p99.toFixed(2)} ms`)
    }
  }
  const out = { uws_rps: median(res.bare), node_http_rps: median(res['bare-node']) }
  out.node_over_uws = out.node_http_rps / out.uws_rps
  console.log(JSON.stringify({ ...out, runs: res }))
} finally {
  cleanup()
}
