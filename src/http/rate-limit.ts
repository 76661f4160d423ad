/**
 * Per-address token buckets for ingest (`rate_limit.*`), applied through the
 * ingest route's `admit` hook before any body is read or signature checked, so
 * a flood of bad signatures costs a map lookup per request, not an HMAC (or an
 * ed25519 verification on a Pi).
 *
 * - `ingest_per_second: 0` turns it off.
 * - Loopback senders are exempt unless `limit_loopback: true`.
 * - `X-Forwarded-For` is believed only when the peer is one of
 *   `trusted_proxies`; the client is then the rightmost address in it that is
 *   not itself a trusted proxy (the left part is whatever the client claimed).
 * - Memory is bounded: a bucket idle long enough to be full again is the same
 *   as no bucket and is dropped; past `maxBuckets` the oldest go first.
 */
import { isIP } from 'node:net'
import type { RateLimitConfig } from '../config/types.js'

interface Bucket {
  tokens: number
  /** performance.now() of the last refill. */
  at: number
}

export interface RateLimiterOptions {
  /** Clock in ms (tests). */
  now?: () => number
  /** Most buckets kept at once. Default 100 000 (a few MB). */
  maxBuckets?: number
  /** How often idle buckets are swept. Default 10 s. */
  sweepMs?: number
}

/**
 * @example
 *   const limiter = new IngestRateLimiter(config.rate_limit)
 *   registerSource(app, source, { ...ctx, admit: limiter.admit })
 */
export class IngestRateLimiter {
  #rate = 0
  #burst = 0
  #limitLoopback = false
  #trusted = new Set<string>()
  #buckets = new Map<string, Bucket>()
  #now: () => number
  #maxBuckets: number
  #sweeper: NodeJS.Timeout

  constructor(cfg: RateLimitConfig, opts: RateLimiterOptions = {}) {
    this.#now = opts.now ?? (() => performance.now())
    this.#maxBuckets = opts.maxBuckets ?? 100_000
    this.update(cfg)
    this.#sweeper = setInterval(() => this.sweep(), opts.sweepMs ?? 10_000)
    this.#sweeper.unref()
  }

  /** Applies new settings (config reload); existing buckets keep their tokens, capped at the new burst. */
  update(cfg: RateLimitConfig): void {
    this.#rate = cfg.ingest_per_second
    this.#burst = Math.max(1, cfg.ingest_burst)
    this.#limitLoopback = cfg.limit_loopback
    this.#trusted = new Set(cfg.trusted_proxies.map(canonicalIp))
    if (this.#rate <= 0) this.#buckets.clear()
  }

  get enabled(): boolean {
    return this.#rate > 0
  }

  /** Buckets held (tests check memory stays bounded). */
  get size(): number {
    return this.#buckets.size
  }

  /** The ingest `admit` hook: 0 to go on, else whole seconds to wait (the 429's Retry-After). */
  admit = (address: string): number => (this.#rate <= 0 ? 0 : this.take(address))

  /** The address a request is accounted to: the peer, or the client a trusted proxy names in X-Forwarded-For. */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    peer = canonicalIp(peer)
    if (forwardedFor === undefined || !this.#trusted.has(peer)) return peer
    const hops = forwardedFor.split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = canonicalIp(hops[i]!.trim())
      if (hop === '') continue
      if (!this.#trusted.has(hop)) return hop
    }
    // Every hop is a trusted proxy: the request started at one of them.
    return peer
  }

  /** Takes one token for `address`; returns 0, or whole seconds until one is there. */
  take(address: string): number {
    if (this.#rate <= 0 || (!this.#limitLoopback && isLoopback(address))) return 0
    const now = this.#now()
    let b = this.#buckets.get(address)
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxBuckets) this.#evict()
      b = { tokens: this.#burst, at: now }
      this.#buckets.set(address, b)
    } else {
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate)
      b.at = now
    }
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#rate))
  }

  /** Drops buckets that have refilled completely (they hold no information). */
  sweep(): void {
    const now = this.#now()
    const fullAfterMs = (this.#burst / Math.max(this.#rate, 1e-9)) * 1000
    for (const [address, b] of this.#buckets) {
      if (now - b.at >= fullAfterMs) this.#buckets.delete(address)
    }
  }

  #evict(): void {
    this.sweep()
    // Still full: drop the oldest tenth (Map order is insertion order).
    if (this.#buckets.size < this.#maxBuckets) return
    let drop = Math.max(1, Math.floor(this.#maxBuckets / 10))
    for (const address of this.#buckets.keys()) {
      this.#buckets.delete(address)
      if (--drop === 0) break
    }
  }

  close(): void {
    clearInterval(this.#sweeper)
    this.#buckets.clear()
  }
}

/**
 * One spelling per address: IPv4-mapped IPv6 as plain IPv4, IPv6 in the
 * compressed lowercase form (uWS writes IPv6 peers fully expanded). Anything
 * that is not an IP address comes back trimmed and lowercased; '' stays ''.
 */
export function canonicalIp(text: string): string {
  let s = text.trim().toLowerCase()
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  const kind = isIP(s)
  if (kind === 4 || kind === 0) return s
  const groups = expandIpv6(s)
  if (groups === undefined) return s
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const hi = groups[6]!
    const lo = groups[7]!
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  }
  return compressIpv6(groups)
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1'
}

function expandIpv6(s: string): number[] | undefined {
  let text = s
  // A dotted IPv4 tail (::ffff:1.2.3.4) is two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const p = dotted[2]!.split('.').map(Number)
    text = `${dotted[1]!}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (h: string): number[] => (h === '' ? [] : h.split(':').map((x) => (/^[0-9a-f]{1,4}$/.test(x) ? parseInt(x, 16) : NaN)))
  const left = parse(halves[0]!)
  const right = halves.length === 2 ? parse(halves[1]!) : []
  const fill = 8 - left.length - right.length
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined
  const groups = [...left, ...new Array<number>(fill).fill(0), ...right]
  return groups.every((g) => Number.isInteger(g)) ? groups : undefined
}

function compressIpv6(groups: number[]): string {
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}
