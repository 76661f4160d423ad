/**
 * A small declarative validator over `yaml` nodes: `obj`, `mapOf`, `list` and
 * typed scalars (`str`, `num`, `size`, `duration`, …) that report every problem
 * with its position instead of stopping at the first, and fall back to the
 * default so the walk can go on. Specs carry their own defaults, so the result
 * of a walk is fully typed.
 */
import { readFileSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import { isMap, isScalar, isSeq, type Pair } from 'yaml'
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js'
import {
  closest,
  describeNode,
  describeValue,
  INVALID,
  isNull,
  join,
  lastKey,
  offsetOfNode,
  type Invalid,
  type Walk,
} from './walk.js'

/** A typed, positioned check of one config value. */
export interface Spec<T> {
  /** Checks a present, non-null node; reports and returns `INVALID` when it is wrong. */
  check(node: unknown, path: string, w: Walk): T | Invalid
  /** The value when the key is absent; reports a missing required key when `report` is set. */
  absent(path: string, w: Walk, report: boolean): T
  /** Set when the key may be given as `<key>_file` instead: turns the file's text into the value. */
  readonly fromFile?: (text: string) => T
}

type SpecOut<S> = S extends Spec<infer T> ? T : never
type WithDefault<O, T> = O extends { default: unknown } ? T : T | undefined

interface ScalarOpts<D> {
  default?: D
  required?: boolean
  /** How to add the key when it is required and missing (`add scheme: runflow`). */
  hint?: string
}

function scalarSpec<T>(
  expects: string,
  convert: (value: unknown, fromEnv: boolean) => T,
  o: ScalarOpts<unknown>,
  dflt: T | undefined,
): Spec<T | undefined> {
  return {
    check(node, path, w) {
      const s = w.scalar(node, path, expects)
      if (s === INVALID) return INVALID
      try {
        return convert(s.value, s.fromEnv)
      } catch (err) {
        w.report(path, (err as Error).message, { offset: s.offset, soft: s.fromEnv })
        return INVALID
      }
    },
    absent(path, w, report) {
      if (o.required === true && report) {
        w.report(path, `missing; ${o.hint ?? `add ${lastKey(path)}: <${expects}>`}`, { soft: true })
      }
      return dflt
    },
  }
}

interface StrOpts extends ScalarOpts<string> {
  /** Throws an `Error` ("what is wrong; what to do") when the string is not acceptable. */
  check?: (s: string) => void
  /** Do not echo the value in messages. */
  secret?: boolean
}

/** A string; numbers and booleans are refused (quote them) so `0123` never turns into `123`. */
export function str<O extends StrOpts = Record<never, never>>(o: O = {} as O): Spec<WithDefault<O, string>> {
  const convert = (v: unknown): string => {
    if (typeof v !== 'string') {
      const shown = o.secret === true ? `a ${typeof v}` : `${typeof v} ${String(v)}`
      throw new Error(`expected a string, got ${shown}; quote it`)
    }
    o.check?.(v)
    return v
  }
  return scalarSpec('a string', convert, o, o.default) as Spec<WithDefault<O, string>>
}

/** A secret string that may also be given as `<key>_file` (trimmed file content); defaults to `''`. */
export function secret(): Spec<string> {
  const base = str({ default: '', secret: true })
  return { ...base, fromFile: (text) => text.trim() }
}

interface NumOpts extends ScalarOpts<number> {
  min?: number
  max?: number
  integer?: boolean
}

/** A number (an integer unless `integer: false`); a `${VAR}` giving digits counts. */
export function num<O extends NumOpts = Record<never, never>>(o: O = {} as O): Spec<WithDefault<O, number>> {
  const integer = o.integer !== false
  const what = integer ? 'an integer' : 'a number'
  const range = rangeText(o.min, o.max, String)
  const convert = (v: unknown, fromEnv: boolean): number => {
    const n = fromEnv && typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v
    if (typeof n !== 'number' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new Error(`expected ${what}${range}, got ${describeValue(v)}`)
    }
    if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
      throw new Error(`${n} is out of range; use ${what}${range}`)
    }
    return n
  }
  return scalarSpec(what, convert, o, o.default) as Spec<WithDefault<O, number>>
}

