/**
 * The seam every part above the ingest core plugs into (fan-out, mirror, and
 * what comes next): an extension gets a `RelayHost`, never the `Relay`, and
 * returns a `Component` the relay closes in reverse start order.
 *
 * @example
 *   export function auditExtension(): Extension {
 *     return (host) => {
 *       const stop = host.journal.onCommit((head) => host.log.debug({ head }, 'committed'))
 *       return { name: 'audit', close: stop }
 *     }
 *   }
 */
import type { Registry } from 'prom-client'
import type { Config } from './config/types.js'
import type { Principal } from './http/auth.js'
import type { RouteHandler } from './http/front.js'
import type { WebSocketBehavior } from './http/uws.js'
import type { JournalPort } from './journal/port.js'
import type { Logger } from './log.js'

/** What an extension may use of the relay. */
export interface RelayHost {
  /** The journal: the single source of truth. */
  readonly journal: JournalPort
  readonly log: Logger
  /** Prometheus registry; an extension registers its own metrics in it. */
  readonly registry: Registry
  /** The config in force; a reload replaces it (read it again after `onReload`). */
  readonly config: Config
  /** The subscriber a bearer token belongs to, under the subscribers in force. */
  lookupToken(token: string | undefined): Principal | undefined
  /** Calls `listener` after each applied reload; returns a function that removes it. */
  onReload(listener: () => void): () => void
  /** An HTTP route on the relay's listener (exact path; `*` as method takes every other method). */
  route(method: string, path: string, handler: RouteHandler): void
  /** An HTTP route for every path under `prefix` that no exact route takes (e.g. `/v1/events/<seq>`). */
  routePrefix(method: string, prefix: string, handler: RouteHandler): void
  /**
   * A WebSocket route, served by uWS behind the HTTP front. The client's
   * address is in the upgrade request's PEER_HEADER (http/stream-bridge.ts).
   */
  webSocket<T>(path: string, behavior: WebSocketBehavior<T>): void
}

/** A started part of the relay. `close()` is idempotent and may be async. */
export interface Component {
  readonly name: string
  close(): Promise<void> | void
}

/**
 * Builds a component on the host, after the journal and the ingest routes
 * and before the relay listens. `undefined` when it is switched off by config.
 */
export type Extension = (host: RelayHost) => Component | undefined | Promise<Component | undefined>
