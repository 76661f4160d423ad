/**
 * The JetStream journal's epoch, kept in `<stream>_meta` with the stream's
 * `created` time: a stream created again since (deleted and recreated,
 * restored) gets a new epoch, so subscribers see `epoch_changed` instead of
 * wrong cursors.
 */
import { randomBytes } from 'node:crypto'
import type { StreamInfo } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import type { Logger } from '../../log.js'
import { isConflict } from './errors.js'

interface Meta {
  epoch: string
  /** The stream's `created` time when the epoch was made. */
  stream_created: string
  created_at: string
}

export async function epochOf(meta: KV, info: StreamInfo, log: Logger): Promise<string> {
  for (;;) {
    const e = await meta.get('epoch')
    const stored = e && e.operation === 'PUT' ? e.json<Meta>() : undefined
    if (stored && stored.stream_created === info.created) return stored.epoch
    const next: Meta = { epoch: randomBytes(8).toString('hex'), stream_created: info.created, created_at: new Date().toISOString() }
    try {
      if (stored) {
        await meta.update('epoch', JSON.stringify(next), e!.revision)
        log.error(
          { stream: info.config.name, was: stored.stream_created, now: info.created, epoch: next.epoch },
          'the journal stream was created again since this journal last ran: its seqs started over, so the journal takes a new epoch',
        )
      } else await meta.create('epoch', JSON.stringify(next))
      return next.epoch
    } catch (err) {
      if (!isConflict(err)) throw err
    }
  }
}
