/**
 * One error class for the whole relay. Every failure carries a stable `code`
 * (`HOOKRELAY_<AREA>_<WHAT>`), listed in the README, and an HTTP status where
 * the failure maps to an answer.
 *
 * @example
 *   throw new RelayError('HOOKRELAY_INGEST_BODY_TOO_LARGE', 'body over 5 MiB', { status: 413 })
 */
export class RelayError extends Error {
  readonly code: string
  readonly status: number | undefined

  constructor(code: string, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'RelayError'
    this.code = code
    this.status = opts.status
  }
}

/** Exit code for a configuration error (sysexits EX_CONFIG). */
export const EX_CONFIG = 78
