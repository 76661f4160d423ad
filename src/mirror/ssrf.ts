import { lookup as dnsLookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { RelayError } from '../errors.js'

/**
 * Address ranges an output URL may never reach unless its host is on
 * `allow_hosts`: everything that is not a public unicast address.
 */
const FORBIDDEN: ReadonlyArray<[string, number, 'ipv4' | 'ipv6', string]> = [
  ['0.0.0.0', 8, 'ipv4', 'this-network'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'CGNAT'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'ipv4', 'documentation'],
  ['192.88.99.0', 24, 'ipv4', '6to4 relay'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['198.51.100.0', 24, 'ipv4', 'documentation'],
  ['203.0.113.0', 24, 'ipv4', 'documentation'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved/broadcast'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  // IPv4-compatible (deprecated) and IPv4-mapped addresses would reach IPv4 ranges through IPv6.
  ['::', 96, 'ipv6', 'IPv4-compatible'],
  ['::ffff:0:0', 96, 'ipv6', 'IPv4-mapped'],
  // IPv4-translated (SIIT, RFC 2765): a translator in the path turns these into IPv4 too.
  ['::ffff:0:0:0', 96, 'ipv6', 'IPv4-translated'],
  ['64:ff9b::', 96, 'ipv6', 'NAT64'],
  ['64:ff9b:1::', 48, 'ipv6', 'NAT64 local'],
  ['100::', 64, 'ipv6', 'discard'],
  ['2001::', 32, 'ipv6', 'Teredo'],
  ['2001:db8::', 32, 'ipv6', 'documentation'],
  ['2002::', 16, 'ipv6', '6to4'],
  ['fc00::', 7, 'ipv6', 'unique-local'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
  // Last, so that the ranges above inside it (NAT64, mapped) keep their names. The rest of ::/8 is
  // reserved, never a public address: spellings next to the mapped range must not slip through.
  ['::', 8, 'ipv6', 'reserved'],
]

const lists = FORBIDDEN.map(([net, prefix, family, why]) => {
  const b = new BlockList()
  b.addSubnet(net, prefix, family)
  return { b, family, why }
})

/**
 * Why an IP address must not be fetched from, or undefined when it is a
 * public unicast address.
 *
 * @example
 *   forbiddenAddress('10.0.0.1')        // 'private'
 *   forbiddenAddress('::ffff:127.0.0.1') // 'IPv4-mapped'
 *   forbiddenAddress('93.184.216.34')   // undefined
 */
export function forbiddenAddress(ip: string): string | undefined {
  const fam = isIP(ip)
  if (fam === 0) return 'not an IP address'
  const family = fam === 4 ? 'ipv4' : 'ipv6'
  for (const { b, family: f, why } of lists) {
    if (f === family && b.check(ip, family)) return why
  }
  return undefined
}

/** A resolved address the guard let through. */
export interface CheckedAddress {
  address: string
  family: 4 | 6
}

export type Resolver = (hostname: string) => Promise<CheckedAddress[]>

const systemResolver: Resolver = async (hostname) => {
  const all = await dnsLookup(hostname, { all: true, verbatim: true })
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
}

/**
 * The SSRF guard: decides whether a URL may be fetched and which address to
 * connect to. The fetcher connects to exactly the address returned here (with
 * the URL's host name as Host and TLS SNI), so a DNS answer that changes
 * between check and connect (rebinding) cannot move the connection.
 */
export class HostGuard {
  #allow: Set<string>
  #resolve: Resolver

  /**
   * @param allowHosts when non-empty, only these hosts (names or literal IPs,
   *   as written in URLs) are fetched, at whatever address they resolve to.
   */
  constructor(allowHosts: readonly string[], resolve: Resolver = systemResolver) {
    this.#allow = new Set(allowHosts.map((h) => bareHost(h).toLowerCase()))
    this.#resolve = resolve
  }

  /**
   * Checks the URL and resolves its host. Every address of the answer is
   * checked (a mixed answer is refused whole); the first is returned.
   *
   * @throws RelayError HOOKRELAY_MIRROR_URL_REFUSED (scheme, host, address), HOOKRELAY_MIRROR_DNS
   */
  async admit(url: URL): Promise<CheckedAddress> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw refused(`scheme ${url.protocol} is not fetched; only http and https`)
    }
    if (url.username !== '' || url.password !== '') throw refused('URLs with credentials are not fetched')
    const host = bareHost(url.hostname).toLowerCase()
    const allowlisted = this.#allow.size > 0
    if (allowlisted && !this.#allow.has(host)) throw refused(`host ${host} is not in mirror.allow_hosts`)
    const literal = isIP(host)
    let addresses: CheckedAddress[]
    if (literal !== 0) {
      addresses = [{ address: host, family: literal === 6 ? 6 : 4 }]
    } else {
      try {
        addresses = await this.#resolve(host)
      } catch (cause) {
        throw new RelayError('HOOKRELAY_MIRROR_DNS', `cannot resolve ${host}: ${(cause as Error).message}`, { cause })
      }
      if (addresses.length === 0) throw new RelayError('HOOKRELAY_MIRROR_DNS', `${host} has no address`)
    }
    if (!allowlisted) {
      for (const a of addresses) {
        const why = forbiddenAddress(a.address)
        if (why !== undefined) throw refused(`${host} resolves to ${a.address} (${why})`)
      }
    }
    return addresses[0]!
  }
}

function refused(message: string): RelayError {
  return new RelayError('HOOKRELAY_MIRROR_URL_REFUSED', message)
}

/** `[::1]` → `::1` (URL hostnames keep IPv6 brackets). */
function bareHost(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h
}