/** `auto` or a whole number from 1 to `max` (`http.threads`); a `${VAR}` giving digits counts. */
export function threadCount(o: { default: 'auto' | number; max: number }): Spec<'auto' | number> {
  const convert = (v: unknown, fromEnv: boolean): 'auto' | number => {
    if (v === 'auto') return 'auto'
    const n = fromEnv && typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= o.max) return n
    throw new Error(`expected auto or an integer from 1 to ${o.max}, got ${describeValue(v)}`)
  }
  return scalarSpec('auto or a number of threads', convert, o, o.default) as Spec<'auto' | number>
}

/** `true` or `false` (YAML 1.2: `yes`/`no` are strings and refused). */
export function bool<O extends ScalarOpts<boolean> = Record<never, never>>(o: O = {} as O): Spec<WithDefault<O, boolean>> {
  const convert = (v: unknown, fromEnv: boolean): boolean => {
    if (typeof v === 'boolean') return v
    if (fromEnv && typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true'
    throw new Error(`expected true or false, got ${describeValue(v)}`)
  }
  return scalarSpec('true or false', convert, o, o.default) as Spec<WithDefault<O, boolean>>
}

/** One of a fixed set of strings. */
export function oneOf<const V extends string, O extends ScalarOpts<V> = Record<never, never>>(
  values: readonly V[],
  o: O = {} as O,
): Spec<WithDefault<O, V>> {
  const list = values.join(', ')
  const convert = (v: unknown): V => {
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as V
    const guess = typeof v === 'string' ? closest(v, values) : undefined
    throw new Error(
      `${describeValue(v)} is not allowed; use one of ${list}${guess === undefined ? '' : ` (did you mean ${guess}?)`}`,
    )
  }
  return scalarSpec(`one of ${list}`, convert, o, o.default) as Spec<WithDefault<O, V>>
}

interface UnitOpts extends ScalarOpts<string | number> {
  min?: string | number
  max?: string | number
}

/** A size in bytes: `5mb`, `512kb`, `4gb` (binary multiples) or a number of bytes. */
export function size<O extends UnitOpts = Record<never, never>>(o: O = {} as O): Spec<WithDefault<O, number>> {
  return unitSpec('a size like 5mb', parseSize, formatSize, o) as Spec<WithDefault<O, number>>
}

/** A duration in milliseconds: `500ms`, `300s`, `2m`, `1h`, `7d`, `1h30m` or a number of milliseconds. */
export function duration<O extends UnitOpts = Record<never, never>>(o: O = {} as O): Spec<WithDefault<O, number>> {
  return unitSpec('a duration like 300s', parseDuration, formatDuration, o) as Spec<WithDefault<O, number>>
}

function unitSpec(
  expects: string,
  parse: (v: string | number) => number,
  format: (n: number) => string,
  o: UnitOpts,
): Spec<number | undefined> {
  const min = o.min === undefined ? undefined : parse(o.min)
  const max = o.max === undefined ? undefined : parse(o.max)
  const range = rangeText(min, max, format)
  const convert = (v: unknown): number => {
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`expected ${expects}, got ${describeValue(v)}`)
    const n = parse(v)
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
      throw new Error(`${typeof v === 'string' ? v : format(n)} is out of range; use${range}`)
    }
    return n
  }
  return scalarSpec(expects, convert, o, o.default === undefined ? undefined : parse(o.default))
}

interface ListOpts<T> {
  default?: T[]
}

