/**
 * `/livez`, `/readyz` and `/metrics` on the relay's listener.
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Config } from '../config/types.js'
import type { HttpErrorCode } from '../errors.js'
import type { JournalPort } from '../journal/port.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { Router } from './front.js'
import { bearerToken } from './auth.js'
import { canonicalIp, isLoopback } from './rate-limit.js'
import { sendError, sendJson } from './respond.js'

export interface HealthContext {
  journal: JournalPort
  metrics: Metrics
  log: Logger
  config: () => Config
  ready: () => boolean
  /** Why the relay is not ready (for `/readyz`'s 503). */
  notReadyReason: () => string
}

export function registerHealth(router: Router, ctx: HealthContext): void {
  const { journal, metrics, log } = ctx
  router.add('GET', '/livez', (_req, res) => sendJson(res, 200, '{"ok":true}'))
  router.add('GET', '/readyz', (_req, res) => {
    if (ctx.ready()) sendJson(res, 200, `{"ok":true,"head":${journal.head}}`)
    else sendError(res, 'HOOKRELAY_NOT_READY', ctx.notReadyReason(), { headers: { 'retry-after': '5' } })
  })
  router.add('GET', '/metrics', (req, res) => {
    const denied = metricsDenied(req, ctx.config())
    if (denied) {
      const [code, message] = denied
      sendError(res, code, message, code === 'HOOKRELAY_METRICS_UNAUTHORIZED' ? { headers: { 'www-authenticate': 'Bearer' } } : undefined)
      return
    }
    metrics.ready.set(ctx.ready() ? 1 : 0)
    metrics.journalBytes.set(journal.usedBytes)
    metrics.oldestSeq.set(journal.earliest)
    metrics.registry.metrics().then(
      (text) => {
        if (res.destroyed) return
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) })
        res.end(text)
      },
      (err: unknown) => {
        log.error({ err }, 'metrics failed')
        sendError(res, 'HOOKRELAY_METRICS_FAILED', 'metrics failed')
      },
    )
  })
}

/**
 * `/metrics` names subscribers and consumers: with `metrics.token` set it
 * wants that bearer token; without one it answers only when the relay
 * listens on loopback.
 */
function metricsDenied(req: IncomingMessage, config: Config): [HttpErrorCode, string] | undefined {
  const want = config.metrics.token
  if (want === '') {
    if (isLoopbackHost(config.listen.host)) return undefined
    return ['HOOKRELAY_METRICS_DISABLED', 'set metrics.token to read /metrics on a relay that listens beyond loopback']
  }
  const got = Buffer.from(bearerToken(req.headers.authorization) ?? '')
  const expected = Buffer.from(want)
  if (got.length === expected.length && timingSafeEqual(got, expected)) return undefined
  return ['HOOKRELAY_METRICS_UNAUTHORIZED', 'send Authorization: Bearer <metrics.token>']
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopback(canonicalIp(host))
}
