/**
 * What an ingest thread does with a request that is not ingest: the read API,
 * health, metrics, the console and the extensions' routes are served by the
 * main thread, on its private Unix-socket listener; the ingest thread that
 * accepted the connection passes the request there and the answer back,
 * streaming both ways.
 *
 * Only this process can reach that socket (its directory is 0700), so the
 * client's address travels in PEER_HEADER (a client's own copy is replaced).
 */
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { sendError } from './respond.js'
import { PEER_HEADER } from './upgrade-carry.js'

/** Hop-by-hop headers: about one connection, never passed on (RFC 9110 7.6.1). */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

export class Forwarder {
  #path: string
  #agent: Agent

  /**
   * `path`: the main thread's private listener; `keepAliveMs`: how long it
   * keeps an idle connection. Idle connections are dropped here first, so a
   * request is never sent on one the main thread is closing.
   */
  constructor(path: string, keepAliveMs: number) {
    this.#path = path
    this.#agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: Math.max(500, Math.floor(keepAliveMs / 2)) })
  }

  forward(req: IncomingMessage, res: ServerResponse, peer: string): void {
    const headers: IncomingHttpHeaders = {}
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && k !== PEER_HEADER) headers[k] = v
    headers[PEER_HEADER] = peer
    // A chunked request body is passed on chunked again (node:http chunks a body of unknown length).
    if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked'
    const up = request({ socketPath: this.#path, agent: this.#agent, method: req.method, path: req.url, headers }, (answer) => {
      const out: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v
      if (answer.headers.connection === 'close') res.shouldKeepAlive = false
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out)
      answer.pipe(res)
      answer.on('error', () => res.destroy())
    })
    up.on('error', () => {
      // The main thread is closing (its listener is gone): the client may retry.
      if (!res.headersSent) sendError(res, 'HOOKRELAY_HTTP_CLOSING', 'the relay is shutting down; retry', { headers: { 'retry-after': '5' } })
      else res.destroy()
    })
    res.on('close', () => {
      if (!res.writableFinished) up.destroy()
    })
    req.pipe(up)
  }

  close(): void {
    this.#agent.destroy()
  }
}
