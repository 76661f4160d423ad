// The relay behind a real nginx from Debian: with nginx's defaults (HTTP/1.0 to
// the upstream, request buffering on) and with the README's snippet.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { WebSocket } from 'ws'
import { fanoutExtension } from '../src/fanout/hub.js'
import { sampleRunflowCallback } from '../src/sample.js'
import { debianTool } from './helpers/debian-tool.js'
import { TOKEN, get, postRunflow, startTestRelay } from './helpers/relay.js'

/** The README's nginx block, for a plain-HTTP listener on `port` in front of `relayPort`. */
function readmeSnippet(port: number, relayPort: number): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const block = /```nginx\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!block) throw new Error('README.md has no ```nginx block')
  return block
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${relayPort};`)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port};`)
    .split('\n')
    .filter((l) => !/^\s*ssl_certificate/.test(l))
    .join('\n')
}

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

/** Resolves once something accepts connections on 127.0.0.1:port. */
async function accepting(port: number, exited: () => string | undefined): Promise<void> {
  for (;;) {
    const why = exited()
    if (why !== undefined) throw new Error(`nginx exited: ${why}`)
    const ok = await new Promise<boolean>((r) => {
      const c = createConnection(port, '127.0.0.1')
      c.on('connect', () => (c.destroy(), r(true)))
      c.on('error', () => r(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('behind nginx, with its defaults and with the README snippet', async (t) => {
  const nginx = debianTool('nginx', 'nginx', 'usr/sbin/nginx')
  const { relay } = await startTestRelay(t, { extra: 'rate_limit: { trusted_proxies: ["127.0.0.1"] }', relay: { extensions: [fanoutExtension()] } })
  const dir = t.testdir()
  const [plain, snippet] = [await freePort(), await freePort()]
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # nginx's defaults: proxy_http_version 1.0, request buffering on.
  server {
    listen 127.0.0.1:${plain};
    location / { proxy_pass http://127.0.0.1:${relay.port}; }
  }
${readmeSnippet(snippet, relay.port)}
}
`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const proc = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  let exit: string | undefined
  proc.stderr.on('data', (d) => (stderr += d))
  proc.on('exit', (code, signal) => (exit = `${code ?? signal} ${stderr}`))
  t.teardown(() => proc.kill('SIGKILL'))
  await accepting(plain, () => exit)
  await accepting(snippet, () => exit)

  for (const [name, port] of [
    ['defaults (HTTP/1.0 upstream)', plain],
    ['README snippet', snippet],
  ] as const) {
    const base = `http://127.0.0.1:${port}`
    const bodies = Array.from({ length: 20 }, () => sampleRunflowCallback())
    const answers = await Promise.all(bodies.map((b) => postRunflow(base, b)))
    t.same(
      answers.map((a) => a.status),
      bodies.map(() => 200),
      `${name}: every signed callback acknowledged`,
    )
    t.equal((await postRunflow(base, bodies[0]!)).json.duplicate, true, `${name}: a retry is a duplicate`)
    t.equal((await postRunflow(base, sampleRunflowCallback(), 'wrong-secret')).status, 401, `${name}: unsigned refused`)
  }
  t.equal(relay.journal.head, 40, 'all 40 journaled')
  t.equal((await get(`http://127.0.0.1:${plain}/livez`)).status, 200)

  // The snippet carries the stream too.
  const ws = new WebSocket(`ws://127.0.0.1:${snippet}/v1/stream`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.teardown(() => ws.terminate())
  const welcome = await new Promise<{ type: string; head: number }>((resolve, reject) => {
    ws.once('message', (d) => resolve(JSON.parse(d.toString())))
    ws.once('error', reject)
  })
  t.match(welcome, { type: 'welcome', head: 40 })
})
