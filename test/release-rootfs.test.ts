// The release artifacts where a user runs them (slow: `npm run test:release`, which sets
// HOOKRELAY_RELEASE_TESTS=1; skipped in the normal suite). Builds both artifacts with
// scripts/package.sh, then:
// - x64, unpacked into a copy of a clean Debian 12 and a clean Debian 13 rootfs
//   (debootstrap --variant=minbase, no Node there), started with chroot and an empty
//   environment: serve, /readyz, a WebSocket subscriber, a signed `send` from inside the
//   rootfs reaching the subscriber, healthcheck, keygen, tail, backup, SIGTERM draining to
//   exit 0 with the subscriber closed 1001; the same on Debian 13's own nodejs;
// - arm64, under qemu-aarch64-static with an arm64 Debian 12's libraries: --version,
//   check-config, a short serve + send.
// Needs root (debootstrap, chroot, mount namespaces), an x64 host, npm registry and Debian
// mirror access on first run; the rootfs are cached by scripts/rootfs.sh outside the repository.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { connect } from './helpers/ws-conn.js'

const ROOT = join(import.meta.dirname, '..')
const SCRIPTS = join(ROOT, 'scripts')
const SECRET = 'whsec_release_test_secret_0123456789'
const TOKEN = 'hr_release_test_token'

const skip =
  process.env.HOOKRELAY_RELEASE_TESTS !== '1'
    ? 'slow: run with npm run test:release'
    : process.platform !== 'linux' || process.arch !== 'x64'
      ? 'needs a linux-x64 host'
      : process.getuid?.() !== 0
        ? 'needs root (debootstrap, chroot)'
        : false

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

function configYaml(dataDir: string): string {
  return `listen: { host: 127.0.0.1, port: 0 }
data_dir: ${dataDir}
sources:
  runflow:
    path: /webhook/runflow
    verify: { scheme: runflow, secrets: ["${SECRET}"] }
subscribers:
  - { name: app, token: ${TOKEN}, sources: ["*"] }
shutdown: { drain: 5s }
`
}

/** Resolves with the first stdout line that matches (each line is pino JSON when stdout is a pipe). */
function line(child: ChildProcess, lines: string[], match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const seen = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find(match)
    if (seen) return resolve(seen)
    const onLine = (l: string): void => {
      const rec = JSON.parse(l) as Record<string, unknown>
      if (match(rec)) {
        child.off('exit', onExit)
        resolve(rec)
      }
    }
    const onExit = (code: number | null): void => reject(new Error(`exited ${code} first: ${lines.join('\n')}`))
    child.once('exit', onExit)
    child.on('stdout-line', onLine)
  })
}

function serveProcess(cmd: string, args: string[]): { child: ChildProcess; lines: string[]; stderr: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let err = ''
  child.stderr!.on('data', (d) => (err += String(d)))
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l)
    child.emit('stdout-line', l)
  })
  return { child, lines, stderr: () => err }
}

