import { parseArgs } from 'node:util'
import { readGeneratedSecrets } from '../config/generated.js'
import type { Config } from '../config/types.js'
import { subscribe } from './index.js'
import { ClientError, type StreamEvent } from './types.js'

export interface TailDeps {
  defaultConfig: string
  configOrExit: (file: string) => Config
  localBase: (cfg: Config) => string
  /** Where lines go (default stdout) — tests capture them. */
  out?: (line: string) => void
  err?: (line: string) => void
  /** Stops the tail (default: SIGINT / SIGTERM). */
  signal?: AbortSignal
}

/**
 * `hookrelay tail`: prints a relay's events as they arrive, on top of the
 * client library (so it reconnects and resumes by itself). Ctrl-C closes
 * cleanly (the last ack is sent) and exits 0; a fatal error exits 1.
 */
export async function runTail(args: string[], deps: TailDeps): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', default: deps.defaultConfig },
      url: { type: 'string' },
      token: { type: 'string' },
      after: { type: 'string' },
      consumer: { type: 'string' },
      sources: { type: 'string' },
      events: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  })
  const out = deps.out ?? ((s: string) => void process.stdout.write(`${s}\n`))
  const err = deps.err ?? ((s: string) => void process.stderr.write(`${s}\n`))

  let url = values.url
  let token = values.token
  if (url === undefined || token === undefined) {
    const cfg = deps.configOrExit(values.config)
    url ??= `ws://${deps.localBase(cfg)}/v1/stream`
    token ??= cfg.subscribers.find((s) => s.token !== '')?.token ?? firstGenerated(cfg)
    if (token === undefined) {
      err(`hookrelay: no subscriber token in ${values.config} nor generated in ${cfg.data_dir}; pass --token or start the relay once so it generates one`)
      process.exitCode = 1
      return
    }
  }
  let after: number | 'latest' | undefined
  if (values.after !== undefined) {
    if (values.after === 'latest') after = 'latest'
    else if (/^\d+$/.test(values.after)) after = Number(values.after)
    else {
      err(`hookrelay: --after must be a seq (a non-negative integer) or latest, not ${values.after}`)
      process.exitCode = 64
      return
    }
  }

  const stop = new AbortController()
  const onSignal = (): void => stop.abort()
  if (deps.signal) deps.signal.addEventListener('abort', onSignal, { once: true })
  else {
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  const sub = subscribe({
    url,
    token,
    after,
    consumer: values.consumer,
    sources: list(values.sources),
    events: list(values.events),
    signal: stop.signal,
    handler: (e) => out(values.json ? JSON.stringify(e) : line(e)),
  })
  sub.on('disconnected', (d) => err(`hookrelay: disconnected (${d.code}${d.reason ? ` ${d.reason}` : ''}); reconnecting in ${d.retryInMs} ms`))
  sub.on('live', (seq) => {
    if (!values.json) err(`hookrelay: live at seq ${seq}`)
  })
  try {
    await sub.done
    process.exitCode = 0
  } catch (e) {
    err(`hookrelay: ${e instanceof ClientError ? `${e.message} [${e.code}]` : String(e)}`)
    process.exitCode = 1
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}

function firstGenerated(cfg: Config): string | undefined {
  const g = readGeneratedSecrets(cfg.data_dir)
  return g ? Object.values(g.subscribers).find((t) => t !== '') : undefined
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  return items.length > 0 ? items : undefined
}

/** `seq source event key revision received_at` */
export function line(e: StreamEvent): string {
  return `${e.seq} ${e.source} ${e.event} ${e.key} ${e.revision} ${e.received_at}`
}
