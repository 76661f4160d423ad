import type { Subscriber } from './subscriber.js'

/**
 * Connections from one address still in the auth window (no `Authorization`
 * header, no auth frame yet). Small: a browser tab needs one, and each holds
 * a socket for up to the auth timeout without proving anything.
 */
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 16
/** Connections in the auth window from all addresses together. */
export const MAX_UNAUTHENTICATED = 256

/**
 * Who may hold a stream connection. Authenticated connections count against
 * `stream.max_connections_per_ip` (read at each check, so a reload applies);
 * connections in the auth window count only against their own small caps,
 * so sockets that never authenticate cannot lock out subscribers that do.
 */
export class ConnectionLimits {
  #maxPerAddress: () => number
  #admitted = new Set<Subscriber>()
  #perAddress = new Map<string, number>()
  #waiting = new Set<Subscriber>()
  #waitingPerAddress = new Map<string, number>()

  constructor(maxPerAddress: () => number) {
    this.#maxPerAddress = maxPerAddress
  }

  /** Whether another connection from `ip` may enter the auth window. */
  mayWait(ip: string): boolean {
    return (this.#waitingPerAddress.get(ip) ?? 0) < MAX_UNAUTHENTICATED_PER_ADDRESS && this.#waiting.size < MAX_UNAUTHENTICATED
  }

  /** Counts `sub` in the auth window until `leaveWaiting` or `release`. */
  wait(sub: Subscriber): void {
    this.#waiting.add(sub)
    bump(this.#waitingPerAddress, sub.ip, 1)
  }

  leaveWaiting(sub: Subscriber): void {
    if (this.#waiting.delete(sub)) bump(this.#waitingPerAddress, sub.ip, -1)
  }

  /** Whether `ip` holds fewer authenticated connections than `stream.max_connections_per_ip`. */
  hasRoom(ip: string): boolean {
    return (this.#perAddress.get(ip) ?? 0) < this.#maxPerAddress()
  }

  /** Counts `sub` as authenticated until `release`. */
  admit(sub: Subscriber): void {
    this.#admitted.add(sub)
    bump(this.#perAddress, sub.ip, 1)
  }

  /** The connection closed: it counts nowhere any more. */
  release(sub: Subscriber): void {
    this.leaveWaiting(sub)
    if (this.#admitted.delete(sub)) bump(this.#perAddress, sub.ip, -1)
  }
}

function bump(counts: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + by
  if (n <= 0) counts.delete(key)
  else counts.set(key, n)
}