/** A YAML list; wrong items are reported and left out. */
export function list<T, O extends ListOpts<T> = Record<never, never>>(
  item: Spec<T>,
  o: O = {} as O,
): Spec<WithDefault<O, Exclude<T, undefined>[]>> {
  type Item = Exclude<T, undefined>
  const spec: Spec<Item[] | undefined> = {
    check(node, path, w) {
      const seq = w.deref(node)
      if (!isSeq(seq)) {
        const example = isScalar(seq) && typeof seq.value === 'string' ? `[${JSON.stringify(seq.value)}]` : '[a, b]'
        w.report(path, `expected a list, got ${describeNode(seq)}; write it as ${example}`, { offset: offsetOfNode(seq) })
        return INVALID
      }
      const out: Item[] = []
      seq.items.forEach((itemNode, i) => {
        const itemPath = `${path}[${i}]`
        const target = w.deref(itemNode)
        w.mark(itemPath, offsetOfNode(target))
        if (isNull(target)) {
          w.report(itemPath, 'empty list item; give it a value or remove it', { offset: offsetOfNode(target) })
          return
        }
        const v = item.check(target, itemPath, w)
        if (v !== INVALID && v !== undefined) out.push(v as Item)
      })
      return out
    },
    absent() {
      return o.default === undefined ? undefined : (o.default.filter((v) => v !== undefined) as Item[])
    },
  }
  return spec as Spec<WithDefault<O, Exclude<T, undefined>[]>>
}

/**
 * A list of secrets that may also be given as `<key>_file` (one per line).
 * Empty entries are dropped, so `["${SECRET:-}"]` with SECRET unset is `[]`.
 */
export function secretList(): Spec<string[]> {
  const base = list(str({ secret: true }), { default: [] })
  const dropEmpty = (v: string[]): string[] => v.filter((s) => s !== '')
  return {
    check: (node, path, w) => {
      const v = base.check(node, path, w)
      return v === INVALID ? v : dropEmpty(v)
    },
    absent: () => [],
    fromFile: (text) => dropEmpty(text.split(/\r?\n/).map((s) => s.trim())),
  }
}

type Fields = Record<string, Spec<unknown>>
type ObjOut<F extends Fields> = { [K in keyof F]: SpecOut<F[K]> }

interface ObjOpts {
  required?: boolean
  /** How to add the block when it is required and missing. */
  hint?: string
  /**
   * A boolean field that puts the block in force: while it is false, the block
   * is walked relaxed (keys must still be known; see `Walk.relaxed`).
   */
  gate?: string
}

/** A mapping with known keys; unknown keys are errors, absent keys take their defaults. */
export function obj<F extends Fields, O extends ObjOpts = Record<never, never>>(
  fields: F,
  o: O = {} as O,
): Spec<O extends { required: true } ? ObjOut<F> | undefined : ObjOut<F>> {
  const allowed = Object.entries(fields).flatMap(([k, s]) => (s.fromFile === undefined ? [k] : [k, `${k}_file`]))

  const build = (entries: Map<string, Pair>, path: string, w: Walk, report: boolean): ObjOut<F> => {
    const out: Record<string, unknown> = {}
    const wasRelaxed = w.relaxed
    const order = Object.keys(fields)
    if (o.gate !== undefined) {
      // Decide first whether the block is in force; the rest is walked under that answer.
      order.sort((a, b) => Number(b === o.gate) - Number(a === o.gate))
    }
    for (const name of order) {
      const spec = fields[name] as Spec<unknown>
      const childPath = join(path, name)
      const plain = entries.get(name)
      const file = spec.fromFile === undefined ? undefined : entries.get(`${name}_file`)
      if (plain !== undefined && file !== undefined) {
        const later = offsetOfNode(plain.key) > offsetOfNode(file.key) ? name : `${name}_file`
        const laterPair = later === name ? plain : file
        w.report(join(path, later), `both ${name} and ${name}_file are set; keep one`, {
          offset: offsetOfNode(laterPair.key),
        })
      }
      let value: unknown = INVALID
      if (plain !== undefined && !isNull(w.deref(plain.value))) {
        value = spec.check(plain.value, childPath, w)
      } else if (file !== undefined && spec.fromFile !== undefined && !isNull(w.deref(file.value))) {
        value = readSecretFile(file, childPath, spec.fromFile, w)
      } else {
        value = spec.absent(childPath, w, report)
      }
      out[name] = value === INVALID ? spec.absent(childPath, w, false) : value
      if (name === o.gate && out[name] === false) w.relaxed = true
    }
    w.relaxed = wasRelaxed
    return out as ObjOut<F>
  }

  const spec: Spec<ObjOut<F> | undefined> = {
    check(node, path, w) {
      const map = w.deref(node)
      if (!isMap(map)) {
        w.report(path, `expected a mapping (key: value), got ${describeNode(map)}`, { offset: offsetOfNode(map) })
        return INVALID
      }
      const entries = new Map<string, Pair>()
      for (const pair of map.items) {
        const key = w.deref(pair.key)
        const keyName = isScalar(key) ? String(key.value) : ''
        const childPath = join(path, keyName)
        if (!allowed.includes(keyName)) {
          const guess = closest(keyName, allowed)
          w.report(
            childPath,
            `unknown key; expected one of ${allowed.join(', ')}${guess === undefined ? '' : ` (did you mean ${guess}?)`}`,
            { offset: offsetOfNode(key) },
          )
          continue
        }
        entries.set(keyName, pair)
        const value = w.deref(pair.value)
        w.mark(childPath, isScalar(value) && !isNull(value) ? offsetOfNode(value) : offsetOfNode(key))
      }
      return build(entries, path, w, true)
    },
    absent(path, w, report) {
      if (o.required === true) {
        if (report) w.report(path, `missing; ${o.hint ?? `add ${lastKey(path)}:`}`, { soft: true })
        return undefined
      }
      return build(new Map(), path, w, report)
    },
  }
  return spec as Spec<O extends { required: true } ? ObjOut<F> | undefined : ObjOut<F>>
}

