/**
 * The state of one validation pass over a parsed config document: problems
 * found so far, where each key path is written, and whether the current block
 * is in force. Plus the small node and path helpers the specs share.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml'
import type { ConfigProblem } from './config-error.js'
import { interpolate, type Env } from './interpolate.js'

export const INVALID: unique symbol = Symbol('invalid')
export type Invalid = typeof INVALID

/** Validation state for one file: problems found so far and where each key path sits. */
export class Walk {
  readonly problems: ConfigProblem[] = []
  /**
   * True inside a block that is not in force (a disabled `mirror`): problems that
   * depend on the environment (unset `${VAR}`s, missing `*_file`s, values that
   * came from `${...}`, missing required keys) are not reported there.
   */
  relaxed = false
  readonly #offsets = new Map<string, number>()
  readonly #doc: Document.Parsed
  readonly #lines: LineCounter
  readonly env: Env
  readonly cwd: string

  constructor(doc: Document.Parsed, lines: LineCounter, env: Env, cwd: string) {
    this.#doc = doc
    this.#lines = lines
    this.env = env
    this.cwd = cwd
  }

  /** Remembers where `path` is written, for problems found later (cross-checks). */
  mark(path: string, offset: number): void {
    if (!this.#offsets.has(path)) this.#offsets.set(path, offset)
  }

  /** Where `path` is written, else where its nearest written ancestor is, else the file start. */
  offsetOf(path: string): number {
    for (let p = path; p !== ''; p = parentPath(p)) {
      const at = this.#offsets.get(p)
      if (at !== undefined) return at
    }
    return 0
  }

  /**
   * Records a problem at `opts.offset` (default: where `path` is written).
   * `soft` problems are dropped inside a relaxed block.
   */
  report(path: string, message: string, opts: { offset?: number; soft?: boolean } = {}): void {
    if (opts.soft === true && this.relaxed) return
    const pos = this.positionOf(opts.offset ?? this.offsetOf(path))
    this.problems.push({ line: pos.line, col: pos.col, path, message })
  }

  /** Whether a problem was already reported at exactly `path`. */
  reported(path: string): boolean {
    return this.problems.some((p) => p.path === path)
  }

  positionOf(offset: number): { line: number; col: number } {
    return this.#lines.linePos(offset)
  }

  /** Follows an alias (`*name`) to the node it points at. */
  deref(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.#doc) : node
  }

  /**
   * The value of a scalar node with `${...}` expanded. Reports and returns
   * `INVALID` for a collection, a malformed reference or an unset variable.
   */
  scalar(node: unknown, path: string, expects: string): { value: unknown; fromEnv: boolean; offset: number } | Invalid {
    const target = this.deref(node)
    const offset = offsetOfNode(target)
    if (!isScalar(target)) {
      this.report(path, `expected ${expects}, got ${describeNode(target)}`, { offset })
      return INVALID
    }
    if (typeof target.value !== 'string') return { value: target.value, fromEnv: false, offset }
    let expanded
    try {
      expanded = interpolate(target.value, this.env)
    } catch (err) {
      this.report(path, (err as Error).message, { offset })
      return INVALID
    }
    if (expanded.unset.length > 0) {
      const [name] = expanded.unset
      this.report(
        path,
        `\${${name}} is not set; set ${name} in the environment, or write \${${name}:-default} (\${${name}:-} for empty)`,
        { offset, soft: true },
      )
      return INVALID
    }
    return { value: expanded.value, fromEnv: expanded.substituted, offset }
  }
}

/** Where a node starts in the text (0 when it has no position). */
export function offsetOfNode(node: unknown): number {
  const range = (node as Node | null | undefined)?.range
  return range?.[0] ?? 0
}

export function isNull(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null)
}

export function describeNode(node: unknown): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) return describeValue(node.value)
  return 'nothing'
}

export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (v === null) return 'null'
  return `${typeof v} ${String(v)}`
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

export function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['))
  return cut === -1 ? '' : path.slice(0, cut)
}

export function lastKey(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('.'), path.lastIndexOf(']')) + 1)
}

/** The allowed word nearest to a typo, when it is near enough to be a likely fix. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost)
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}
