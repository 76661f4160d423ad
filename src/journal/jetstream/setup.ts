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
  const placementDeadline = Date.now() + PLACEMENT_PATIENCE_MS
  let placementWait = 100
  try {
    info = await jsm.streams.info(cfg.stream)
  } catch (err) {
    if (!isNotFound(err)) throw err
    info = await create()
  }
  return { info, created, ...checkStream(info, cfg, subjects, journal.retention) }

  async function create(): Promise<StreamInfo> {
    const js = cfg!
    try {
      const made = await jsm.streams.add({
        name: js.stream,
        subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        num_replicas: js.replicas,
        max_age: nanos(journal.retention.max_age_ms),
        max_bytes: journal.retention.max_bytes,
        duplicate_window: nanos(js.duplicate_window_ms),
        allow_direct: true,
      })
      created = true
      return made
    } catch (err) {
      // Another relay created it between our info and add (with a config of its own): check that one instead.
      if (isAlreadyInUse(err)) return jsm.streams.info(js.stream)
      // A cluster that has just started knows its meta leader before every peer has reported in.
      if (isNoPeersYet(err) && Date.now() < placementDeadline) {
        await new Promise((resolve) => setTimeout(resolve, placementWait))
        placementWait = Math.min(placementWait * 2, 2000)
        return create()
      }
      throw err
    }
  }
}

/** How long a stream creation waits for the cluster's peers to report in ("no suitable peers for placement"). */
const PLACEMENT_PATIENCE_MS = 30_000

function isNoPeersYet(err: unknown): boolean {
  return /no suitable peers for placement/i.test((err as Error).message ?? '')
}

/** JetStream's "stream name already in use with a different configuration" (10058). */
function isAlreadyInUse(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string }
  return e.api_error?.err_code === 10058 || /already in use/i.test(e.message ?? '')
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string }
  return e.api_error?.err_code === 10059 || /stream not found/i.test(e.message ?? '')
}
