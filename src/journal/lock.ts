/**
 * One relay per data_dir. Node 20 has no flock/fcntl without a native module,
 * and LMDB's own fcntl lock is shared by design (`hookrelay backup` holds it
 * too), so the lock is made of files the kernel's process table can judge:
 *
 * Each relay writes `relay-<pid>-<starttime>.lock` into data_dir (atomically,
 * by rename), then looks for any other such file whose process is alive. A
 * process is identified by pid plus its start time in clock ticks since boot
 * (/proc/<pid>/stat field 22) plus the boot id, so a reused pid or a reboot
 * never makes a dead holder look alive: the file of a SIGKILLed relay is
 * stale at once and removed by the next starter. Because every starter
 * writes its own file before it looks, two that start at the same moment see
 * each other and at least one refuses (possibly both: safe, and each says
 * why); none is ever left thinking it is alone while another runs.
 *
 * Limit: liveness is judged in this process's pid namespace; relays in
 * different containers sharing one data_dir volume are not detected.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RelayError } from '../errors.js'

const LOCK_RE = /^relay-(\d+)-(\d+)\.lock$/

interface Holder {
  pid: number
  start: string
  boot: string
  started_at: string
}

/** Held locks of this process by real path of data_dir: one file, counted (the CLI and the journal both take it). */
const held = new Map<string, { file: string; count: number }>()
let exitHookInstalled = false

/**
 * Takes the data_dir lock for this process; returns its release function.
 *
 * @throws RelayError HOOKRELAY_JOURNAL_LOCKED when another live relay holds `dir`.
 */
export function lockDataDir(dir: string): () => void {
  const real = realpathSync(dir)
  const mine = held.get(real)
  if (mine !== undefined) {
    mine.count++
    return once(() => release(real))
  }
  const self = holderOf(process.pid)
  if (self === undefined) throw new RelayError('HOOKRELAY_JOURNAL_LOCKED', `cannot read /proc/${process.pid}/stat to lock ${dir}; is /proc mounted?`)
  const name = `relay-${self.pid}-${self.start}.lock`
  const file = join(real, name)
  const tmp = join(real, `.${name}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    writeFileSync(tmp, `${JSON.stringify({ ...self, started_at: new Date().toISOString() } satisfies Holder)}\n`, { mode: 0o600 })
    renameSync(tmp, file)
  } catch (cause) {
    unlinkQuietly(tmp)
    throw new RelayError('HOOKRELAY_JOURNAL_DATA_DIR', `cannot write the lock file ${file}: ${(cause as Error).message}`, { cause })
  }
  for (const other of readdirSync(real)) {
    const m = LOCK_RE.exec(other)
    if (m === null || other === name) continue
    const holder = readHolder(join(real, other))
    if (holder !== undefined && alive(holder)) {
      unlinkQuietly(file)
      throw new RelayError(
        'HOOKRELAY_JOURNAL_LOCKED',
        `data_dir ${dir} is in use by another relay (pid ${holder.pid}, started ${holder.started_at}); stop it, or give this relay its own data_dir`,
      )
    }
    if (holder !== undefined) unlinkQuietly(join(real, other))
  }
  held.set(real, { file, count: 1 })
  if (!exitHookInstalled) {
    exitHookInstalled = true
    // A process that exits without closing its journal (process.exit on a second signal) leaves no file behind.
    process.on('exit', () => {
      for (const h of held.values()) unlinkQuietly(h.file)
    })
  }
  return once(() => release(real))
}

function release(real: string): void {
  const h = held.get(real)
  if (h === undefined) return
  if (--h.count > 0) return
  held.delete(real)
  unlinkQuietly(h.file)
}

/** The holder record of a lock file; undefined when it is gone (removed by its owner or another starter). */
function readHolder(file: string): Holder | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  try {
    const h = JSON.parse(text) as Holder
    if (typeof h.pid === 'number' && typeof h.start === 'string' && typeof h.boot === 'string') return h
  } catch {
    // A file not written by a relay: judged on its name.
  }
  const m = LOCK_RE.exec(file.slice(file.lastIndexOf('/') + 1))
  return m === null ? undefined : { pid: Number(m[1]), start: m[2]!, boot: '', started_at: 'at an unknown time' }
}

function alive(h: Holder): boolean {
  const now = holderOf(h.pid)
  return now !== undefined && now.start === h.start && (h.boot === '' || now.boot === h.boot)
}

function holderOf(pid: number): Omit<Holder, 'started_at'> | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) is in parentheses and may hold spaces or ")": count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const start = fields[19]
  if (start === undefined) return undefined
  return { pid, start, boot: bootId() }
}

let cachedBoot: string | undefined
function bootId(): string {
  cachedBoot ??= (() => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      return ''
    }
  })()
  return cachedBoot
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file)
  } catch {
    // Already gone: another starter removed a stale file, or ours was never written.
  }
}

function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    fn()
  }
}
