/**
 * Human units in the config file: sizes (`5mb`, `4gb`) and durations
 * (`300s`, `7d`). Both throw an `Error` whose message says what is wrong and
 * how to write it instead; the loader positions it in the file.
 */

const KiB = 1024

const SIZE_MULTIPLIERS: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>([['', 1], ['b', 1]])
  const prefixes = ['k', 'm', 'g', 't']
  prefixes.forEach((p, i) => {
    const mult = KiB ** (i + 1)
    // Every spelling means the binary multiple: 5mb = 5mib = 5m = 5 * 1024 * 1024.
    for (const suffix of ['', 'b', 'i', 'ib']) m.set(p + suffix, mult)
  })
  return m
})()

const SIZE_RE = /^(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)$/i

/**
 * Parses a size into bytes. Units k, m, g, t (with or without `b`, `ib`
 * variants accepted, case-insensitive) are binary multiples of 1024; a bare
 * number (or numeric string) is bytes.
 *
 * @example
 *   parseSize('5mb')   // 5242880
 *   parseSize('1.5k')  // 1536
 *   parseSize(1024)    // 1024
 */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new Error(`${input} is not a size; use a whole number of bytes or a unit, e.g. 512kb, 5mb, 4gb`)
    }
    return input
  }
  const m = SIZE_RE.exec(input.trim())
  const mult = m === null ? undefined : SIZE_MULTIPLIERS.get((m[2] ?? '').toLowerCase())
  if (m === null || mult === undefined) {
    throw new Error(`"${input}" is not a size; write a number with a unit, e.g. 512kb, 5mb, 4gb`)
  }
  const bytes = Math.round(Number(m[1]) * mult)
  if (!Number.isSafeInteger(bytes)) throw new Error(`"${input}" is too large a size`)
  return bytes
}

const DURATION_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

const PLAIN_NUMBER_RE = /^(\d+(?:\.\d*)?|\.\d+)$/
/** One `<number><unit>` part; a duration may chain several (`1h30m`). */
const DURATION_PART_RE = /(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)\s*/iy

/**
 * Parses a duration into milliseconds. Units ms, s, m, h, d, w; parts may be
 * chained (`1h30m`). A bare number (or numeric string) is milliseconds.
 *
 * @example
 *   parseDuration('300s')  // 300000
 *   parseDuration('1h30m') // 5400000
 *   parseDuration(500)     // 500
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      throw new Error(`${input} is not a duration; use milliseconds or a unit, e.g. 500ms, 300s, 1h, 7d`)
    }
    return Math.round(input)
  }
  const text = input.trim()
  if (PLAIN_NUMBER_RE.test(text)) return Math.round(Number(text))
  let ms = 0
  let at = 0
  DURATION_PART_RE.lastIndex = 0
  while (at < text.length) {
    DURATION_PART_RE.lastIndex = at
    const m = DURATION_PART_RE.exec(text)
    if (m === null) break
    ms += Number(m[1]) * (DURATION_MS[(m[2] ?? '').toLowerCase()] ?? Number.NaN)
    at = DURATION_PART_RE.lastIndex
  }
  if (text === '' || at !== text.length || !Number.isFinite(ms)) {
    throw new Error(`"${input}" is not a duration; write a number with a unit, e.g. 500ms, 300s, 2m, 1h, 7d`)
  }
  const rounded = Math.round(ms)
  if (!Number.isSafeInteger(rounded)) throw new Error(`"${input}" is too long a duration`)
  return rounded
}

/** Formats bytes back into the largest exact unit, for messages (`5mb`). */
export function formatSize(bytes: number): string {
  for (const [unit, mult] of [['tb', KiB ** 4], ['gb', KiB ** 3], ['mb', KiB ** 2], ['kb', KiB]] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`
  }
  return `${bytes}b`
}

/** Formats milliseconds back into the largest exact unit, for messages (`300s`). */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const mult = DURATION_MS[unit] as number
    if (ms >= mult && ms % mult === 0) return `${ms / mult}${unit}`
  }
  return `${ms}ms`
}
