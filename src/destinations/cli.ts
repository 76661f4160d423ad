/**
 * `hookrelay destinations list|show|attempts|replay|pause|resume`: the
 * relay's `/v1/destinations` API from the terminal, with a subscriber token
 * (an operator's for replay, pause and resume).
 */
import { parseArgs } from 'node:util'

export interface DestinationsCliIo {
  out: (line: string) => void
  err: (line: string) => void
}

const ACTIONS = ['list', 'show', 'attempts', 'replay', 'pause', 'resume'] as const

/** Exit status: 0 on a 2xx answer, 1 on any other or no answer, 64 on usage errors. */
export async function runDestinations(
  args: string[],
  io: DestinationsCliIo,
  defaults: (configFile: string | undefined) => { url?: string; token?: string },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      seq: { type: 'string' },
      limit: { type: 'string' },
      from: { type: 'string' },
      'dead-letters': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  })
  const usage = (s: string): number => {
    io.err(`hookrelay: ${s} (see hookrelay destinations --help)`)
    return 64
  }
  const [action, name, ...extra] = positionals
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) return usage(`name an action: ${ACTIONS.join(', ')}`)
  if (action !== 'list' && name === undefined) return usage(`${action} needs a destination name`)
  if (extra.length > 0 || (action === 'list' && name !== undefined)) return usage(`unexpected ${[name, ...extra].filter(Boolean).join(' ')}`)
  const fallback = values.url === undefined || values.token === undefined ? defaults(values.config) : {}
  const base = (values.url ?? fallback.url)?.replace(/\/+$/, '')
  const token = values.token ?? fallback.token
  if (base === undefined) return usage('--url http://HOST:PORT is required')
  if (token === undefined) return usage('--token is required (a subscriber token; an operator\'s for replay, pause and resume)')

  const path = `/v1/destinations${name === undefined ? '' : `/${encodeURIComponent(name)}`}`
  let method = 'GET'
  let target = path
  let body: string | undefined
  switch (action) {
    case 'attempts': {
      const q = new URLSearchParams()
      if (values.seq !== undefined) q.set('seq', values.seq)
      if (values.limit !== undefined) q.set('limit', values.limit)
      target = `${path}/attempts${q.size > 0 ? `?${q}` : ''}`
      break
    }
    case 'replay': {
      method = 'POST'
      target = `${path}/replay`
      const from = values.from
      if ((from === undefined) === (values['dead-letters'] !== true)) return usage('replay takes --from SEQ or --dead-letters')
      if (from !== undefined && !/^\d{1,15}$/.test(from)) return usage('--from must be a seq')
      body = JSON.stringify(from !== undefined ? { from: Number(from) } : { dead_letters: true })
      break
    }
    case 'pause':
    case 'resume':
      method = 'POST'
      target = `${path}/${action}`
      break
  }
  let res: Response
  try {
    res = await fetch(`${base}${target}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body,
      signal: AbortSignal.timeout(10_000),
    })
  } catch (e) {
    const cause = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message
    io.err(`hookrelay: cannot reach ${base}: ${cause}; is the relay running?`)
    return 1
  }
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error
    io.err(`hookrelay: ${res.status} ${error ? `${error.code}: ${error.message}` : text}`)
    return 1
  }
  if (action === 'list' && values.json !== true) {
    const list = (json as { destinations: Array<Record<string, unknown>> }).destinations
    if (list.length === 0) io.out('no destination configured (or none this token may see)')
    for (const d of list) {
      const state = d.paused === true ? `paused (${String(d.paused_reason)})` : `circuit ${String(d.circuit)}`
      io.out(`${String(d.name)}  ${state}  lag ${String(d.lag)}  dead letters ${String(d.dead_letters)}  ${String(d.url)}`)
    }
    return 0
  }
  io.out(JSON.stringify(json, null, 2))
  return 0
}
