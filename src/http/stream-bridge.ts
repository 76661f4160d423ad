/**
 * Carries WebSocket upgrades from the HTTP front (node:http) to the uWS app
 * that serves the stream, listening on a Unix socket in a private directory.
 *
 * uWS keeps the parts it is best at (per-socket backpressure, `drain`, pings,
 * cheap sends of one encoded frame to many sockets); the front only forwards
 * the upgrade request once, with the peer's address in PEER_HEADER, then
 * copies bytes both ways. Only this process can reach the socket (its
 * directory is 0700), so the header can be trusted; a client's own copy of it
 * is dropped.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { RelayError } from '../errors.js'
import { uws, type TemplatedApp, type us_listen_socket } from './uws.js'
import { carryUpgrade } from './upgrade-carry.js'

export { PEER_HEADER } from './upgrade-carry.js'

export class StreamBridge {
  #dir: string
  #path: string
  #listen: us_listen_socket | undefined
  #pairs = new Set<Duplex>()

  private constructor(dir: string) {
    this.#dir = dir
    this.#path = join(dir, 'stream.sock')
  }

  /** Makes the private directory and has `app` listen on a socket in it. */
  static async start(app: TemplatedApp): Promise<StreamBridge> {
    // mkdtemp makes the directory 0700 whatever the umask.
    const bridge = new StreamBridge(mkdtempSync(join(tmpdir(), 'hookrelay-')))
    const sock = await new Promise<us_listen_socket | false>((resolve) => app.listen_unix(resolve, bridge.#path))
    if (!sock) {
      rmSync(bridge.#dir, { recursive: true, force: true })
      throw new RelayError('HOOKRELAY_HTTP_LISTEN', `cannot listen on the stream's internal socket ${bridge.#path}`)
    }
    bridge.#listen = sock
    return bridge
  }

  /** The private socket uWS listens on (ingest threads carry upgrades straight to it). */
  get path(): string {
    return this.#path
  }

  /** Forwards one upgrade request and joins the two connections. */
  carry(req: IncomingMessage, client: Duplex, head: Buffer, peer: string): void {
    carryUpgrade(this.#path, this.#pairs, req, client, head, peer)
  }

  /** Stops listening and drops connections still open (the hub has closed its subscribers by then). */
  close(): void {
    if (this.#listen) uws.us_listen_socket_close(this.#listen)
    this.#listen = undefined
    for (const c of this.#pairs) c.destroy()
    this.#pairs.clear()
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

