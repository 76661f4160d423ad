/**
 * `GET /v1/consumers` and `DELETE /v1/consumers/<name>`: durable consumers
 * with their lag, for the console and for scripts. A reader token sees its
 * own subscriber's consumers; an operator token sees every one and may delete.
 */
import type { RelayHost } from '../extension.js'
import type { ServerResponse } from 'node:http'
import { authorize, type Principal } from '../http/auth.js'
import { sendError, sendJson } from '../http/respond.js'

const PREFIX = '/v1/consumers/'

export interface ConsumerBook {
  /** Every known consumer (`<subscriber>/<consumer>`, or a name stored before namespacing) and its acked seq. */
  list(): Promise<Map<string, number>>
  /** Consumers held by an open connection right now. */
  connected(): Iterable<string>
  /** Forgets a consumer's position; whether it existed. */
  forget(name: string): Promise<boolean>
}

export interface ConsumerInfo {
  name: string
  /** The subscriber it belongs to; null for a name stored before consumers were namespaced. */
  subscriber: string | null
  consumer: string
  /** Acked seq; null when connected and not acked yet. */
  acked: number | null
  lag: number
  connected: boolean
}

/** Registers the consumer routes on the hub's host. */
export function registerConsumersApi(host: RelayHost, book: ConsumerBook): void {
  host.route('GET', '/v1/consumers', (req, res) => {
    const who = authorize(req, res, host.lookupToken)
    if (!who) return
    void book.list().then(
      (acked) => listConsumers(res, who, host.journal.head, new Set(book.connected()), acked),
      (err: unknown) => {
        host.log.error({ err }, 'listing consumers failed')
        sendError(res, 'HOOKRELAY_JOURNAL_FAILED', 'the journal could not list the consumers; see the relay log')
      },
    )
  })

  host.routePrefix('DELETE', PREFIX, (req, res, path) => {
    const who = authorize(req, res, host.lookupToken)
    if (!who) return
    if (who.role !== 'operator') {
      sendError(res, 'HOOKRELAY_API_FORBIDDEN', 'deleting a consumer needs an operator token (subscribers[].role: operator)')
      return
    }
    let name: string
    try {
      name = decodeURIComponent(path.slice(PREFIX.length))
    } catch {
      sendError(res, 'HOOKRELAY_API_BAD_PATH', 'the path is not valid percent-encoding')
      return
    }
    if (new Set(book.connected()).has(name)) {
      // Deleting under a live connection would be undone by its next ack.
      sendError(res, 'HOOKRELAY_API_CONSUMER_CONNECTED', `consumer ${name} is connected; stop it first, then delete it`)
      return
    }
    book.forget(name).then(
      (existed) => {
        if (!existed) sendError(res, 'HOOKRELAY_API_NOT_FOUND', `no consumer ${name}`)
        else sendJson(res, 200, JSON.stringify({ deleted: name }))
      },
      (err: unknown) => {
        host.log.error({ err, consumer: name }, 'could not delete a consumer')
        sendError(res, 'HOOKRELAY_JOURNAL_FAILED', 'the journal could not delete the consumer; see the relay log')
      },
    )
  })
}


function listConsumers(res: ServerResponse, who: Principal, head: number, connected: Set<string>, acked: Map<string, number>): void {
  const out: ConsumerInfo[] = []
  for (const name of new Set([...acked.keys(), ...connected])) {
    const slash = name.indexOf('/')
    const subscriber = slash < 0 ? null : name.slice(0, slash)
    if (who.role !== 'operator' && subscriber !== who.name) continue
    const seq = acked.get(name)
    out.push({
      name,
      subscriber,
      consumer: slash < 0 ? name : name.slice(slash + 1),
      acked: seq ?? null,
      lag: Math.max(0, head - (seq ?? 0)),
      connected: connected.has(name),
    })
  }
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  sendJson(res, 200, JSON.stringify({ head, consumers: out }), { headers: { 'cache-control': 'no-store' } })
}
