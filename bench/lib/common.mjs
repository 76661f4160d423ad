// Shared helpers for the benchmark harness: temp dirs, servers, wrk, RSS, stats.
// Everything listens on 127.0.0.1 only; every process started here is killed by pid.
import { fork, spawn, spawnSync, execFileSync } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, rmdirSync, readFileSync, writeFileSync, createWriteStream, existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import http from 'node:http'

export const BENCH = dirname(dirname(fileURLToPath(import.meta.url)))
export const ROOT = dirname(BENCH)
export const SECRET = 'whsec_bench_0123456789abcdef'
export const TOKEN = 'bench-token-0123456789abcdef'
export const PATH = '/webhook/runflow'
export const HOST = '127.0.0.1'

/** Temp dirs live on the same disk as the repo (fsync must hit the same device). */
const TMP_ROOT = process.env.HOOKRELAY_BENCH_TMP ?? join(ROOT, '..', '.hookrelay-bench-tmp')
const made = new Set()
const children = new Set()

export function tempDir(prefix) {
  execFileSync('mkdir', ['-p', TMP_ROOT])
  const d = mkdtempSync(join(TMP_ROOT, `${prefix}-`))
  made.add(d)
  return d
}

export function removeDir(d) {
  rmSync(d, { recursive: true, force: true })
  made.delete(d)
}

export function cleanup() {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL')
    } catch {}
  }
  children.clear()
  for (const d of made) rmSync(d, { recursive: true, force: true })
  made.clear()
  try {
    rmdirSync(TMP_ROOT) // only when empty: another harness run may be using it
  } catch {}
}
process.on('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130))

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, HOST, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * A ~1 KB Runflow-shaped callback (the sample of src/sample.ts padded with
 * metadata to exactly `size` bytes), unique by run id.
 */
export function makeBody(i, size = 1024, now = Date.now()) {
  const runId = `0193${(i >>> 0).toString(16).padStart(8, '0')}-${randomBytes(2).toString('hex')}-7${randomBytes(2).toString('hex').slice(1)}-8${randomBytes(2).toString('hex').slice(1)}-${randomBytes(6).toString('hex')}`
  const iso = new Date(now).toISOString().replace('Z', '+00:00')
  const url = `https://storage.example/outputs/${runId}/image-0.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261127T070050Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=${randomBytes(32).toString('hex')}`
  const head = `{"event":"run.completed","run_id":"${runId}","status":"succeeded","output":{"image_urls":["${url}"]},"duration_ms":102345,"created_at":"${iso}","completed_at":"${iso}","metadata":{"pipeline":"bench","note":"`
  const tail = '"}}'
  const pad = Math.max(0, size - head.length - tail.length)
  return { runId, body: head + 'x'.repeat(pad) + tail }
}

export function sign(body) {
  return createHmac('sha256', SECRET).update(body).digest('hex')
}

/**
 * Writes `n` pre-signed unique bodies, one `sig body` per line, for wrk's Lua
 * script (LuaJIT has no HMAC; precomputing keeps the load generator cheap).
 */
export async function writePool(file, n, size = 1024) {
  const out = createWriteStream(file)
  let buf = ''
  for (let i = 0; i < n; i++) {
    const { body } = makeBody(i, size)
    buf += `${sign(body)} ${body}\n`
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r))
      buf = ''
    }
  }
  out.write(buf)
  await new Promise((r) => out.end(r))
  return file
}

/** `role` only for builds that know the key (ab.mjs runs older ones). */
export function writeRelayConfig(dir, port, extra = '', role = undefined) {
  const dataDir = join(dir, 'data')
  const file = join(dir, 'hookrelay.yaml')
  writeFileSync(
    file,
    `listen: { host: ${HOST}, port: ${port} }
data_dir: ${dataDir}
sources:
  runflow:
    path: ${PATH}
    verify: { scheme: runflow, secrets: ["${SECRET}"] }
    max_body: 5mb
subscribers:
  - name: bench
    token: ${TOKEN}
    sources: ["*"]${role ? `\n    role: ${role}` : ''}
mirror:
  enabled: false
log: { level: warn }
${extra}`,
  )
  return { file, dataDir }
}

function get(port, path) {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    })
    req.on('error', () => resolve(0))
    req.on('timeout', () => {
      req.destroy()
      resolve(0)
    })
  })
}

/**
 * Starts a server process and waits until GET /readyz answers 200.
 * kind: 'bare' | 'bare-node' | 'express' | 'hookrelay'. Returns { pid, port, readyMs, stop() }.
 */
