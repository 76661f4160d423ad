/**
 * `/v1/destinations`: read by any subscriber token that may read every source
 * the destination delivers (`*` tokens see all), managed (replay, pause,
 * resume) only by an operator's token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RelayHost } from '../extension.js'
import { authorize, type Principal } from '../http/auth.js'
import { sendError, sendJson } from '../http/respond.js'
import type { DestinationWorker } from './worker.js'

const PREFIX = '/v1/destinations/'
/** A replay request's JSON body is small: `{"from": 42}` or `{"dead_letters": true}`. */
const MAX_BODY = 4096
const ATTEMPTS_LIMIT_MAX = 1000

export function registerDestinationApi(host: RelayHost, workers: ReadonlyMap<string, DestinationWorker>): void {
  host.route('GET', '/v1/destinations', (req, res) => {
    const who = authorize(req, res, host.lookupToken)
    if (!who) return
    const list = [...workers.values()].filter((w) => visible(who, w)).map((w) => w.summary())
    sendJson(res, 200, JSON.stringify({ destinations: list }))
  })

  host.routePrefix('GET', PREFIX, (req, res, path, query) => {
    const target = resolve(host, req, res, path, workers)
    if (!target) return
    const { worker, action } = target
    if (action === '') {
      void Promise.all([worker.deadLetters(), attemptsOf(worker, host, undefined, 20)]).then(
        ([dead, attempts]) => sendJson(res, 200, JSON.stringify({ ...worker.summary(), dead_letter_list: dead.slice(0, 1000), recent_attempts: attempts })),
        (err: unknown) => {
          host.log.error({ err, destination: worker.name }, 'cannot read destination dead letters')
          sendError(res, 'HOOKRELAY_DESTINATION_UNAVAILABLE', 'the dead letters could not be read; try again')
        },
      )
      return
    }
    if (action !== 'attempts') return notFound(res)
    const q = new URLSearchParams(query)
    const seq = q.get('seq')
    const limit = q.get('limit')
    if ((seq !== null && !/^\d{1,15}$/.test(seq)) || (limit !== null && !/^\d{1,6}$/.test(limit))) {
      sendError(res, 'HOOKRELAY_DESTINATION_BAD_REQUEST', 'seq and limit must be non-negative integers')
      return
    }
    const n = Math.min(Math.max(limit === null ? 100 : Number(limit), 1), ATTEMPTS_LIMIT_MAX)
    void attemptsOf(worker, host, seq === null ? undefined : Number(seq), n).then((attempts) => sendJson(res, 200, JSON.stringify({ attempts })))
  })

  host.routePrefix('POST', PREFIX, (req, res, path) => {
    const target = resolve(host, req, res, path, workers)
    if (!target) return
    const { worker, action, who } = target
    if (!['replay', 'pause', 'resume'].includes(action)) return notFound(res)
    if (who.role !== 'operator') {
      sendError(res, 'HOOKRELAY_DESTINATION_FORBIDDEN', `${action} needs an operator's token (subscribers[].role: operator)`)
      return
    }
    void readJson(req).then(
      async (body) => {
        if (action === 'pause') {
          await worker.pause('operator')
          return sendJson(res, 200, JSON.stringify(worker.summary()))
        }
        if (action === 'resume') {
          await worker.resume()
          return sendJson(res, 200, JSON.stringify(worker.summary()))
        }
        const from = (body as { from?: unknown } | undefined)?.from
        const dead = (body as { dead_letters?: unknown } | undefined)?.dead_letters
        if (typeof from === 'number' && Number.isSafeInteger(from) && from >= 1 && dead === undefined) {
          await worker.replayFrom(from)
          return sendJson(res, 202, JSON.stringify({ replay: 'from', from }))
        }
        if (dead === true && from === undefined) {
          const queued = await worker.replayDeadLetters()
          return sendJson(res, 202, JSON.stringify({ replay: 'dead_letters', queued }))
        }
        sendError(res, 'HOOKRELAY_DESTINATION_BAD_REQUEST', 'send {"from": <seq of at least 1>} or {"dead_letters": true}')
      },
      () => sendError(res, 'HOOKRELAY_DESTINATION_BAD_REQUEST', `the body must be JSON of at most ${MAX_BODY} bytes`),
    ).catch((err: unknown) => {
      host.log.error({ err, destination: worker.name, action }, 'destination action failed')
      sendError(res, 'HOOKRELAY_DESTINATION_UNAVAILABLE', 'the action could not be stored; try again')
    })
  })
}

function attemptsOf(worker: DestinationWorker, host: RelayHost, seq: number | undefined, limit: number) {
  return worker.attempts(seq, limit).catch((err: unknown) => {
    host.log.error({ err, destination: worker.name }, 'cannot read destination attempts')
    return []
  })
}


/** A destination is shown to tokens that may read everything it delivers. */
function visible(who: Principal, w: DestinationWorker): boolean {
  if (who.sources === null) return true
  const sources = w.config.sources
  return !sources.includes('*') && sources.every((s) => who.sources!.has(s))
}

function resolve(
  host: RelayHost,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  workers: ReadonlyMap<string, DestinationWorker>,
): { worker: DestinationWorker; action: string; who: Principal } | undefined {
  const who = authorize(req, res, host.lookupToken)
  if (!who) return undefined
  const [name = '', action = '', ...rest] = path.slice(PREFIX.length).split('/')
  const worker = workers.get(name)
  // Same answer for "not yours" and "absent".
  if (!worker || !visible(who, worker) || rest.length > 0) {
    notFound(res)
    return undefined
  }
  return { worker, action, who }
}

function notFound(res: ServerResponse): void {
  sendError(res, 'HOOKRELAY_DESTINATION_NOT_FOUND', 'no such destination; GET /v1/destinations lists them')
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new Error('too large'))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('error', reject)
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString()
      if (text.trim() === '') return resolve(undefined)
      try {
        resolve(JSON.parse(text))
      } catch (e) {
        reject(e)
      }
    })
  })
}