t.test('release artifacts', { skip }, async (t) => {
  const out = t.testdir()
  run('bash', [join(SCRIPTS, 'package.sh'), 'x64', 'arm64'], { OUT: out, SKIP_BUILD: '1', GZIP_LEVEL: '1' })
  const artifact = (arch: string): string => join(out, readdirSync(out).find((f) => f.endsWith(`-linux-${arch}.tar.gz`))!)
  const top = (arch: string): string => artifact(arch).replace(/^.*\//, '').replace(/\.tar\.gz$/, '')
  const sums = run('sh', ['-c', 'cd "$1" && sha256sum -c SHA256SUMS', 'sh', out])
  t.match(sums, /linux-x64\.tar\.gz: OK/)
  t.match(sums, /linux-arm64\.tar\.gz: OK/)

  const cases = [
    { title: 'x64 artifact in a clean Debian 12 rootfs (no Node)', suite: 'bookworm', packages: [], env: [], node: /node v20\.20\.\d+/ },
    { title: 'x64 artifact in a clean Debian 13 rootfs (no Node)', suite: 'trixie', packages: [], env: [], node: /node v20\.20\.\d+/ },
    {
      title: "the artifact on Debian 13's own nodejs (HOOKRELAY_NODE=/usr/bin/node): the pinned uWebSockets.js binary loads and serves",
      suite: 'trixie',
      packages: ['nodejs'],
      env: ['HOOKRELAY_NODE=/usr/bin/node'],
      node: /node v20\.19\.\d+/,
    },
  ]
  for (const c of cases) {
    t.test(`${c.title}: serve, /readyz, a subscriber, a signed send, SIGTERM drain`, async (t) => {
      const cached = run('bash', [join(SCRIPTS, 'rootfs.sh'), c.suite, '', ...c.packages]).trim()
      const root = join(t.testdir(), 'root')
      run('cp', ['-a', cached, root])
      t.equal(existsSync(join(root, 'usr/bin/node')), c.packages.includes('nodejs'), c.packages.includes('nodejs') ? "Debian's nodejs in the rootfs" : 'no Node in the rootfs')
      run('tar', ['-xzf', artifact('x64'), '-C', join(root, 'opt')])
      mkdirSync(join(root, 'etc/hookrelay'))
      writeFileSync(join(root, 'etc/hookrelay/hookrelay.yaml'), configYaml('/var/lib/hookrelay'))
      const bin = `/opt/${top('x64')}/hookrelay`
      // A private mount namespace: its /proc (the data_dir lock reads it) goes away with the process.
      const inRoot = (...args: string[]): [string, string[]] => [
        'unshare',
        ['--mount', 'sh', '-c', 'mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/env -i PATH=/usr/bin:/bin "$@"', root, ...c.env, ...args],
      ]
      const version = run(...inRoot(bin, '--version'))
      t.match(version, /^hookrelay \d+\.\d+\.\d+ \(node v20\.\d+\.\d+, linux-x64\)/)
      t.match(version, c.node, 'runs on the expected Node')

      const relay = serveProcess(...inRoot(bin, 'serve', '--config', '/etc/hookrelay/hookrelay.yaml'))
      t.teardown(() => relay.child.kill('SIGKILL'))
      const exited = once(relay.child, 'exit')
      const listening = await line(relay.child, relay.lines, (l) => l.msg === 'hookrelay listening')
      const port = Number(String(listening.address).replace(/^.*:/, ''))
      const base = `http://127.0.0.1:${port}`
      t.equal((await fetch(`${base}/readyz`)).status, 200, '/readyz 200')

      const sub = await connect(t, `ws://127.0.0.1:${port}/v1/stream`, TOKEN)
      t.equal((await sub.next()).type, 'welcome')
      sub.send({ type: 'subscribe', after: 'latest' })
      t.equal((await sub.next()).type, 'subscribed')

      const sent = run(...inRoot(bin, 'send', '--config', '/etc/hookrelay/hookrelay.yaml', '--url', `${base}/webhook/runflow`))
      t.match(sent, /^200 /, 'a signed send from inside the rootfs: 200')
      let ev = await sub.next()
      while (ev.type === 'live') ev = await sub.next()
      t.equal(ev.type, 'event', 'the subscriber gets it')
      t.equal(ev.source, 'runflow')

      t.match(run(...inRoot(bin, 'healthcheck', '--config', '/etc/hookrelay/hookrelay.yaml', '--url', `${base}/readyz`)), /^200 /, 'healthcheck: 0')
      t.match(run(...inRoot(bin, 'keygen')), /^whsec_\S+\n$/, 'keygen')
      const tail = serveProcess(...inRoot(bin, 'tail', '--url', `ws://127.0.0.1:${port}/v1/stream`, '--token', TOKEN, '--after', '0', '--json'))
      t.teardown(() => tail.child.kill('SIGKILL'))
      const tailed = await line(tail.child, tail.lines, () => true)
      t.match(tailed, { seq: 1, source: 'runflow' }, 'tail prints the event')
      tail.child.kill('SIGTERM')
      t.match(run(...inRoot(bin, 'backup', '--config', '/etc/hookrelay/hookrelay.yaml', '/root/backup')), /journal\.mdb: journal epoch \S+, head 1/, 'backup')

      // unshare, sh, chroot, env and the launcher each exec the next: the spawned pid is node's.
      relay.child.kill('SIGTERM')
      const [code] = (await exited) as [number | null]
      t.equal(code, 0, `SIGTERM: exit 0 (stderr: ${relay.stderr()})`)
      const end = await sub.end()
      t.not(end.code, 0, 'the subscriber is disconnected')
      t.equal(end.code, 1001, 'with 1001')
      t.ok(relay.lines.some((l) => l.includes('stopping: draining in-flight commits')), 'drains')
      t.ok(relay.lines.some((l) => l.includes('"hookrelay stopped"')), 'and stops')
      t.ok(existsSync(join(root, 'var/lib/hookrelay/journal.mdb')), 'journal in the rootfs')
    })
  }

  t.test('arm64 artifact under qemu-aarch64-static: --version, check-config, serve + send', async (t) => {
    if (!existsSync('/usr/bin/qemu-aarch64-static')) run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'qemu-user-static'])
    const sysroot = run('bash', [join(SCRIPTS, 'rootfs.sh'), 'bookworm', 'arm64']).trim()
    const dir = t.testdir()
    run('tar', ['-xzf', artifact('arm64'), '-C', dir])
    const app = join(dir, top('arm64'))
    t.match(run('file', ['-L', join(app, 'node/bin/node')]), /ARM aarch64/, 'the bundled node is arm64')
    const node = (...args: string[]): [string, string[]] => ['qemu-aarch64-static', ['-L', sysroot, join(app, 'node/bin/node'), join(app, 'dist/cli.js'), ...args]]
    t.match(run(...node('--version')), /^hookrelay \S+ \(node v20\.\d+\.\d+, linux-arm64\)/)
    const cfg = join(dir, 'hookrelay.yaml')
    writeFileSync(cfg, configYaml(join(dir, 'data')))
    t.match(run(...node('check-config', '--config', cfg)), /: ok \(1 source/)

    const relay = serveProcess(...node('serve', '--config', cfg))
    t.teardown(() => relay.child.kill('SIGKILL'))
    const exited = once(relay.child, 'exit')
    const listening = await line(relay.child, relay.lines, (l) => l.msg === 'hookrelay listening')
    const port = Number(String(listening.address).replace(/^.*:/, ''))
    t.match(run(...node('send', '--config', cfg, '--url', `http://127.0.0.1:${port}/webhook/runflow`)), /^200 /, 'send under qemu: 200')
    relay.child.kill('SIGTERM')
    const [code] = (await exited) as [number | null]
    t.equal(code, 0, `SIGTERM: exit 0 (stderr: ${relay.stderr()})`)
  })
})
