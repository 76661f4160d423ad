/**
 * Creates the journal's stream when it is missing and checks it when it is
 * not: the one place that decides the stream's configuration.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import type { JournalConfig } from '../../config/types.js'
import { checkStream, type StreamCheck } from './stream-check.js'
import { streamSubjects } from './names.js'

export interface StreamSetup extends StreamCheck {
  info: StreamInfo
  /** Whether this call created the stream. */
  created: boolean
}

/** The stream's info, creating it from `journal` first when it does not exist. */
export async function ensureStream(jsm: JetStreamManager, journal: JournalConfig): Promise<StreamSetup> {
  const cfg = journal.jetstream
  if (cfg === undefined) throw new Error('ensureStream needs journal.jetstream')
  const subjects = streamSubjects(cfg.stream)
  let info: StreamInfo
  let created = false
  try {
    info = await jsm.streams.info(cfg.stream)
  } catch (err) {
    if (!isNotFound(err)) throw err
    info = await jsm.streams.add({
      name: cfg.stream,
      subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas: cfg.replicas,
      max_age: nanos(journal.retention.max_age_ms),
      max_bytes: journal.retention.max_bytes,
      duplicate_window: nanos(cfg.duplicate_window_ms),
      allow_direct: true,
    })
    created = true
  }
  return { info, created, ...checkStream(info, cfg, subjects) }
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string }
  return e.api_error?.err_code === 10059 || /stream not found/i.test(e.message ?? '')
}
