import { RelayError } from '../errors.js'

/** One thing wrong with a config file, positioned (1-based; 0 when the file could not be read). */
export interface ConfigProblem {
  line: number
  col: number
  /** Dotted key path, e.g. `sources.runflow.verify.scheme`, `subscribers[0].token`; empty for YAML syntax. */
  path: string
  /** What is wrong, then what to do (`unknown key; expected one of path, verify, max_body`). */
  message: string
}

/**
 * Every problem found in a config file, all at once. `format()` prints one
 * line per problem as `file:line:col: path: what is wrong, what to do`.
 *
 * Codes: `HOOKRELAY_CONFIG_INVALID` (the file has problems),
 * `HOOKRELAY_CONFIG_UNREADABLE` (the file itself could not be read).
 *
 * @example
 *   try { loadConfig(file) } catch (err) {
 *     if (err instanceof ConfigError) { console.error(err.format()); process.exit(EX_CONFIG) }
 *     throw err
 *   }
 */
export class ConfigError extends RelayError {
  readonly file: string
  readonly problems: readonly ConfigProblem[]

  constructor(
    file: string,
    problems: readonly ConfigProblem[],
    opts: { code?: 'HOOKRELAY_CONFIG_INVALID' | 'HOOKRELAY_CONFIG_UNREADABLE'; cause?: unknown } = {},
  ) {
    const lines = problems.map((p) => formatProblem(file, p))
    const head = problems.length === 1 ? '' : `${problems.length} problems in ${file}\n`
    super(opts.code ?? 'HOOKRELAY_CONFIG_INVALID', head + lines.join('\n'), { cause: opts.cause })
    this.name = 'ConfigError'
    this.file = file
    this.problems = problems
  }

  /** One line per problem: `file:line:col: path: message`. */
  format(): string {
    return this.problems.map((p) => formatProblem(this.file, p)).join('\n')
  }
}

function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line > 0 ? `${file}:${p.line}:${p.col}` : file
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`
}
