// The ceiling: uWS answering 200 to the POST after reading (and copying) the body.
// Loads the native binary directly, as src/http/uws.ts does (never the pure-JS fallback).
// Usage: node bench/servers/bare-uws.mjs <port>   (BARE_THREADS=N: N worker threads, each
// its own uWS app listening on the port; uWS binds with SO_REUSEPORT, so the kernel
// spreads the connections over them. BARE_THREADS unset or 1: the main thread alone.)
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Worker, isMainThread, workerData } from 'node:worker_threads'

const require = createRequire(import.meta.url)
const pkgDir = dirname(require.resolve('uWebSockets.js/package.json'))
const uws = require(join(pkgDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`))
const port = isMainThread ? Number(process.argv[2] ?? 8081) : workerData.port
const threads = isMainThread ? Number(process.env.BARE_THREADS ?? 1) : 1

function serve(onListening) {
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
      onListening()
    })
}

if (isMainThread && threads <= 1) serve(() => console.log(JSON.stringify({ msg: 'bare-uws listening', port })))
else if (isMainThread) {
  let up = 0
  for (let i = 0; i < threads; i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { port } })
    w.on('message', () => ++up === threads && console.log(JSON.stringify({ msg: 'bare-uws listening', port, threads })))
  }
}
if (!isMainThread) {
  const { parentPort } = await import('node:worker_threads')
  serve(() => parentPort.postMessage('up'))
}
// uWS apps in worker threads abort node's loop teardown on exit: a multi-threaded server just stops.
process.on('SIGTERM', () => (threads > 1 ? process.kill(process.pid, 'SIGKILL') : process.exit(0)))