/** A mapping of user-chosen names (matching `key.pattern`) to values of one spec. */
export function mapOf<T>(key: { pattern: RegExp; hint: string }, value: Spec<T>): Spec<Record<string, T>> {
  return {
    check(node, path, w) {
      const map = w.deref(node)
      if (!isMap(map)) {
        w.report(path, `expected a mapping of names, got ${describeNode(map)}`, { offset: offsetOfNode(map) })
        return INVALID
      }
      const out: Record<string, T> = {}
      for (const pair of map.items) {
        const keyNode = w.deref(pair.key)
        const name = isScalar(keyNode) ? String(keyNode.value) : ''
        const childPath = join(path, name)
        if (!key.pattern.test(name)) {
          w.report(childPath, `${JSON.stringify(name)} is not a valid name; ${key.hint}`, { offset: offsetOfNode(keyNode) })
          continue
        }
        w.mark(childPath, offsetOfNode(keyNode))
        const target = w.deref(pair.value)
        const v = isNull(target) ? value.absent(childPath, w, true) : value.check(target, childPath, w)
        out[name] = v === INVALID ? value.absent(childPath, w, false) : v
      }
      return out
    },
    absent: () => ({}),
  }
}

function readSecretFile<T>(pair: Pair, path: string, fromFile: (text: string) => T, w: Walk): T | Invalid {
  const filePath = `${path}_file`
  const name = str().check(pair.value, filePath, w)
  if (name === INVALID || name === undefined) return INVALID
  const offset = offsetOfNode(w.deref(pair.value))
  w.mark(path, offset)
  if (w.relaxed) return INVALID // a block not in force never reads its files
  const file = resolvePath(w.cwd, name)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    w.report(filePath, `cannot read ${file} (${fileErrorReason(err)}); create it or set ${lastKey(path)} instead`, {
      offset,
    })
    return INVALID
  }
  return fromFile(text)
}

/** Why a config-named file could not be read, in words for a config error. */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied for this user'
  if (code === 'EISDIR') return 'it is a directory'
  return code ?? (err as Error).message
}

function rangeText(min: number | undefined, max: number | undefined, format: (n: number) => string): string {
  if (min !== undefined && max !== undefined) return ` from ${format(min)} to ${format(max)}`
  if (min !== undefined) return ` of at least ${format(min)}`
  if (max !== undefined) return ` of at most ${format(max)}`
  return ''
}

/**
 * Parses an http(s) URL for a string check; throws "what is wrong; what to do"
 * with `example` as the way to write it.
 */
export function httpUrlOf(s: string, example: string): URL {
  let url: URL | undefined
  try {
    url = new URL(s)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new Error(`"${s}" is not an http(s) URL; write it like ${example}`)
  }
  return url
}
