// Test tools from Debian's packages (nginx, nats-server, ...): the one on PATH
// if there is one, else the package's files unpacked (not installed: no
// maintainer scripts, no service started) into a cache beside node_modules.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.cache', 'hookrelay-test-tools')

/**
 * The path of `bin` from Debian package `pkg` (`file` is its path inside the
 * package, e.g. `usr/sbin/nginx`). Throws with what to do when apt cannot
 * fetch it.
 */
export function debianTool(bin: string, pkg: string, file: string): string {
  const onPath = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim()
  if (onPath !== '') return onPath
  const dest = join(CACHE, pkg)
  const path = join(dest, file)
  if (existsSync(path)) return path
  mkdirSync(CACHE, { recursive: true })
  const work = mkdtempSync(join(CACHE, `${pkg}-`))
  try {
    const download = (): boolean => spawnSync('apt-get', ['download', pkg], { cwd: work, stdio: 'ignore' }).status === 0
    // A fresh machine has no package lists yet.
    if (!download() && !(spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' }).status === 0 && download())) {
      throw new Error(`cannot fetch Debian package ${pkg} (apt-get download ${pkg}); install ${bin} yourself to run this test`)
    }
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'))!
    execFileSync('dpkg-deb', ['-x', join(work, deb), join(work, 'root')])
    // Another test process may have won the race: either copy is the same package.
    if (!existsSync(path)) renameSync(join(work, 'root'), dest)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return path
}
