// A destination for the delivery benchmark: answers 200 to every POST, and
// records when each arrived (by the relay's hookrelay-seq header, or a
// counter for the baseline). Reports over IPC: {type:'stats'} → counts and times.
import http from 'node:http'

const port = Number(process.argv[2])
let count = 0
let first = 0
let last = 0
let arrivals = new Map()
const now = () => performance.timeOrigin + performance.now()

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  req.resume()
  req.on('end', () => {
    const t = now()
    if (count === 0) first = t
    last = t
    count++
    const seq = req.headers['hookrelay-seq']
    if (seq !== undefined) arrivals.set(Number(seq), t)
    res.writeHead(200, { 'content-length': 2 })
    res.end('ok')
  })
})
server.listen(port, '127.0.0.1', () => process.send({ type: 'listening' }))
process.on('message', (m) => {
  if (m.type === 'reset') {
    count = 0
    first = last = 0
    arrivals = new Map()
    process.send({ type: 'reset' })
  } else if (m.type === 'stats') {
    process.send({ type: 'stats', count, first, last, arrivals: m.arrivals ? [...arrivals] : undefined })
  }
})
process.on('disconnect', () => process.exit(0))
