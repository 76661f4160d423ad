// A plain client loop in a process of its own: POSTs `count` ~1 KiB bodies to
// `url` over a node:http keep-alive Agent, `parallel` at a time, and reports
// { type: 'done', rate, cpu_us_per_request } over IPC. bench/destinations.mjs
// runs two of these at once to find what its sink alone can take.
//
//   fork('bench/lib/http-loop.mjs', [url, count, parallel])
import http from 'node:http'
import { makeBody } from './common.mjs'

const [url, count, parallel] = [new URL(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])]
const bodies = Array.from({ length: Math.min(count, 5000) }, (_, i) => Buffer.from(makeBody(i).body))
const agent = new http.Agent({ keepAlive: true, maxSockets: parallel })

function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (res) => {
        res.resume()
        res.on('end', resolve)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

process.once('message', async () => {
  let i = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (i < count) await post(bodies[i++ % bodies.length])
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  agent.destroy()
  process.send({ type: 'done', rate: count / seconds, seconds, cpu_us_per_request: (cpu.user + cpu.system) / count })
})
process.send({ type: 'ready' })
process.on('disconnect', () => process.exit(0))
