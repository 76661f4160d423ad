/** At most this many globs in one `subscribe.events` (4400 past it). */
export const MAX_EVENT_GLOBS = 32
/** At most this many characters in one glob (4400 past it). */
export const MAX_GLOB_LENGTH = 128
/** Distinct event names whose answer a matcher remembers (a relay sees few). */
const MATCH_CACHE = 256

/**
 * Compiles event-name globs (`run.*`, `batch.?ailed`, `*`) into one test.
 * `*` matches any run of characters, `?` exactly one; everything else is
 * literal. Returns null for "every event".
 *
 * No regex: a glob like `*?*?*?…#` made a backtracking regex take seconds per
 * event name. Each glob is matched by `globMatch` (at most |glob|·|name|
 * steps), and each matcher remembers its answer for the last few hundred
 * distinct event names, so the cost is paid once per name per subscriber.
 *
 * @example
 *   eventMatcher(['run.*'])!('run.completed') // true
 */
export function eventMatcher(globs: readonly string[] | undefined): ((event: string) => boolean) | null {
  if (!globs || globs.length === 0 || globs.includes('*')) return null
  const exact = new Set<string>()
  const wild = new Set<string>()
  for (const g of globs) {
    if (g.includes('*') || g.includes('?')) wild.add(g.replace(/\*+/g, '*'))
    else exact.add(g)
  }
  const patterns = [...wild]
  const cache = new Map<string, boolean>()
  return (event) => {
    if (exact.has(event)) return true
    if (patterns.length === 0) return false
    let hit = cache.get(event)
    if (hit === undefined) {
      hit = patterns.some((p) => globMatch(p, event))
      if (cache.size >= MATCH_CACHE) cache.clear()
      cache.set(event, hit)
    }
    return hit
  }
}

/**
 * Whether `name` matches `glob` (`*` any run, `?` one UTF-16 unit, the rest
 * literal). Greedy with a single backtrack point, the last `*` seen: a later
 * `*` can absorb whatever an earlier one would have, so retrying earlier
 * stars is never needed and the work is at most |glob|·|name|.
 */
export function globMatch(glob: string, name: string): boolean {
  let g = 0
  let n = 0
  let star = -1
  let resume = 0
  while (n < name.length) {
    const c = glob.charCodeAt(g)
    if (c === 42 /* * */) {
      star = g++
      resume = n
    } else if (g < glob.length && (c === 63 /* ? */ || c === name.charCodeAt(n))) {
      g++
      n++
    } else if (star >= 0) {
      g = star + 1
      n = ++resume
    } else {
      return false
    }
  }
  while (glob.charCodeAt(g) === 42) g++
  return g === glob.length
}
