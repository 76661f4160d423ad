/** The tail's connection to `/v1/stream`: auth frame, resume from the last seq shown, reconnect with backoff. */
import { reconnectDelay, type TailBook, type TailEvent } from './logic.js'

export type StreamStatus =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'down'; reason: string; retryInMs: number }
  | { kind: 'denied'; reason: string }

/** Close codes after which reconnecting with the same token cannot help. */
const DENIED = new Set([4401, 4403])

export class TailStream {
  status: StreamStatus = { kind: 'connecting' }
  #url: string
  #token: string
  #book: TailBook
  #onChange: () => void
  #ws: WebSocket | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #failures = 0
  #stopped = false

  constructor(url: string, token: string, book: TailBook, onChange: () => void) {
    this.#url = url
    this.#token = token
    this.#book = book
    this.#onChange = onChange
  }

  start(): void {
    this.#stopped = false
    this.#connect()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#ws?.close(1000, 'signed out')
    this.#ws = undefined
  }

  #set(s: StreamStatus): void {
    this.status = s
    this.#onChange()
  }

  #connect(): void {
    this.#set({ kind: 'connecting' })
    const ws = new WebSocket(this.#url)
    this.#ws = ws
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: this.#token }))
    ws.onmessage = (m) => this.#frame(ws, JSON.parse(String(m.data)) as Record<string, unknown>)
    ws.onclose = (c) => {
      if (this.#ws !== ws || this.#stopped) return
      this.#ws = undefined
      if (DENIED.has(c.code)) {
        this.#set({ kind: 'denied', reason: c.reason || 'the relay refused this token' })
        return
      }
      const wait = reconnectDelay(this.#failures++)
      this.#set({ kind: 'down', reason: c.reason || `connection closed (${c.code})`, retryInMs: wait })
      this.#timer = setTimeout(() => this.#connect(), wait)
    }
  }

  #frame(ws: WebSocket, f: Record<string, unknown>): void {
    switch (f.type) {
      case 'welcome':
        this.#failures = 0
        ws.send(JSON.stringify({ type: 'subscribe', after: this.#book.resumeAfter(f as { epoch: string; head: number }) }))
        this.#set({ kind: 'live' })
        return
      case 'event':
        if (this.#book.add(f as unknown as TailEvent)) this.#onChange()
        return
      case 'error':
        // The connection stays open after these and takes another subscribe.
        if (f.code === 'cursor_expired') ws.send(JSON.stringify({ type: 'subscribe', after: this.#book.expired(Number(f.earliest)) }))
        else if (f.code === 'cursor_ahead') ws.send(JSON.stringify({ type: 'subscribe', after: Number(f.head) }))
        return
    }
  }
}
