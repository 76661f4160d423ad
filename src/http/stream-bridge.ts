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
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { RelayError } from '../errors.js'
import { uws, type TemplatedApp, type us_listen_socket } from './uws.js'

/** The header that carries the client's address to the uWS side. */
export const PEER_HEADER = 'x-hookrelay-peer'

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

  /** Forwards one upgrade request and joins the two connections. */
  carry(req: IncomingMessage, client: Duplex, head: Buffer, peer: string): void {
    const upstream = connect(this.#path)
    this.#pairs.add(client)
    upstream.setNoDelay(true)
    ;(client as Socket).setNoDelay?.(true)
    let text = `GET ${req.url ?? '/'} HTTP/1.1\r\n`
    const raw = req.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() !== PEER_HEADER) text += `${raw[i]}: ${raw[i + 1]}\r\n`
    }
    text += `${PEER_HEADER}: ${peer}\r\n\r\n`
    upstream.write(text)
    if (head.length > 0) upstream.write(head)
    client.pipe(upstream)
    upstream.pipe(client)
    const done = (): void => {
      this.#pairs.delete(client)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', done)
    upstream.on('error', done)
    client.on('close', done)
    upstream.on('close', done)
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
