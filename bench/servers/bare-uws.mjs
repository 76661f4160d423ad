// The ceiling: uWS answering 200 to the POST after reading (and copying) the body.
// Loads the native binary directly, as src/http/uws.ts does (never the pure-JS fallback).
// Usage: node bench/servers/bare-uws.mjs <port>
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const pkgDir = dirname(require.resolve('uWebSockets.js/package.json'))
const uws = require(join(pkgDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`))
const port = Number(process.argv[2] ?? 8081)

uws
  .App()
  .post('/webhook/runflow', (res) => {
    let aborted = false
    const chunks = []
    res.onAborted(() => (aborted = true))
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(new Uint8Array(chunk))) // uWS reuses the chunk: copy it
      if (!isLast || aborted) return
      Buffer.concat(chunks)
      res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end('{"ok":true}'))
    })
  })
  .get('/readyz', (res) => res.end('ok'))
  .listen('127.0.0.1', port, (sock) => {
    if (!sock) {
      console.error(`cannot listen on ${port}`)
      process.exit(1)
    }
    console.log(JSON.stringify({ msg: 'bare-uws listening', port }))
  })
process.on('SIGTERM', () => process.exit(0))
