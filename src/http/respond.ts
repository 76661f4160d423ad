import type { ServerResponse } from 'node:http'
import { statusOf, type HttpErrorCode } from '../errors.js'
import type { HttpResponse } from './uws.js'

const JSON_TYPE = 'application/json'

/** HTTP status lines uWS wants in full (the stream's upgrade answers). */
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
  431: '431 Request Header Fields Too Large',
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

/**
 * Writes a complete JSON answer, on the HTTP front (node:http) or on the
 * stream's uWS upgrade (call inside `res.cork()` there when after an await).
 * A response whose client has gone is left alone.
 */
export function sendJson(res: ServerResponse | HttpResponse, status: number, body: string, opts?: SendOptions): void {
  if (isNode(res)) {
    if (res.headersSent || res.destroyed) return
    const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) }
    if (opts?.headers) Object.assign(headers, opts.headers)
    if (opts?.close === true) headers.connection = 'close'
    res.writeHead(status, headers)
    res.end(body)
    return
  }
  res.writeStatus(STATUS[status] ?? `${status}`)
  res.writeHeader('content-type', JSON_TYPE)
  if (opts?.headers) for (const k in opts.headers) res.writeHeader(k, opts.headers[k]!)
  res.end(body, opts?.close === true)
}

/** Answers `{"error":{"code","message"}}` with the status the registry gives `code`. */
export function sendError(res: ServerResponse | HttpResponse, code: HttpErrorCode, message: string, opts?: SendOptions): void {
  sendJson(res, statusOf(code), errorBody(code, message), opts)
}

function isNode(res: ServerResponse | HttpResponse): res is ServerResponse {
  return typeof (res as ServerResponse).writeHead === 'function'
}
