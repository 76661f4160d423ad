import { accessSync, rmSync, constants as fsConstants } from 'node:fs'
import { open } from 'lmdb'
import { RelayError } from '../errors.js'
import { makeDirs } from './data-dir.js'

/**
 * Copies the journal in `dataDir` to `<destDir>/journal.mdb` from another
 * process than the relay's (`hookrelay backup`). LMDB allows several processes
 * on one environment (they share `journal.mdb-lock`), and its copy runs inside
 * one read transaction: the copy is consistent while the relay keeps
 * committing. Opened read-only with the relay's own flags.
 *
 * @throws RelayError HOOKRELAY_JOURNAL_OPEN when there is no journal in dataDir,
 *   HOOKRELAY_JOURNAL_BACKUP when the copy fails (e.g. the destination exists).
 */
export async function backupJournal(dataDir: string, destDir: string, compact = true): Promise<{ file: string; head: number; epoch: string }> {
  const path = `${dataDir}/journal.mdb`
  try {
    accessSync(path, fsConstants.R_OK)
  } catch (cause) {
    throw new RelayError('HOOKRELAY_JOURNAL_OPEN', `no journal at ${path}; check --config (data_dir)`, { cause })
  }
  // Before LMDB opens anything; and never Node's recursive mkdir, which spins forever under /proc.
  try {
    makeDirs(destDir, 'DEST_DIR')
  } catch (cause) {
    throw new RelayError('HOOKRELAY_JOURNAL_BACKUP', (cause as Error).message, { cause })
  }
  const flags = { maxDbs: 12, overlappingSync: false, noSync: false, useWritemap: false, cache: false } as const
  // Read-only: the copy needs a read transaction only (the lock file's reader table is still shared).
  const env = open({ path, ...flags, readOnly: true })
  const file = `${destDir}/journal.mdb`
  try {
    await env.backup(file, compact)
  } catch (cause) {
    throw new RelayError('HOOKRELAY_JOURNAL_BACKUP', `cannot write ${file}: ${(cause as Error).message}; use an empty destination directory`, {
      cause,
    })
  } finally {
    await env.close()
  }
  // Head and epoch as the copy has them (the copy's read transaction started after any look here).
  const copy = open({ path: file, ...flags, readOnly: true })
  try {
    const events = copy.openDB<Buffer, number>('events', { keyEncoding: 'uint32', encoding: 'binary' })
    const meta = copy.openDB<unknown, string>('meta', {})
    let head = (meta.get('pruned_through') as number | undefined) ?? 0
    for (const k of events.getKeys({ reverse: true, limit: 1 })) head = k
    return { file, head, epoch: String(meta.get('epoch')) }
  } finally {
    await copy.close()
    rmSync(`${file}-lock`, { force: true })
  }
}
