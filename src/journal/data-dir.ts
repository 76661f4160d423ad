import { accessSync, chmodSync, mkdirSync, statSync, statfsSync, constants as fsConstants } from 'node:fs'
import { dirname } from 'node:path'
import { RelayError } from '../errors.js'

/** Filesystems that hold no files of their own (statfs f_type): a journal there cannot work. */
const VIRTUAL_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x73636673, 'securityfs'],
])

/**
 * Why `dir` cannot be the relay's data_dir, or undefined when it can (it
 * exists as a writable directory, or its parent does and it can be created
 * there). No side effects, so `check-config` can ask. Never walks up more
 * than one level: a missing parent is a mistake to report, not to create
 * (Node's recursive mkdir spins forever under /proc). `name` is what the
 * messages call the directory.
 */
export function dataDirProblem(dir: string, name = 'data_dir'): string | undefined {
  const st = statOrUndefined(dir)
  if (st instanceof Error) return `cannot stat ${dir} (${code(st)}); point ${name} at a directory the relay can use`
  const target = st === undefined ? dirname(dir) : dir
  if (st === undefined) {
    const parent = statOrUndefined(target)
    if (parent === undefined) return `${dir} does not exist and neither does its parent ${target}; create ${target}, or point ${name} elsewhere`
    if (parent instanceof Error) return `cannot stat ${target} (${code(parent)}); point ${name} at a directory the relay can use`
    if (!parent.isDirectory()) return `the parent of ${dir}, ${target}, is not a directory; point ${name} elsewhere`
  } else if (!st.isDirectory()) {
    return `${dir} is ${st.isFile() ? 'a regular file' : 'not a directory'}; point ${name} at a directory (it is created when missing)`
  }
  const fsName = virtualFs(target)
  if (fsName !== undefined) return `${target} is on ${fsName}, which cannot hold files; point ${name} at a directory on a disk`
  try {
    accessSync(target, fsConstants.W_OK | fsConstants.X_OK)
  } catch (err) {
    const what = st === undefined ? `${dir} cannot be created in ${target}` : `${dir} is not writable`
    return `${what} (${code(err)}); make it writable by the relay's user, or point ${name} elsewhere`
  }
  return undefined
}

/**
 * Makes `dir` ready for the journal: checks it (see `dataDirProblem`), creates
 * it owner-only (0700 whatever the umask; mkdir's mode is masked by it), and
 * returns a warning when an existing one lets other users in.
 *
 * @throws RelayError HOOKRELAY_JOURNAL_DATA_DIR when it cannot be used.
 */
export function prepareDataDir(dir: string): { warning?: string } {
  const problem = dataDirProblem(dir)
  if (problem !== undefined) throw new RelayError('HOOKRELAY_JOURNAL_DATA_DIR', problem)
  try {
    mkdirSync(dir, { mode: 0o700 })
    chmodSync(dir, 0o700)
    return {}
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new RelayError('HOOKRELAY_JOURNAL_DATA_DIR', `cannot create ${dir} (${code(err)}); create it, or point data_dir elsewhere`, { cause: err })
    }
  }
  const mode = statSync(dir).mode & 0o777
  if ((mode & 0o077) === 0) return {}
  return {
    warning: `data_dir ${dir} is mode 0${mode.toString(8)}: other local users can list it; the journal inside is kept 0600, but run chmod 700 ${dir} unless that is intended`,
  }
}

/**
 * `mkdir -p` that cannot spin: finds the nearest existing ancestor, refuses
 * it when `dataDirProblem` would, then creates each missing level (0700),
 * stopping at the first error. `name` is what messages call the directory.
 *
 * @throws Error with the reason.
 */
export function makeDirs(dir: string, name: string): void {
  const missing: string[] = []
  let at = dir
  while (statOrUndefined(at) === undefined && dirname(at) !== at) {
    missing.unshift(at)
    at = dirname(at)
  }
  const problem = dataDirProblem(missing[0] ?? dir, name)
  if (problem !== undefined) throw new Error(problem)
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create ${d} (${code(err)}); point ${name} elsewhere`)
    }
  }
}

/** Sets `file` to 0600: files LMDB creates follow the umask. */
export function restrictFile(file: string): void {
  if ((statSync(file).mode & 0o777) !== 0o600) chmodSync(file, 0o600)
}

/**
 * The warning for a `journal.min_free` the disk holding `dir` can never
 * satisfy (the relay would start and never be ready), or undefined.
 */
export function minFreeWarning(dir: string, minFree: number): string | undefined {
  let s
  try {
    s = statfsSync(dir)
  } catch {
    return undefined
  }
  const size = s.blocks * s.bsize
  if (minFree < size) return undefined
  return `journal.min_free (${minFree} bytes) is not below the size of the disk holding ${dir} (${size} bytes): every callback will get 503 HOOKRELAY_JOURNAL_DISK_FULL and /readyz stays 503; lower journal.min_free`
}

function statOrUndefined(p: string): ReturnType<typeof statSync> | Error | undefined {
  try {
    return statSync(p)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    return err as Error
  }
}

function virtualFs(p: string): string | undefined {
  try {
    return VIRTUAL_FS.get(Number(statfsSync(p).type))
  } catch {
    return undefined
  }
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message
}
