import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

/** Creates the relay's logger: JSON lines on stdout (or the given stream). */
export function createLogger(level: string, stream?: DestinationStream): Logger {
  return pino({ level, base: { name: 'hookrelay' } }, stream ?? pino.destination({ dest: 1, sync: false }))
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
