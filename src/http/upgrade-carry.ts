/**
 * Carries one WebSocket upgrade to uWS's private Unix socket: the part of the
 * stream bridge an ingest thread runs too (it does not load uWS itself).
 */
import type { IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** The header that carries the client's address to the uWS side. */
export const PEER_HEADER = 'x-hookrelay-peer'

/**
 * Writes the upgrade request (with `peer` in PEER_HEADER) to the uWS socket at
 * `path` and joins the two connections; `pairs` holds the client until either
 * side closes.
 */
export function carryUpgrade(path: string, pairs: Set<Duplex>, req: IncomingMessage, client: Duplex, head: Buffer, peer: string): void {
  const upstream = connect(path)
  pairs.add(client)
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
    pairs.delete(client)
    client.destroy()
    upstream.destroy()
  }
  client.on('error', done)
  upstream.on('error', done)
  client.on('close', done)
  upstream.on('close', done)
}
