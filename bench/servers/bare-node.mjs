// The ceiling of the HTTP front the relay now uses: node:http answering 200 to
// the POST after reading the body (the same work as bare-uws.mjs).
// Usage: node bench/servers/bare-node.mjs <port>
import http from 'node:http'

const port = Number(process.argv[2] ?? 8082)
const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') return res.end('ok')
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    Buffer.concat(chunks)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 })
    res.end('{"ok":true}')
  })
})
server.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'bare-node listening', port })))
process.on('SIGTERM', () => process.exit(0))
