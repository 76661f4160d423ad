import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

/** Where `npm run build` (scripts/build-console.mjs) puts the page, from src/console and dist/console alike. */
export const BUILT_DIR = join(import.meta.dirname, '..', '..', 'dist', 'console')
/** Written by the build last, so its presence means a complete build. */
export const MANIFEST = 'console-manifest.json'
/** The build writes this where the page's own path goes; the relay fills it in (the path is configurable). */
export const BASE_PLACEHOLDER = '%CONSOLE_BASE%'

/**
 * The page may run only its own script and style, talk only to the relay
 * (fetch and the stream's WebSocket: 'self' covers ws/wss on the same host),
 * and may not be framed.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const COMMON_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
}

export interface Manifest {
  index: string
  assets: Array<{ file: string; type: string }>
}

interface Served {
  type: string
  raw: Buffer
  gzip: Buffer
  etag: string
  cache: string
}

/** The built page, read once into memory (it is small) with its gzip form. */
export class StaticFiles {
  readonly index: Served
  /** By file name under `<path>/assets/`. */
  readonly assets = new Map<string, Served>()

  constructor(manifest: Manifest, dir: string, base: string) {
    const html = readFileSync(join(dir, manifest.index), 'utf8').replaceAll(BASE_PLACEHOLDER, base)
    // The page's name stays put, so browsers must revalidate it; the assets' names carry their hash.
    this.index = served('text/html; charset=utf-8', Buffer.from(html), 'no-cache')
    for (const a of manifest.assets) {
      this.assets.set(a.file, served(a.type, readFileSync(join(dir, a.file)), 'public, max-age=31536000, immutable'))
    }
  }

  /** The built files in `dir`, or undefined when the console was not built there. */
  static load(dir: string, base: string): StaticFiles | undefined {
    const file = join(dir, MANIFEST)
    if (!existsSync(file)) return undefined
    return new StaticFiles(JSON.parse(readFileSync(file, 'utf8')) as Manifest, dir, base)
  }
}

function served(type: string, raw: Buffer, cache: string): Served {
  return { type, raw, gzip: gzipSync(raw, { level: 9 }), etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`, cache }
}

/** Answers one built file: gzip when the client takes it, 304 for a matching If-None-Match. */
export function sendStatic(req: IncomingMessage, res: ServerResponse, f: Served): void {
  const headers: Record<string, string | number> = {
    ...COMMON_HEADERS,
    'content-type': f.type,
    'cache-control': f.cache,
    etag: f.etag,
    vary: 'accept-encoding',
  }
  if (req.headers['if-none-match'] === f.etag) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')
  const body = gzip ? f.gzip : f.raw
  if (gzip) headers['content-encoding'] = 'gzip'
  headers['content-length'] = body.length
  res.writeHead(200, headers)
  res.end(req.method === 'HEAD' ? undefined : body)
}
