// Test tools from Debian's packages (nginx, nats-server, ...): the one on PATH
// if there is one, else the package's files unpacked (not installed: no
// maintainer scripts, no service started) into a cache beside node_modules.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.cache', 'hookrelay-test-tools')

export interface DebianToolOptions {
  /**
   * Fetch from this Debian suite (e.g. `trixie`) instead of the machine's own
   * sources, through a private apt configuration (its own package lists in the
   * cache; the system's apt state is not touched). The binary on PATH is then
   * used only when `acceptOnPath` says its version will do.
   */
  suite?: string
  acceptOnPath?: (path: string) => boolean
}

/**
 * The path of `bin` from Debian package `pkg` (`file` is its path inside the
 * package, e.g. `usr/sbin/nginx`). Throws with what to do when apt cannot
 * fetch it.
 */
export function debianTool(bin: string, pkg: string, file: string, opts: DebianToolOptions = {}): string {
  const onPath = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim()
  if (onPath !== '' && (opts.suite === undefined || opts.acceptOnPath?.(onPath) === true)) return onPath
  const dest = join(CACHE, opts.suite === undefined ? pkg : `${pkg}-${opts.suite}`)
  const path = join(dest, file)
  if (existsSync(path)) return path
  mkdirSync(CACHE, { recursive: true })
  const work = mkdtempSync(join(CACHE, `${pkg}-`))
  try {
    const apt = opts.suite === undefined ? [] : privateApt(opts.suite)
    const download = (): boolean =>
      spawnSync('apt-get', [...apt, 'download', pkg], { cwd: work, stdio: 'ignore' }).status === 0
    // A fresh machine (or a fresh private configuration) has no package lists yet.
    const update = (): boolean => spawnSync('apt-get', [...apt, 'update', '-qq'], { stdio: 'ignore' }).status === 0
    if (!download() && !(update() && download())) {
      const from = opts.suite === undefined ? '' : ` from Debian ${opts.suite}`
      throw new Error(`cannot fetch Debian package ${pkg}${from} (apt-get download ${pkg}); install ${bin} yourself to run this test`)
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

/** apt-get options for a suite of Debian's main archive, with lists and cache of its own under CACHE. */
function privateApt(suite: string): string[] {
  const root = join(CACHE, `apt-${suite}`)
  mkdirSync(join(root, 'lists', 'partial'), { recursive: true })
  mkdirSync(join(root, 'cache', 'archives', 'partial'), { recursive: true })
  const list = join(root, 'sources.list')
  if (!existsSync(list)) {
    const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg'
    writeFileSync(list, `deb [signed-by=${keyring}] http://deb.debian.org/debian ${suite} main\n`)
  }
  return [
    '-o', `Dir::Etc::SourceList=${list}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${join(root, 'lists')}`,
    '-o', `Dir::Cache=${join(root, 'cache')}`,
  ]
}
