/**
 * Opens the journal `journal.backend` names: LMDB in `data_dir` (one box), or
 * the JetStream stream of `journal.jetstream` (cluster mode). The NATS client
 * is imported only on the JetStream branch, so a relay on LMDB never loads it.
 */
import type { Config } from '../config/types.js'
import type { Logger } from '../log.js'
import { LmdbJournal } from './lmdb-journal.js'
import type { JournalPort } from './port.js'

export interface OpenedJournal {
  journal: JournalPort
  /** The same journal when it is LMDB's: retention passes, backup, min_free and the disk checks need it. */
  lmdb: LmdbJournal | undefined
}

export async function openJournal(config: Config, log: Logger): Promise<OpenedJournal> {
  if (config.journal.backend === 'jetstream') {
    const { JetStreamJournal } = await import('./jetstream/journal.js')
    const journal = await JetStreamJournal.open(config.journal, { log: log.child({ component: 'journal' }) })
    return { journal, lmdb: undefined }
  }
  const lmdb = await LmdbJournal.open({ dir: config.data_dir, mapSize: config.journal.map_size, minFree: config.journal.min_free })
  return { journal: lmdb, lmdb }
}
