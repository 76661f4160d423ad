import { Agent, type ClientRequestArgs } from 'node:http'
import type { Socket } from 'node:net'
import { RelayError } from '../errors.js'

/** Where to open a connection: the checked address, never a name. */
export interface ConnectTarget {
  address: string
  family: 4 | 6
  port: number
  tls: boolean
  /** Host name for TLS SNI and certificate checks; undefined for literal IPs. */
  servername: string | undefined
}

/**
 * Opens the socket for one request. Injectable so that tests can count
 * connection attempts (and so prove a refused URL never reached one).
 */
export type Connector = (target: ConnectTarget) => Socket

/** What a pooled request carries to the agent besides Node's own options. */
export interface PooledRequest {
  target: ConnectTarget
  /** The request's Host header (the URL's host and port). */
  hostHeader: string
  connect: Connector
  connectMs: number
}

/**
 * The pool a socket belongs to: exactly the address the SSRF guard checked,
 * the port, TLS or not, the TLS server name and the Host header. A socket is
 * reused only for a request whose key is the same string, so a name that now
 * resolves elsewhere, another host on the same address, or another TLS name
 * always gets a connection of its own.
 */
export function poolKey(r: Pick<PooledRequest, 'target' | 'hostHeader'>): string {
  const t = r.target
  return JSON.stringify([t.address, t.family, t.port, t.tls, t.servername ?? null, r.hostHeader.toLowerCase()])
}

export interface OriginPoolOptions {
  /** How long an idle socket is kept (shorter than the usual server keep-alive of 5 s, so a reuse rarely races a close). */
  idleMs?: number
  /** Idle sockets kept per key at most. */
  maxIdlePerKey?: number
}

/**
 * Keep-alive sockets for origin downloads (a `node:http` Agent whose pools
 * are keyed by `poolKey`). New sockets come from the request's connector, to
 * the checked address, exactly as without the pool; what the pool adds is
 * that a socket whose response was read to its end may carry the next GET
 * with the same key. A socket a response was cut short on (an error status,
 * a cap, an abort) is destroyed, never pooled.
 */
export class OriginPool {
  readonly #agent: KeyedAgent
  /** Sockets opened so far (tests and the debug log). */
  opened = 0

  constructor(opts: OriginPoolOptions = {}) {
    this.#agent = new KeyedAgent(this, {
      keepAlive: true,
      // Free sockets idle this long are destroyed by the agent.
      timeout: opts.idleMs ?? 2000,
      maxFreeSockets: opts.maxIdlePerKey ?? 4,
      scheduling: 'lifo',
    })
  }

  get agent(): Agent {
    return this.#agent
  }

  /** Idle sockets per key (tests). */
  idle(): Map<string, number> {
    const out = new Map<string, number>()
    for (const [k, list] of Object.entries(this.#agent.freeSockets)) if (list && list.length > 0) out.set(k, list.length)
    return out
  }

  /** Drops the idle sockets of one key (after one of them turned out closed by the server). */
  evict(key: string): void {
    for (const s of this.#agent.freeSockets[key] ?? []) s.destroy()
  }

  /** Destroys every socket, idle or in use. */
  destroy(): void {
    this.#agent.destroy()
  }
}

class KeyedAgent extends Agent {
  readonly #pool: OriginPool
  constructor(pool: OriginPool, opts: ConstructorParameters<typeof Agent>[0]) {
    super(opts)
    this.#pool = pool
  }

  override getName(options?: ClientRequestArgs): string {
    const r = pooled(options)
    return poolKey(r)
  }

  /** Called by http.Agent for a key with no idle socket: a new connection to the checked address, through the request's connector. */
  override createConnection(options: ClientRequestArgs): Socket {
    const r = pooled(options)
    const socket = r.connect(r.target)
    this.#pool.opened++
    const timer = setTimeout(() => socket.destroy(new RelayError('HOOKRELAY_MIRROR_TIMEOUT', `connecting took over ${r.connectMs} ms`)), r.connectMs)
    const clear = (): void => clearTimeout(timer)
    socket.once(r.target.tls ? 'secureConnect' : 'connect', clear)
    socket.once('close', clear)
    return socket
  }
}

function pooled(options: object | undefined): PooledRequest {
  const r = (options as { hookrelay?: PooledRequest } | undefined)?.hookrelay
  // Only the mirror's own requests use this agent; one without its target would be a bug, not a request to send.
  if (r === undefined) throw new Error('origin pool: a request without its checked target')
  return r
}