export async function startServer(kind, { port, dir, nodeArgs = [], env = {}, configExtra = '', role, dist = join(ROOT, 'dist') } = {}) {
  port ??= await freePort()
  let args
  if (kind === 'hookrelay') {
    dir ??= tempDir('relay')
    const { file } = writeRelayConfig(dir, port, configExtra, role)
    args = [...nodeArgs, join(dist, 'cli.js'), 'serve', '--config', file]
  } else if (kind === 'bare') {
    args = [...nodeArgs, join(BENCH, 'servers/bare-uws.mjs'), String(port)]
  } else if (kind === 'bare-node') {
    args = [...nodeArgs, join(BENCH, 'servers/bare-node.mjs'), String(port)]
  } else if (kind === 'express') {
    dir ??= tempDir('express')
    args = [...nodeArgs, join(BENCH, 'servers/express-sqlite.mjs'), String(port), join(dir, 'runs.sqlite')]
  } else throw new Error(`unknown server ${kind}`)
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { cwd: dir ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  children.add(child)
  let out = ''
  child.stdout.on('data', (d) => (out = (out + d).slice(-8000)))
  child.stderr.on('data', (d) => (out = (out + d).slice(-8000)))
  let exited = false
  const exit = new Promise((r) => child.on('exit', (code, sig) => ((exited = true), r({ code, sig }))))
  for (;;) {
    if (exited) throw new Error(`${kind} exited before ready:\n${out}`)
    if ((await get(port, '/readyz')) === 200) break
    if (performance.now() - t0 > 60_000) throw new Error(`${kind} not ready in 60 s:\n${out}`)
    await sleep(5)
  }
  const readyMs = performance.now() - t0
  return {
    kind,
    pid: child.pid,
    port,
    dir,
    readyMs,
    output: () => out,
    exit,
    async stop(signal = 'SIGTERM') {
      if (!exited) {
        child.kill(signal)
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000)
        await exit
        clearTimeout(t)
      }
      children.delete(child)
    },
  }
}

/**
 * Resident set size of a process in MB (VmRSS), or NaN when it is gone.
 * With `field: 'RssAnon'`: the anonymous part only (heap, buffers), without
 * file-backed pages such as LMDB's read-only memory map and the node binary.
 */
export function rssMB(pid, field = 'VmRSS') {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** Samples VmRSS and RssAnon every `ms` until stopped; returns their maxima. */
export function rssSampler(pid, ms = 200) {
  const rss = []
  const anon = []
  const take = () => {
    rss.push(rssMB(pid))
    anon.push(rssMB(pid, 'RssAnon'))
  }
  const t = setInterval(take, ms)
  return {
    stop() {
      clearInterval(t)
      take()
      const max = (xs) => Math.max(...xs.filter((x) => !Number.isNaN(x)))
      return { max: max(rss), anonMax: max(anon), samples: rss.length }
    },
  }
}

/** Flushes dirty pages (pools, pre-journaled data) so writeback does not disturb the next fsync-bound run. */
export function syncDisks() {
  spawnSync('sync')
}

/** Busy CPU seconds (user + system) of the whole machine so far (all cores, from /proc/stat). */
export function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system (irq and softirq left out: loopback traffic of the benchmark itself lands there)
  return (f[0] + f[1] + f[2]) / 100
}

/**
 * Waits (at most maxMs) until the machine has been nearly idle for one second
 * (other users of this VM run test suites): busy < `threshold` CPU seconds per second.
 * Returns { waited_s, busy } — the busy fraction of the last second sampled.
 */
export async function waitQuiet(maxMs = 20_000, threshold = 0.15) {
  const t0 = performance.now()
  for (;;) {
    const b0 = machineBusySeconds()
    await sleep(1000)
    const busy = machineBusySeconds() - b0
    if (busy < threshold || performance.now() - t0 > maxMs) {
      return { waited_s: Math.round((performance.now() - t0) / 100) / 10, busy: Math.round(busy * 100) / 100 }
    }
  }
}

/** CPU seconds (user+sys) a process used so far. */
export function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return Number.NaN
  }
}

export function findWrk() {
  const r = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** Finds wrk, else installs it from Debian (root only), else undefined (use autocannon). */
export function ensureWrk(log = console.error) {
  let wrk = findWrk()
  if (wrk) return wrk
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    log('wrk not found: apt-get install -y wrk')
    spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk'], { stdio: 'inherit' })
    wrk = findWrk()
  }
  return wrk
}

/**
 * Runs wrk with the signed-POST Lua script. Returns
 * { rps, requests, p50, p90, p99, max (ms), errors, non2xx, wrapped }.
 */
