import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { request } from 'node:http'
import { WebSocket } from 'ws'

interface TapLike {
  teardown(fn: () => unknown): void
}

/** A `ws` client that queues parsed frames so a test can await them one by one. */
export class Conn {
  readonly ws: WebSocket
  readonly frames: any[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  #waiters: Array<() => void> = []
  constructor(ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)))
      for (const w of this.#waiters.splice(0)) w()
    })
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const w of this.#waiters.splice(0)) w()
      })
    })
  }
  /** The next frame; throws when the connection closes or nothing comes for a while (so a failure does not hang the file). */
  async next(): Promise<any> {
    const giveUp = Date.now() + 5000
    while (this.frames.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('closed while waiting for a frame')
      if (Date.now() >= giveUp) throw new Error('no frame within 5 s')
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 250)
        this.#waiters.push(() => {
          clearTimeout(timer)
          r()
        })
      })
    }
    return this.frames.shift()
  }
  /** How the connection ended, or code 0 when it is still open after 5 s (so a failure does not hang the file). */
  end(): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined
    const open = new Promise<{ code: number; reason: string }>((r) => (timer = setTimeout(() => r({ code: 0, reason: 'still open after 5 s' }), 5000)))
    return Promise.race([this.closed, open]).finally(() => clearTimeout(timer))
  }
  send(v: unknown): void {
    this.ws.send(typeof v === 'string' ? v : JSON.stringify(v))
  }
}

/**
 * Opens a stream connection (bearer token in the header when given), terminated at teardown.
 * `localAddress` (e.g. 127.0.0.2) makes it come from another loopback address.
 */
export async function connect(t: TapLike, url: string, token?: string, opts: { localAddress?: string } = {}): Promise<Conn> {
  const ws = new WebSocket(url, { ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}), ...opts })
  t.teardown(() => ws.terminate())
  const c = new Conn(ws)
  await once(ws, 'open')
  return c
}

/** The HTTP status a failed upgrade gets (and proof it was not 101). */
export function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url.replace('ws:', 'http:'))
    const req = request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': createHash('md5').update(String(Math.random())).digest('base64'),
        ...headers,
      },
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve(res.statusCode ?? 0)
    })
    req.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}
