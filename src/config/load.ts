/**
 * Loads `hookrelay.yaml`: parse with positions, expand `${ENV}`, read
 * `*_file` secrets, validate every key, cross-check, and hand back one deeply
 * frozen `Config`, or a `ConfigError` listing every problem at once.
 */
import { readFileSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { ConfigError, type ConfigProblem } from './config-error.js'
import { configSpec, crossCheck, servingCheck, toConfig, type ConfigFile } from './schema.js'
import { INVALID, Walk } from './walk.js'
import type { Config } from './types.js'

export { ConfigError, type ConfigProblem } from './config-error.js'

export interface LoadOptions {
  /** Where `${VAR}`s come from; default `process.env`. */
  env?: NodeJS.ProcessEnv
  /** Base for relative `data_dir`, `*_file` and config paths; default `process.cwd()`. */
  cwd?: string
  /**
   * Also check what a relay serving this file needs (`check-config`, `serve`):
   * at least one source, and a data_dir this host can use. Off for the
   * commands that only read the config (`send`, `tail`, ...), which may run elsewhere.
   */
  serving?: boolean
}

/**
 * Reads and validates a config file.
 *
 * @throws {ConfigError} `HOOKRELAY_CONFIG_UNREADABLE` when the file cannot be
 *   read, `HOOKRELAY_CONFIG_INVALID` with every problem found otherwise.
 * @example
 *   const config = loadConfig('config/hookrelay.yaml')
 *   config.sources.runflow?.path // '/webhook/runflow'
 */
export function loadConfig(file: string, opts: LoadOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd()
  let text: string
  try {
    text = readFileSync(resolvePath(cwd, file), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new ConfigError(
      file,
      [{ line: 0, col: 0, path: '', message: `cannot read the config file (${code}); check the --config path` }],
      { code: 'HOOKRELAY_CONFIG_UNREADABLE', cause: err },
    )
  }
  return loadConfigText(text, file, opts)
}

/**
 * Validates config text; `file` names it in messages and `Config.file`
 * (`<inline>` or any `<...>` name is kept as is).
 *
 * @example
 *   loadConfigText('sources:\n  gh: { verify: { scheme: github } }\n', 'test.yaml', { env: {} })
 */
export function loadConfigText(text: string, file: string, opts: LoadOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd()
  const env = opts.env ?? process.env
  const lines = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    // YAML 1.2 core: `yes`/`no`/`on` stay strings, `0123` is not octal.
    version: '1.2',
    schema: 'core',
    uniqueKeys: true,
    merge: false,
  })
  const syntax = [...doc.errors, ...doc.warnings]
  if (syntax.length > 0) {
    // The tree is unreliable past a syntax error; report those alone.
    const problems: ConfigProblem[] = syntax.map((e) => {
      const { line, col } = lines.linePos(e.pos[0])
      return { line, col, path: '', message: `${lowerFirst(e.message)}; fix the YAML syntax` }
    })
    throw new ConfigError(file, problems)
  }

  const w = new Walk(doc, lines, env, cwd)
  const parsed = doc.contents === null ? configSpec.absent('', w, true) : configSpec.check(doc.contents, '', w)
  const result: ConfigFile = parsed === INVALID ? configSpec.absent('', w, false) : parsed
  crossCheck(result, w)
  if (opts.serving === true) servingCheck(result, w)
  if (w.problems.length > 0) {
    const sorted = w.problems
      .map((p, i) => ({ p, i }))
      .sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
      .map(({ p }) => p)
    throw new ConfigError(file, sorted)
  }
  const absFile = file.startsWith('<') ? file : resolvePath(cwd, file)
  return deepFreeze(toConfig(result, absFile, cwd))
}

/** Freezes a plain object graph in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

function lowerFirst(s: string): string {
  return s.length > 1 && /^[A-Z][a-z]/.test(s) ? s[0]?.toLowerCase() + s.slice(1) : s
}
