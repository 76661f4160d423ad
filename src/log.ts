import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

export type LogFormat = 'auto' | 'json' | 'pretty'

/**
 * Creates the relay's logger on stdout (or the given stream, always JSON):
 * JSON lines for journald, Docker and log shippers; lines a person can read
 * when `format` is pretty, or auto and stdout is a terminal.
 */
export function createLogger(level: string, stream?: DestinationStream, format: LogFormat = 'auto'): Logger {
  const opts = { level, base: { name: 'hookrelay' } }
  if (stream !== undefined) return pino(opts, stream)
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true)
  if (!pretty) return pino(opts, pino.destination({ dest: 1, sync: false }))
  // Synchronous, so that the last lines before a process.exit reach the terminal.
  const out = pino.destination({ dest: 1, sync: true })
  const color = process.stdout.isTTY === true && process.env.NO_COLOR === undefined
  return pino(opts, { write: (line: string) => out.write(prettyLine(line, color)) })
}

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '90'],
  20: ['DEBUG', '36'],
  30: ['INFO ', '32'],
  40: ['WARN ', '33'],
  50: ['ERROR', '31'],
  60: ['FATAL', '35'],
}
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'err'])

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value …`, with an
 * error's stack on the lines below. A line that is not JSON passes unchanged.
 */
export function prettyLine(line: string, color: boolean): string {
  let rec: Record<string, unknown>
  try {
    rec = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s)
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : ''
  const [name, code] = LEVELS[rec.level as number] ?? [String(rec.level), '0']
  const fields = Object.entries(rec)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${paint('2', `${k}=`)}${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`)
  let out = `${time} ${paint(code, name)} ${typeof rec.msg === 'string' ? rec.msg : ''}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`
  const err = rec.err as { stack?: unknown; message?: unknown } | undefined
  if (err !== undefined) out += `${String(err.stack ?? err.message ?? JSON.stringify(err)).replace(/^/gm, '    ')}\n`
  return out
}

/**
 * Logs rejected requests at warn, at most `perSecond` lines a second, so that
 * a flood of bad signatures cannot fill the disk. What it drops is counted and
 * reported in the next line it writes.
 */
export class RejectLog {
  #log: Logger
  #perSecond: number
  #windowStart = 0
  #inWindow = 0
  #dropped = 0

  constructor(log: Logger, perSecond = 20) {
    this.#log = log
    this.#perSecond = perSecond
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#inWindow = 0
    }
    if (this.#inWindow >= this.#perSecond) {
      this.#dropped++
      return
    }
    this.#inWindow++
    if (this.#dropped > 0) {
      this.#log.warn({ ...fields, suppressed: this.#dropped }, msg)
      this.#dropped = 0
    } else {
      this.#log.warn(fields, msg)
    }
  }
}
