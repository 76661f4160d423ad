import { RelayError, type HttpErrorCode } from '../errors.js'
import type { JournalPort, RunRow } from '../journal/port.js'
import { mirrorJson } from '../mirror/run-part.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { authorize, canRead, type TokenBook } from './auth.js'
import { sendError, sendJson } from './respond.js'
import type { Router } from './front.js'

const RUNS_PREFIX = '/v1/runs/'

/** Largest page `GET /v1/events` returns. */
export const EVENTS_LIMIT_MAX = 1000
/** A page stops growing past this many bytes of bodies (it always holds at least one event). */
export const EVENTS_PAGE_BYTES = 4 * 1024 * 1024
/** Entries one request may scan (for tokens that see few sources); `next` says where to go on. */
export const EVENTS_SCAN_MAX = 10_000

export interface ReadApiContext {
  journal: JournalPort
  tokens: () => TokenBook
}

/**
 * `GET /v1/runs/<source>/<id>` and `GET /v1/events?after=N&limit=M`, both
 * authorized by a subscriber's bearer token (a token sees only its sources).
 */
export function registerReadApi(router: Router, ctx: ReadApiContext): void {
  router.addPrefix('GET', RUNS_PREFIX, (req, res, path) => void serveRun(req, res, path, ctx).catch((e: unknown) => readFailed(res, e)))
  router.add('GET', '/v1/events', (req, res, _path, query) => void serveEvents(req, res, query, ctx).catch((e: unknown) => readFailed(res, e)))
}

async function serveRun(req: IncomingMessage, res: ServerResponse, path: string, ctx: ReadApiContext): Promise<void> {
  const who = authorize(req, res, (token) => ctx.tokens().lookup(token))
  if (!who) return
  const parts = path.slice(RUNS_PREFIX.length).split('/')
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    sendError(res, 'HOOKRELAY_API_NOT_FOUND', 'runs are at /v1/runs/<source>/<id>')
    return
  }
  let source: string
  let id: string
  try {
    source = decodeURIComponent(parts[0]!)
    id = decodeURIComponent(parts[1]!)
  } catch {
    sendError(res, 'HOOKRELAY_API_BAD_PATH', 'the path is not valid percent-encoding')
    return
  }
  const row = canRead(who, source) ? await ctx.journal.getRun(source, id) : undefined
  if (!row || row.revision === 0) {
    // Same answer for "not yours" and "absent": a token learns nothing about other sources.
    sendError(res, 'HOOKRELAY_API_NOT_FOUND', `no run ${id} from source ${source}`)
    return
  }
  sendJson(res, 200, await runJson(row, ctx.journal))
}

async function serveEvents(req: IncomingMessage, res: ServerResponse, query: string, ctx: ReadApiContext): Promise<void> {
  const who = authorize(req, res, (token) => ctx.tokens().lookup(token))
  if (!who) return
  const q = new URLSearchParams(query)
  const after = parseCount(q.get('after') ?? undefined, 0)
  const limit = parseCount(q.get('limit') ?? undefined, 100)
  if (after === undefined || limit === undefined) {
    sendError(res, 'HOOKRELAY_API_BAD_QUERY', 'after and limit must be non-negative integers')
    return
  }
  const want = Math.min(Math.max(limit, 1), EVENTS_LIMIT_MAX)
  const head = ctx.journal.head
  const parts: string[] = []
  let next = after
  let bytes = 0
  let scanned = 0
  let full = false
  // `next` also passes events this token may not see, so paging always ends;
  // the scan and the page size are bounded so one request cannot stall the loop.
  while (!full && parts.length < want && next < head && scanned < EVENTS_SCAN_MAX) {
    const batch = await ctx.journal.read(next, want)
    if (batch.length === 0) {
      // Pruned below `next`: skip to what is left.
      next = Math.max(next, ctx.journal.earliest - 1)
      if ((await ctx.journal.read(next, 1)).length === 0) break
      continue
    }
    for (const e of batch) {
      if (parts.length > 0 && bytes + e.body.length > EVENTS_PAGE_BYTES) {
        full = true
        break
      }
      next = e.seq
      scanned++
      if (!canRead(who, e.source)) continue
      parts.push(`{"seq":${e.seq},${e.fragment.toString()},"body":${e.body.toString()}}`)
      bytes += e.body.length
      if (parts.length === want || scanned >= EVENTS_SCAN_MAX) break
    }
  }
  sendJson(res, 200, `{"head":${head},"next":${next},"events":[${parts.join(',')}]}`)
}

/** A journal read that failed (a backend down, the journal failed): the client may retry. */
function readFailed(res: ServerResponse, e: unknown): void {
  if (res.headersSent || res.destroyed) return
  const known = e instanceof RelayError && e.status !== undefined
  const code: HttpErrorCode = known ? (e.code as HttpErrorCode) : 'HOOKRELAY_JOURNAL_FAILED'
  sendError(res, code, known ? e.message : 'the journal could not be read')
}


function parseCount(v: string | undefined, dflt: number): number | undefined {
  if (v === undefined || v === '') return dflt
  if (!/^\d{1,15}$/.test(v)) return undefined
  return Number(v)
}

/** The run row as the API shows it; `output` comes from the latest revision's body. */
export async function runJson(row: RunRow, journal: JournalPort): Promise<string> {
  let output = 'null'
  const ev = await journal.get(row.seq)
  if (ev) {
    try {
      const parsed = JSON.parse(ev.body.toString()) as { output?: unknown }
      if (parsed.output !== undefined) output = JSON.stringify(parsed.output)
    } catch {
      // Internal entries are always JSON; a foreign body without output shows null.
    }
  }
  return (
    `{"source":${JSON.stringify(row.source)},"id":${JSON.stringify(row.id)},"event":${JSON.stringify(row.event)},` +
    `"status":${JSON.stringify(row.status)},"seq":${row.seq},"revision":${row.revision},` +
    `"received_at":${JSON.stringify(row.received_at)},"output":${output},"mirror":${mirrorJson(row)}}`
  )
}