export function runWrk({ wrk, port, pool, duration, connections = 64, threads = 2, timeout = '10s' }) {
  return new Promise((resolve, reject) => {
    const args = [
      `-t${threads}`,
      `-c${connections}`,
      `-d${duration}s`,
      `--timeout`,
      timeout,
      '-s',
      join(BENCH, 'lib/post.lua'),
      `http://${HOST}:${port}${PATH}`,
      '--',
      pool,
      String(threads),
    ]
    const child = spawn(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    // wrk's own CPU, read just before it ends (its /proc entry is gone afterwards).
    let wrkCpu = Number.NaN
    const probe = setTimeout(() => (wrkCpu = cpuSeconds(child.pid)), Math.max(0, duration * 1000 - 150))
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => {
      children.delete(child)
      clearTimeout(probe)
      const line = out.split('\n').find((l) => l.startsWith('WRKJSON '))
      if (!line) return reject(new Error(`wrk failed (${code}): ${out}\n${err}`))
      const j = JSON.parse(line.slice(8))
      resolve({
        rps: j.requests / (j.duration_us / 1e6),
        requests: j.requests,
        p50: j.p50 / 1000,
        p90: j.p90 / 1000,
        p99: j.p99 / 1000,
        max: j.max / 1000,
        errors: j.connect + j.read + j.write + j.timeout,
        non2xx: j.status,
        wrapped: j.wrapped,
        wrk_cpu_s: wrkCpu,
      })
    })
  })
}

/** Runs autocannon (npx) as the fallback closed-loop generator with one pre-signed body. */
export function runAutocannon({ port, duration, connections = 64 }) {
  const { body } = makeBody(0)
  const r = spawnSync(
    'npx',
    ['--yes', 'autocannon', '-j', '-c', String(connections), '-d', String(duration), '-m', 'POST', '-H', `runflow-signature=${sign(body)}`, '-H', 'content-type=application/json', '-b', body, `http://${HOST}:${port}${PATH}`],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  )
  const j = JSON.parse(r.stdout)
  return {
    rps: j.requests.average,
    requests: j.requests.total,
    p50: j.latency.p50,
    p90: j.latency.p90,
    p99: j.latency.p99,
    max: j.latency.max,
    errors: j.errors + j.timeouts,
    non2xx: j.non2xx,
    wrapped: 'all duplicates after the first (autocannon sends one body)',
  }
}

/** Runs a Node script as a child and resolves with the last JSON line it prints. */
export function runNodeJson(script, args, { nodeArgs = [], onChild } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    onChild?.(child)
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => {
      children.delete(child)
      const last = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)
      if (code !== 0 || !last) return reject(new Error(`${script} exited ${code}: ${out}\n${err}`))
      resolve(JSON.parse(last))
    })
  })
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

export function trackChild(child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

export function machine() {
  const sh = (c) => spawnSync('sh', ['-c', c], { encoding: 'utf8' }).stdout.trim()
  return {
    node: process.version,
    cpu: sh("lscpu | sed -n 's/^Model name:[ ]*//p' | head -1"),
    cores: Number(sh('nproc')),
    mem: sh("free -h | awk '/^Mem:/{print $2}'"),
    kernel: sh('uname -r'),
    disk: sh(`df -h ${ROOT} | tail -1 | awk '{print $1" "$2}'`),
    // the code measured: dist/ is built from this commit (plus this many modified files under src/)
    commit: sh(`git -C ${ROOT} rev-parse --short HEAD`),
    src_modified: Number(sh(`git -C ${ROOT} status --porcelain -- src | wc -l`)),
    dist_built: sh(`date -u -r ${ROOT}/dist/cli.js +%Y-%m-%dT%H:%M:%SZ`),
    date: new Date().toISOString(),
  }
}

/**
 * Forks bench/lib/subscribers.mjs; returns { child, next(type) } where next()
 * resolves with the next IPC message of that type.
 */
export function forkSubscribers(opts) {
  const child = fork(join(BENCH, 'lib/subscribers.mjs'), [JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  const inbox = []
  const waiting = []
  child.on('message', (m) => {
    const w = waiting.findIndex((x) => x.type === m.type)
    if (w >= 0) waiting.splice(w, 1)[0].resolve(m)
    else inbox.push(m)
  })
  return {
    child,
    inbox,
    next(type, timeoutMs = 120_000) {
      const i = inbox.findIndex((m) => m.type === type)
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0])
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${type} from subscribers in ${timeoutMs} ms: ${JSON.stringify(inbox)}`)), timeoutMs)
        waiting.push({ type, resolve: (m) => (clearTimeout(t), resolve(m)) })
      })
    },
    async exit() {
      if (child.exitCode !== null) return
      const gone = new Promise((r) => child.once('exit', r))
      child.send({ type: 'exit' })
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(t)
    },
  }
}
