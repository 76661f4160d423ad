// Real nats-server processes for the JetStream backend's tests: a cluster of
// JetStream nodes on loopback ports, each with its own storage directory,
// which a test can kill (SIGKILL a leader) and start again on the same ports
// and storage.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { debianTool } from './debian-tool.js'

/** Oldest nats-server the tests accept: `sync_interval` (fsync before each PubAck) came with 2.10. */
const MIN_VERSION = [2, 10]

/** The `nats-server` binary: Debian 13's package (2.10, a static binary that runs on Debian 12) unless PATH has ≥ 2.10. */
export function natsServerBin(): string {
  return debianTool('nats-server', 'nats-server', 'usr/sbin/nats-server', {
    suite: 'trixie',
    acceptOnPath: (path) => versionAtLeast(natsServerVersion(path), MIN_VERSION),
  })
}

export function natsServerVersion(bin: string): number[] {
  const out = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout ?? ''
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(out)
  return m === null ? [0, 0, 0] : [Number(m[1]), Number(m[2]), Number(m[3])]
}

function versionAtLeast(v: number[], min: number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!
  }
  return true
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as { port: number }
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

export interface NatsNode {
  name: string
  /** Client port. */
  port: number
  url: string
  monitorPort: number
  clusterPort: number
  storeDir: string
  configFile: string
  /** The running process, undefined while the node is stopped. */
  proc: ChildProcess | undefined
  /** Everything the process wrote to stderr since its last start. */
  log: string
}

export interface NatsCluster {
  nodes: NatsNode[]
  /** Client URLs of every node (`nats://127.0.0.1:port`). */
  urls: string[]
  /** Stops a node with `signal` (SIGKILL by default) and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts a stopped node again on its ports and storage; resolves once it serves clients. */
  start(i: number): Promise<void>
  /** Resolves once every running node knows the JetStream meta leader and that leader counts each of them as a current peer. */
  waitForMeta(): Promise<void>
  /** `/jsz` of a running node (monitoring endpoint), parsed. */
  jsz(i: number, query?: string): Promise<Record<string, unknown>>
  /** Stops every node (SIGTERM, then SIGKILL). Registered with t.teardown. */
  stop(): Promise<void>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface ClusterOptions {
  /** Nodes (default 3). */
  size?: number
  /** Where the nodes keep configs and storage (e.g. t.testdir()). */
  dir: string
  /** `jetstream.sync_interval` (default `always`: fsync before every PubAck). */
  syncInterval?: string
  /** Lines added to every node's config (accounts, authorization, tls blocks). */
  extraConfig?: string
}

/** Starts a JetStream cluster of `size` nodes on loopback and waits until it has a meta leader. */
export async function startNatsCluster(t: Teardown, opts: ClusterOptions): Promise<NatsCluster> {
  const bin = natsServerBin()
  const size = opts.size ?? 3
  const nodes: NatsNode[] = []
  for (let i = 0; i < size; i++) {
    const name = `n${i + 1}`
    const [port, monitorPort, clusterPort] = [await freePort(), await freePort(), await freePort()]
    const storeDir = join(opts.dir, name)
    mkdirSync(storeDir, { recursive: true })
    nodes.push({ name, port, url: `nats://127.0.0.1:${port}`, monitorPort, clusterPort, storeDir, configFile: join(opts.dir, `${name}.conf`), proc: undefined, log: '' })
  }
  for (const n of nodes) {
    const routes = nodes.filter((o) => o !== n).map((o) => `nats-route://127.0.0.1:${o.clusterPort}`)
    const lines = [
      `server_name: ${n.name}`,
      `listen: 127.0.0.1:${n.port}`,
      `http: 127.0.0.1:${n.monitorPort}`,
      `jetstream {`,
      `  store_dir: "${n.storeDir}"`,
      `  max_memory_store: 64MB`,
      `  max_file_store: 2GB`,
      `  sync_interval: ${opts.syncInterval ?? 'always'}`,
      `}`,
      ...(size > 1 ? [`cluster {`, `  name: hookrelay-test`, `  listen: 127.0.0.1:${n.clusterPort}`, `  routes: [${routes.join(', ')}]`, `}`] : []),
      opts.extraConfig ?? '',
    ]
    writeFileSync(n.configFile, lines.join('\n') + '\n')
  }

  const startNode = async (n: NatsNode): Promise<void> => {
    n.log = ''
    const proc = spawn(bin, ['-c', n.configFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    n.proc = proc
    proc.stderr!.on('data', (d: Buffer) => {
      n.log += d.toString()
      if (n.log.length > 200_000) n.log = n.log.slice(-100_000)
    })
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null): void =>
        reject(new Error(`nats-server ${n.name} exited (${code ?? signal}) before it was ready:\n${n.log}`))
      proc.once('exit', onExit)
      const check = (): void => {
        if (n.log.includes('Server is ready')) {
          proc.off('exit', onExit)
          proc.stderr!.off('data', check)
          resolve()
        }
      }
      proc.stderr!.on('data', check)
      check()
    })
  }

