/** Calls to the relay with the signed-in token as a bearer header. */
import type { StreamEvent } from '../../src/protocol/frames.js'

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export interface Session {
  subscriber: string
  role: 'reader' | 'operator'
  sources: string[]
  head: number
  epoch: string
}

/** `GET /v1/events/<seq>`: the stream's event with the raw body as text, the headers kept with it, and the key's revisions. */
export interface OneEvent extends StreamEvent<string> {
  headers: Record<string, string>
  revisions: Array<{ revision: number; seq: number }>
}

export async function api<T>(token: string, path: string, init: RequestInit = {}): Promise<T> {
  let res: Response
  try {
    res = await fetch(path, { ...init, headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
  } catch {
    throw new ApiError(0, 'network', 'cannot reach the relay')
  }
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `the relay answered ${res.status}`)
  }
  return json as T
}
