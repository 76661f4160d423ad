import { PEER_HEADER } from '../http/stream-bridge.js'
import type { HttpRequest, HttpResponse } from '../http/uws.js'

/**
 * The address a stream connection counts against (`stream.max_connections_per_ip`
 * and the unauthenticated caps). uWS's own peer is the HTTP front's private
 * Unix socket; the front forwards the client's address in PEER_HEADER, and
 * only the front can reach that socket, so the header is trusted here.
 */
export function peerAddress(_res: HttpResponse, req: HttpRequest): string {
  return req.getHeader(PEER_HEADER)
}
