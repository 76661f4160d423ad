/**
 * Which URLs of a callback are output files, and until when they can be
 * fetched. Pure functions: the outbox calls them inside the journal's write
 * transaction, so they never throw on odd input and never do I/O.
 */

/** One output URL and its position among the URLs found under `output`. */
export interface OutputUrl {
  index: number
  url: string
}

const HTTP_URL_RE = /^https?:\/\//i

/** One step of a selector: an object key, every element (`[*]`), or one element (`[n]`). */
type Step = { key: string } | { each: true } | { at: number }

/**
 * Finds the output URLs of a callback body.
 *
 * Without selectors: every http(s) string anywhere under `output`, depth-first
 * in document order, so batch callbacks' nested `items[*].output` URLs are
 * found too. (JSON.parse keeps key order except that integer-like keys come
 * first; output keys are names, so this is document order in practice.)
 *
 * With selectors (`output.image_urls[*]`, `output.items[*].output.video`):
 * the http(s) strings each selector reaches, selectors in the order given; a
 * selector reaching an object or array takes every http(s) string under it.
 * A URL reached twice counts once. `index` is the position in the result.
 *
 * @example
 *   extractOutputUrls({ output: { image_urls: ['https://s/a.png', 'https://s/b.png'] } })
 *   // [{ index: 0, url: 'https://s/a.png' }, { index: 1, url: 'https://s/b.png' }]
 */
export function extractOutputUrls(body: unknown, selectors: readonly string[] = []): OutputUrl[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return []
  const output = (body as Record<string, unknown>).output
  if (output === undefined || output === null) return []
  const found: string[] = []
  if (selectors.length === 0) {
    collect(output, found, 0)
  } else {
    const seen = new Set<unknown>()
    for (const sel of selectors) {
      const steps = parseSelector(sel)
      if (steps === undefined) continue
      for (const node of select(output, steps)) {
        if (seen.has(node) && typeof node === 'object') continue
        seen.add(node)
        collect(node, found, 0)
      }
    }
  }
  const out: OutputUrl[] = []
  const unique = new Set<string>()
  for (const url of found) {
    if (selectors.length > 0) {
      if (unique.has(url)) continue
      unique.add(url)
    }
    out.push({ index: out.length, url })
  }
  return out
}

/** Deep enough for any real output; bounds the walk on hostile bodies. */
const MAX_DEPTH = 64

function collect(node: unknown, into: string[], depth: number): void {
  if (typeof node === 'string') {
    if (HTTP_URL_RE.test(node) && isParsableUrl(node)) into.push(node)
    return
  }
  if (node === null || typeof node !== 'object' || depth >= MAX_DEPTH) return
  if (Array.isArray(node)) {
    for (const v of node) collect(v, into, depth + 1)
  } else {
    for (const v of Object.values(node as Record<string, unknown>)) collect(v, into, depth + 1)
  }
}

function isParsableUrl(s: string): boolean {
  try {
    new URL(s)
    return true
  } catch {
    return false
  }
}

/**
 * Parses `output.a.b[*].c[0]` into steps below `output`; undefined when the
 * selector does not start at `output` or is malformed (the config check
 * should have refused it; the outbox must not throw).
 */
export function parseSelector(selector: string): Step[] | undefined {
  const re = /\.?([A-Za-z0-9_$-]+)|\[(\*|\d+)\]|\[["']([^"']+)["']\]/gy
  const steps: Step[] = []
  let m: RegExpExecArray | null
  let pos = 0
  re.lastIndex = 0
  while ((m = re.exec(selector)) !== null) {
    pos = re.lastIndex
    if (m[1] !== undefined) steps.push({ key: m[1] })
    else if (m[2] === '*') steps.push({ each: true })
    else if (m[2] !== undefined) steps.push({ at: Number(m[2]) })
    else if (m[3] !== undefined) steps.push({ key: m[3] })
    if (re.lastIndex >= selector.length) break
  }
  if (pos !== selector.length || steps.length === 0) return undefined
  const first = steps.shift()
  if (!first || !('key' in first) || first.key !== 'output') return undefined
  return steps
}

function* select(node: unknown, steps: readonly Step[], i = 0): Generator<unknown> {
  if (i === steps.length) {
    yield node
    return
  }
  const step = steps[i]!
  if (node === null || typeof node !== 'object') return
  if ('key' in step) {
    if (Array.isArray(node)) return
    const rec = node as Record<string, unknown>
    if (Object.prototype.hasOwnProperty.call(rec, step.key)) yield* select(rec[step.key], steps, i + 1)
  } else if ('each' in step) {
    const values = Array.isArray(node) ? node : Object.values(node as Record<string, unknown>)
    for (const v of values) yield* select(v, steps, i + 1)
  } else if (Array.isArray(node) && step.at < node.length) {
    yield* select(node[step.at], steps, i + 1)
  }
}

/**
 * When a presigned URL stops working, in epoch ms: SigV4 `X-Amz-Date` +
 * `X-Amz-Expires`, or SigV2/CloudFront-style `Expires` (epoch seconds); else
 * `now + defaultMs`. Parameter names are matched case-insensitively.
 *
 * @example
 *   urlDeadline('https://s/a?X-Amz-Date=20260506T100000Z&X-Amz-Expires=3600', 0, 60000)
 *   // Date.UTC(2026, 4, 6, 11) = 1778065200000
 */
export function urlDeadline(url: string, now: number, defaultMs: number): number {
  let params: URLSearchParams
  try {
    params = new URL(url).searchParams
  } catch {
    return now + defaultMs
  }
  const lower = new Map<string, string>()
  for (const [k, v] of params) if (!lower.has(k.toLowerCase())) lower.set(k.toLowerCase(), v)
  const amzDate = lower.get('x-amz-date')
  const amzExpires = lower.get('x-amz-expires')
  if (amzDate !== undefined && amzExpires !== undefined) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
    const secs = /^\d{1,9}$/.test(amzExpires) ? Number(amzExpires) : NaN
    if (m && Number.isFinite(secs)) {
      const signed = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)
      if (Number.isFinite(signed)) return signed + secs * 1000
    }
  }
  const expires = lower.get('expires')
  if (expires !== undefined && /^\d{1,12}$/.test(expires)) return Number(expires) * 1000
  return now + defaultMs
}

/** The URL without query and fragment: two revisions' URLs for the same object share it. */
export function urlPath(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return url.replace(/[?#].*$/s, '')
  }
}

/**
 * A safe object-key file name from the URL's last path segment: decoded,
 * reduced to `[A-Za-z0-9._-]`, at most 100 characters, `file` when empty.
 *
 * @example
 *   objectFileName('https://s/outputs/run/image%200.png?X-Amz-Signature=..') // 'image_0.png'
 */
export function objectFileName(url: string): string {
  let last = ''
  try {
    const segs = new URL(url).pathname.split('/')
    last = segs[segs.length - 1] ?? ''
    try {
      last = decodeURIComponent(last)
    } catch {
      // Keep the raw segment; it is sanitized below.
    }
  } catch {
    last = ''
  }
  const safe = last.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-100)
  return safe === '' ? 'file' : safe
}

/** The object key a URL is mirrored to: `<source>/<id>/<index>-<file name>`. */
export function objectKey(source: string, id: string, index: number, url: string): string {
  // `.` and `..` are not valid object-name segments (MinIO refuses them; a filesystem store would climb).
  const safeId = id.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.*$/, (dots) => `_${dots}_`)
  return `${source}/${safeId}/${index}-${objectFileName(url)}`
}
