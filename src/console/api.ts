/**
 * The console's JSON endpoints, each authorized by a subscriber's bearer
 * token like the read API (a token sees only its sources; "not yours" and
 * "absent" get the same 404):
 * - `GET /v1/events/<seq>`: one entry with the request headers kept with it
 *   and the seqs of its key's revisions (for the inspector);
 * - `GET /v1/console/session`: who the token is and which sources it reads;
 * - `GET /v1/console/stats`: cumulative counters the page turns into rates.
 */
import type { ServerResponse } from 'node:http'
import type { Histogram } from 'prom-client'
import type { RelayHost } from '../extension.js'
import { authorize, canRead, type Principal } from '../http/auth.js'
import { sendError, sendJson } from '../http/respond.js'

const EVENTS_PREFIX = '/v1/events/'
const NO_STORE = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }

export function registerConsoleApi(host: RelayHost): void {
  host.routePrefix('GET', EVENTS_PREFIX, (req, res, path) => {
    const who = authorize(req, res, host.lookupToken)
    if (!who) return
    const tail = path.slice(EVENTS_PREFIX.length)
    if (!/^\d{1,15}$/.test(tail)) {
      sendError(res, 'HOOKRELAY_API_NOT_FOUND', 'one event is at /v1/events/<seq>')
      return
    }
    void oneEvent(host, who, Number(tail)).then(
      (body) => {
        if (body === undefined) sendError(res, 'HOOKRELAY_API_NOT_FOUND', `no event ${tail} for this token`)
        else sendJson(res, 200, body, { headers: NO_STORE })
      },
      (err: unknown) => fail(host, res, err),
    )
  })

  host.route('GET', '/v1/console/session', (req, res) => {
    const who = authorize(req, res, host.lookupToken)
    if (!who) return
    const sources = Object.keys(host.config.sources).filter((s) => canRead(who, s))
    const body = { subscriber: who.name, role: who.role, sources, head: host.journal.head, epoch: host.journal.epoch }
    sendJson(res, 200, JSON.stringify(body), { headers: NO_STORE })
  })

  host.route('GET', '/v1/console/stats', (req, res) => {
    const who = authorize(req, res, host.lookupToken)
    if (!who) return
    void stats(host, who).then(
      (body) => sendJson(res, 200, JSON.stringify(body), { headers: NO_STORE }),
      (err: unknown) => fail(host, res, err),
    )
  })
}

async function oneEvent(host: RelayHost, who: Principal, seq: number): Promise<string | undefined> {
  const e = await host.journal.get(seq)
  if (!e || !canRead(who, e.source)) return undefined
  const row = await host.journal.getRun(e.source, e.key)
  // Oldest first, for side-by-side reading; the row keeps the latest few.
  const revisions = (row?.revisions ?? []).map((r) => ({ revision: r.revision, seq: r.seq })).sort((a, b) => a.revision - b.revision)
  return (
    `{"seq":${e.seq},${e.fragment.toString()},"headers":${JSON.stringify(e.private.headers ?? {})},` +
    `"revisions":${JSON.stringify(revisions)},"body":${JSON.stringify(e.body.toString('utf8'))}}`
  )
}

export interface ConsoleStats {
  /** Epoch ms of the sample. */
  at: number
  head: number
  journal_bytes: number
  /** Ingest requests answered 2xx, summed over the sources the token reads. */
  ingested: number
  /** hookrelay_ack_latency_seconds over the same sources. */
  ack_count: number
  ack_sum_seconds: number
}

/** Read from the relay's prom-client registry, so the page and /metrics agree. */
async function stats(host: RelayHost, who: Principal): Promise<ConsoleStats> {
  let ingested = 0
  let ackCount = 0
  let ackSum = 0
  const requests = host.registry.getSingleMetric('hookrelay_requests_total')
  for (const v of requests ? (await requests.get()).values : []) {
    const source = String(v.labels.source ?? '')
    if (/^2\d\d$/.test(String(v.labels.status)) && canRead(who, source)) ingested += v.value
  }
  const ack = host.registry.getSingleMetric('hookrelay_ack_latency_seconds') as Histogram | undefined
  for (const v of ack ? (await ack.get()).values : []) {
    if (!canRead(who, String(v.labels.source ?? ''))) continue
    if (v.metricName?.endsWith('_count')) ackCount += v.value
    else if (v.metricName?.endsWith('_sum')) ackSum += v.value
  }
  return { at: Date.now(), head: host.journal.head, journal_bytes: host.journal.usedBytes, ingested, ack_count: ackCount, ack_sum_seconds: ackSum }
}


function fail(host: RelayHost, res: ServerResponse, err: unknown): void {
  host.log.error({ err }, 'console API failed')
  sendError(res, 'HOOKRELAY_CONSOLE_FAILED', 'the relay could not answer; see its log')
}