  const kill = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = nodes[i]!.proc
    if (proc === undefined) return
    nodes[i]!.proc = undefined
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    await exited
  }

  const jsz = async (i: number, query = ''): Promise<Record<string, unknown>> => {
    const res = await fetch(`http://127.0.0.1:${nodes[i]!.monitorPort}/jsz${query}`)
    return (await res.json()) as Record<string, unknown>
  }

  /**
   * Whether every running node agrees on one meta leader and that leader counts
   * every other running node as a current peer. Agreeing on a leader alone is
   * not enough: nodes started at the same moment sometimes form a meta group of
   * 2 with the third only following it, and then no R3 stream can be placed.
   */
  const metaFormed = async (): Promise<{ formed: boolean; missing: number[] }> => {
    const running = nodes.map((n, i) => [n, i] as const).filter(([n]) => n.proc !== undefined)
    const metas = await Promise.all(
      running.map(async ([, i]) => {
        try {
          const info = await jsz(i)
          return { info, meta: info.meta_cluster as { leader?: string; replicas?: Array<{ name: string; current?: boolean }> } | undefined }
        } catch {
          return undefined
        }
      }),
    )
    // A standalone node (size 1) has no meta group: JetStream is up once /jsz answers with its config.
    if (size === 1) return { formed: metas.every((m) => m?.info.config !== undefined), missing: [] }
    const leader = metas[0]?.meta?.leader ?? ''
    if (leader === '' || !metas.every((m) => m?.meta?.leader === leader)) return { formed: false, missing: [] }
    const leaderAt = running.findIndex(([n]) => n.name === leader)
    if (leaderAt === -1) return { formed: false, missing: [] }
    const peers = metas[leaderAt]?.meta?.replicas ?? []
    const missing = running.filter(([n]) => n.name !== leader && !peers.some((p) => p.name === n.name && p.current === true)).map(([, i]) => i)
    return { formed: missing.length === 0, missing }
  }

  const waitForMeta = async (): Promise<void> => {
    for (;;) {
      if ((await metaFormed()).formed) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** At first start: a node left out of the meta group is restarted (it joins then), a bounded number of times. */
  const waitForFirstMeta = async (): Promise<void> => {
    for (let restarts = 0; ; restarts++) {
      const deadline = Date.now() + 8_000
      let last = await metaFormed()
      while (!last.formed && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        last = await metaFormed()
      }
      if (last.formed) return
      if (restarts >= 3 || last.missing.length === 0) return waitForMeta()
      for (const i of last.missing) {
        await kill(i, 'SIGTERM')
        await startNode(nodes[i]!)
      }
    }
  }

  const stop = async (): Promise<void> => {
    await Promise.all(
      nodes.map(async (n, i) => {
        const proc = n.proc
        if (proc === undefined) return
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
        await kill(i, 'SIGTERM')
        clearTimeout(timer)
      }),
    )
  }
  t.teardown(stop)

  await Promise.all(nodes.map(startNode))
  await waitForFirstMeta()
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    kill,
    start: async (i) => startNode(nodes[i]!),
    waitForMeta,
    jsz,
    stop,
  }
}
