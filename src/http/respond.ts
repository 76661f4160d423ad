import type { HttpResponse } from './uws.js'

const JSON_TYPE = 'application/json'

/** HTTP status lines uWS wants in full. */
export const STATUS: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  411: '411 Length Required',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
}

/** `{"error":{"code","message"}}` — never carries secrets or why a signature failed. */
export function errorBody(code: string, message: string): string {
  return `{"error":{"code":${JSON.stringify(code)},"message":${JSON.stringify(message)}}}`
}

export interface SendOptions {
  headers?: Record<string, string>
  /** Close the connection after the answer (used after 413, where the rest of the body is unread). */
  close?: boolean
}

/** Writes a complete JSON answer. Call inside `res.cork()` when after an await. */
export function sendJson(res: HttpResponse, status: number, body: string, opts?: SendOptions): void {
  res.writeStatus(STATUS[status] ?? `${status}`)
  res.writeHeader('content-type', JSON_TYPE)
  if (opts?.headers) for (const k in opts.headers) res.writeHeader(k, opts.headers[k]!)
  res.end(body, opts?.close === true)
}

export function sendError(res: HttpResponse, status: number, code: string, message: string, opts?: SendOptions): void {
  sendJson(res, status, errorBody(code, message), opts)
}
