import type { HttpRequest, HttpResponse } from '../http/uws.js'

/**
 * The address a stream connection counts against (`stream.max_connections_per_ip`
 * and the unauthenticated caps). Read in this one place because the stream
 * will be reached through a front listener, and then the peer is whatever
 * that front vouches for, not the socket uWS sees.
 */
export function peerAddress(res: HttpResponse, _req: HttpRequest): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString()
}
