import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect as netConnect, Socket, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { RelayError } from '../src/errors.js'
import { downloadToFile, type ConnectTarget, type Connector } from '../src/mirror/fetch.js'
import { OriginPool, poolKey } from '../src/mirror/origin-pool.js'
import { forbiddenAddress, HostGuard, type Resolver } from '../src/mirror/ssrf.js'
import { startOrigin } from './mirror-harness.js'

// A hang fails in bounded time instead of waiting for tap's global timeout.
t.setTimeout(45_000)

const timeouts = { connect_ms: 2000, headers_ms: 2000, total_ms: 10_000 }

/** A connector that never connects anywhere: it counts, then fails the socket. */
function refusingConnector(): Connector & { attempts: ConnectTarget[] } {
  const attempts: ConnectTarget[] = []
  const c = ((target: ConnectTarget) => {
    attempts.push(target)
    const s = new Socket()
    process.nextTick(() => s.destroy(new Error('test connector: no connection allowed')))
    return s
  }) as Connector & { attempts: ConnectTarget[] }
  c.attempts = attempts
  return c
}

/** A connector that sends every connection to the local origin, whatever address was checked. */
function toOrigin(port: number): Connector & { attempts: ConnectTarget[] } {
  const attempts: ConnectTarget[] = []
  const c = ((target: ConnectTarget) => {
    attempts.push(target)
    return netConnect({ host: '127.0.0.1', port })
  }) as Connector & { attempts: ConnectTarget[] }
  c.attempts = attempts
  return c
}

/** Host names for tests: a fixed table, and names whose answer changes per lookup. */
function resolver(table: Record<string, string[] | string[][]>): Resolver & { calls: string[] } {
  const calls: string[] = []
  const seen = new Map<string, number>()
  const r = (async (host: string) => {
    calls.push(host)
    const entry = table[host]
    if (entry === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
    let answer: string[]
    if (Array.isArray(entry[0])) {
      const n = seen.get(host) ?? 0
      seen.set(host, n + 1)
      answer = (entry as string[][])[Math.min(n, entry.length - 1)]!
    } else {
      answer = entry as string[]
    }
    return answer.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }))
  }) as Resolver & { calls: string[] }
  r.calls = calls
  return r
}

async function refusedCode(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (e) {
    return e instanceof RelayError ? e.code : `not a RelayError: ${String(e)}`
  }
}

t.test('forbiddenAddress: every non-public range', async (t) => {
  const matrix: Array<[string, string | undefined]> = [
    ['0.0.0.0', 'this-network'],
    ['0.1.2.3', 'this-network'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'CGNAT'],
    ['100.127.255.254', 'CGNAT'],
    ['100.128.0.1', undefined],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', undefined],
    ['192.168.1.1', 'private'],
    ['192.0.0.8', 'IETF protocol assignments'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved/broadcast'],
    ['8.8.8.8', undefined],
    ['93.184.216.34', undefined],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'IPv4-mapped'],
    ['::ffff:10.0.0.1', 'IPv4-mapped'],
    ['::ffff:8.8.8.8', 'IPv4-mapped'],
    // Every spelling of ::ffff:0:0/96, both ends of it, and the translated range next to it.
    ['::ffff:7f00:1', 'IPv4-mapped'],
    ['::FFFF:7F00:1', 'IPv4-mapped'],
    ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped'],
    ['0000:0000:0000:0000:0000:ffff:127.0.0.1', 'IPv4-mapped'],
    ['::ffff:0:0', 'IPv4-mapped'],
    ['::ffff:ffff:ffff', 'IPv4-mapped'],
    ['::ffff:169.254.169.254', 'IPv4-mapped'],
    ['::ffff:0:7f00:1', 'IPv4-translated'],
    ['::ffff:0:a9fe:a9fe', 'IPv4-translated'],
    ['::fffe:7f00:1', 'reserved'],
    ['::1:ffff:7f00:1', 'reserved'],
    ['::127.0.0.1', 'IPv4-compatible'],
    ['64:ff9b::a00:1', 'NAT64'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2002:a00:1::1', '6to4'],
    ['2001:db8::1', 'documentation'],
    ['2606:4700:4700::1111', undefined],
    ['2a00:1450:4001:81b::200e', undefined],
    ['not-an-ip', 'not an IP address'],
  ]
  for (const [ip, why] of matrix) t.equal(forbiddenAddress(ip), why, ip)
})

t.test('the SSRF matrix is refused before any connection is made', async (t) => {
  const dir = t.testdir()
  const connect = refusingConnector()
  const dns = resolver({
    'private.example': ['10.0.0.1'],
    'mixed.example': ['93.184.216.34', '10.0.0.1'],
    'v6local.example': ['fd00::5'],
    'metadata.example': ['169.254.169.254'],
    'mapped.example': ['::ffff:192.168.0.1'],
    'mapped-hex.example': ['0:0:0:0:0:ffff:a9fe:a9fe'],
    'translated.example': ['::ffff:0:7f00:1'],
  })
  const guard = new HostGuard([], dns)
  const refused = [
    'http://10.0.0.1/x',
    'http://10.0.0.1:8080/x',
    'http://127.0.0.1/x',
    'http://127.1/x',
    'http://0x7f.1/x',
    'http://2130706433/x',
    'http://017700000001/x',
    'http://0.0.0.0/x',
    'http://[::]/x',
    'http://[::1]/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://[::ffff:a00:1]/x',
    'http://[fd00::1]/x',
    'http://[fe80::1%25eth0]/x',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.0.1/x',
    'http://172.16.5.4/x',
    'http://192.168.1.1/x',
    'http://224.0.0.1/x',
    'https://10.0.0.1/x',
    'http://private.example/x',
    'http://mixed.example/x',
    'http://v6local.example/x',
    'http://metadata.example/x',
    'http://mapped.example/x',
    'http://mapped-hex.example/x',
    'http://translated.example/x',
    'http://[0:0:0:0:0:ffff:7f00:1]/x',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://[::ffff:0:7f00:1]/x',
    'ftp://93.184.216.34/x',
    'file:///etc/passwd',
    'gopher://93.184.216.34/x',
    'http://user:pass@93.184.216.34/x',
  ]
  for (const url of refused) {
    const code = await refusedCode(downloadToFile(url, join(dir, 'f'), { guard, connect, maxBytes: 1000, timeouts }))
    t.ok(code === 'HOOKRELAY_MIRROR_URL_REFUSED', `${url} refused (${code})`)
  }
  t.equal(connect.attempts.length, 0, 'no connection was attempted')
  t.equal(
    await refusedCode(downloadToFile('http://nowhere.example/x', join(dir, 'f'), { guard, connect, maxBytes: 1000, timeouts })),
    'HOOKRELAY_MIRROR_DNS',
  )
  t.equal(connect.attempts.length, 0)
})

t.test('allow_hosts: only the listed hosts, literal or named', async (t) => {
  const dir = t.testdir()
  const connect = refusingConnector()
  const guard = new HostGuard(['127.0.0.1', 'files.example'], resolver({ localhost: ['127.0.0.1'], 'files.example': ['10.1.1.1'] }))
  for (const url of ['http://localhost/x', 'http://127.0.0.2/x', 'http://[::1]/x', 'http://8.8.8.8/x']) {
    t.equal(await refusedCode(downloadToFile(url, join(dir, 'f'), { guard, connect, maxBytes: 10, timeouts })), 'HOOKRELAY_MIRROR_URL_REFUSED', url)
  }
  t.equal(connect.attempts.length, 0)
  // An allowlisted name is fetched at whatever it resolves to: the operator chose it.
  await refusedCode(downloadToFile('http://files.example/x', join(dir, 'f'), { guard, connect, maxBytes: 10, timeouts }))
  t.match(connect.attempts, [{ address: '10.1.1.1', port: 80, tls: false, servername: 'files.example' }])
})

t.test('connects to the checked address with the name as Host; every redirect hop is checked', async (t) => {
  const dir = t.testdir()
  const origin = await startOrigin(t)
  const hosts: string[] = []
  origin.route('/ok', (req, res) => {
    hosts.push(req.headers.host ?? '')
    res.writeHead(200, { 'content-length': 2, 'content-type': 'text/plain' }).end('ok')
  })
  origin.route('/to-private', (_req, res) => res.writeHead(302, { location: 'http://10.0.0.1/secret' }).end())
  origin.route('/to-loopback-name', (_req, res) => res.writeHead(301, { location: 'http://evil.example/' }).end())
  origin.route('/to-rebind', (_req, res) => res.writeHead(307, { location: 'http://rebind.example/ok' }).end())
  origin.route('/relative', (_req, res) => res.writeHead(308, { location: '/ok' }).end())
  origin.route('/loop', (_req, res) => res.writeHead(302, { location: '/loop' }).end())
  origin.route('/downgrade', (_req, res) => res.writeHead(302, { location: 'http://files.example/ok' }).end())
  origin.route('/to-ftp', (_req, res) => res.writeHead(302, { location: 'ftp://files.example/ok' }).end())
  const dns = resolver({
    'files.example': ['93.184.216.34'],
    'evil.example': ['127.0.0.1'],
    // Public for the first lookup, loopback afterwards: a rebinding name.
    'rebind.example': [['93.184.216.35'], ['127.0.0.1']],
  })
  const guard = new HostGuard([], dns)
  const opts = (connect: Connector) => ({ guard, connect, maxBytes: 1000, timeouts })

  let connect = toOrigin(origin.port)
  const got = await downloadToFile('http://files.example/ok', join(dir, 'ok'), opts(connect))
  t.match(got, { size: 2, contentType: 'text/plain', finalUrl: 'http://files.example/ok' })
  t.same(connect.attempts, [{ address: '93.184.216.34', family: 4, port: 80, tls: false, servername: 'files.example' }])
  t.same(hosts, ['files.example'], 'Host header carries the name, not the address')

  connect = toOrigin(origin.port)
  t.equal(await refusedCode(downloadToFile('http://files.example/to-private', join(dir, 'f'), opts(connect))), 'HOOKRELAY_MIRROR_URL_REFUSED')
  t.equal(connect.attempts.length, 1, 'the private hop was never connected to')

  connect = toOrigin(origin.port)
  t.equal(await refusedCode(downloadToFile('http://files.example/to-loopback-name', join(dir, 'f'), opts(connect))), 'HOOKRELAY_MIRROR_URL_REFUSED')
  t.equal(connect.attempts.length, 1)

  connect = toOrigin(origin.port)
  t.equal(await refusedCode(downloadToFile('http://rebind.example/to-rebind', join(dir, 'f'), opts(connect))), 'HOOKRELAY_MIRROR_URL_REFUSED')
  t.same(connect.attempts.map((a) => a.address), ['93.184.216.35'], 'the rebound answer was refused before connecting')

  connect = toOrigin(origin.port)
  t.match(await downloadToFile('http://files.example/relative', join(dir, 'r'), opts(connect)), { finalUrl: 'http://files.example/ok' })
  t.equal(connect.attempts.length, 2)

  connect = toOrigin(origin.port)
  t.equal(await refusedCode(downloadToFile('http://files.example/loop', join(dir, 'f'), opts(connect))), 'HOOKRELAY_MIRROR_REDIRECTS')
  t.equal(connect.attempts.length, 6, 'the first request and 5 redirects, no more')

  connect = toOrigin(origin.port)
  t.equal(await refusedCode(downloadToFile('http://files.example/to-ftp', join(dir, 'f'), opts(connect))), 'HOOKRELAY_MIRROR_URL_REFUSED')
  t.equal(connect.attempts.length, 1)

  // https → http: the test connector hands the "TLS" connection a plain socket to the origin.
  connect = toOrigin(origin.port)
  t.equal(await refusedCode(downloadToFile('https://files.example/downgrade', join(dir, 'f'), opts(connect))), 'HOOKRELAY_MIRROR_DOWNGRADE')
  t.match(connect.attempts, [{ tls: true, port: 443, servername: 'files.example' }])
  t.equal(connect.attempts.length, 1, 'the http hop was never connected to')
})

t.test('a literal IP gets no SNI', async (t) => {
  const connect = refusingConnector()
  const guard = new HostGuard(['93.184.216.34'])
  await refusedCode(downloadToFile('https://93.184.216.34/x', join(t.testdir(), 'f'), { guard, connect, maxBytes: 1, timeouts }))
  t.match(connect.attempts, [{ address: '93.184.216.34', tls: true, servername: undefined }])
})

/**
 * Two loopback servers on one port (127.0.0.1 and ::1) that note, per
 * request, the socket it came on, the address it reached and its Host.
 * `/stale` destroys its socket, unanswered, when it is not the socket's first
 * request: a server that closed an idle keep-alive connection just as it was
 * reused.
 */
async function keepAliveOrigin(t: Test) {
  const seen: Array<{ socket: number; local: string; host: string; path: string }> = []
  const ids = new WeakMap<Socket, number>()
  const perSocket = new Map<number, number>()
  const open = new Set<Socket>()
  let next = 0
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket
    let id = ids.get(socket)
    if (id === undefined) ids.set(socket, (id = ++next))
    const nth = (perSocket.get(id) ?? 0) + 1
    perSocket.set(id, nth)
    seen.push({ socket: id, local: socket.localAddress ?? '', host: req.headers.host ?? '', path: req.url ?? '' })
    if (req.url === '/stale' && nth > 1) return void socket.destroy()
    if (req.url === '/missing') return void res.writeHead(404, { 'content-length': 0 }).end()
    res.writeHead(200, { 'content-length': 5, 'content-type': 'text/plain' }).end('hello')
  }
  const servers = [createServer(handler), createServer(handler)]
  for (const s of servers) s.on('connection', (c: Socket) => (open.add(c), c.on('close', () => open.delete(c))))
  await new Promise<void>((resolve) => servers[0]!.listen(0, '127.0.0.1', resolve))
  const port = (servers[0]!.address() as AddressInfo).port
  await new Promise<void>((resolve) => servers[1]!.listen(port, '::1', resolve))
  t.teardown(async () => {
    for (const c of open) c.destroy()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  })
  return { port, seen }
}

t.test('pooled sockets: reused for the same checked address, port and Host only, never for another host or a rebound address', async (t) => {
  const dir = t.testdir()
  const { port, seen } = await keepAliveOrigin(t)
  const attempts: ConnectTarget[] = []
  // The real thing: a TCP connection to exactly the address the guard checked.
  const connect: Connector = (target) => {
    attempts.push(target)
    return netConnect({ host: target.address, port: target.port })
  }
  const dns = resolver({
    'a.example': ['127.0.0.1'],
    'b.example': ['127.0.0.1'],
    'stale.example': ['127.0.0.1'],
    // Loopback v4 first, then v6: the name now reaches another address.
    'rebind.example': [['127.0.0.1'], ['::1']],
  })
  const guard = new HostGuard(['a.example', 'b.example', 'stale.example', 'rebind.example', '127.0.0.1'], dns)
  const pool = new OriginPool()
  t.teardown(() => pool.destroy())
  const opts = { guard, connect, pool, maxBytes: 100, timeouts, hold: () => true }
  const get = async (url: string): Promise<string> => {
    const got = await downloadToFile(url, join(dir, 'f'), opts)
    return got.body?.toString() ?? 'not held'
  }

  t.equal(await get(`http://a.example:${port}/f`), 'hello')
  t.equal(await get(`http://a.example:${port}/f`), 'hello')
  t.equal(attempts.length, 1, 'the second GET to the same host and address reused the socket')
  t.equal(await get(`http://b.example:${port}/f`), 'hello')
  t.equal(await get(`http://127.0.0.1:${port}/f`), 'hello')
  t.equal(attempts.length, 3, 'another Host on the same address and port got a connection of its own, each time')
  t.equal(await get(`http://rebind.example:${port}/f`), 'hello')
  t.equal(await get(`http://rebind.example:${port}/f`), 'hello')
  t.same(
    attempts.slice(3).map((a) => a.address),
    ['127.0.0.1', '::1'],
    'the name that now resolves elsewhere got a new connection to the new checked address',
  )
  t.equal(await get(`http://rebind.example:${port}/f`), 'hello')
  t.equal(attempts.length, 5, 'and its socket to ::1 is reused for ::1')

  // A response not read to its end (an error status) leaves no socket behind to reuse.
  t.equal(await refusedCode(downloadToFile(`http://a.example:${port}/missing`, join(dir, 'f'), opts)), 'HOOKRELAY_MIRROR_ORIGIN_STATUS')
  const before = attempts.length
  t.equal(await get(`http://a.example:${port}/f`), 'hello')
  t.equal(attempts.length, before + 1, 'the socket the 404 came on was not pooled again')

  // A reused socket the server dropped: the GET goes out once more on a fresh connection.
  t.equal(await get(`http://stale.example:${port}/stale`), 'hello')
  t.equal(await get(`http://stale.example:${port}/stale`), 'hello')
  t.equal(attempts.filter((a) => a.servername === 'stale.example').length, 2, 'one connection, then one fresh after the dropped reuse')

  // The invariant, from the servers' side: every socket carried one Host to one address.
  const bySocket = new Map<number, Set<string>>()
  for (const s of seen) bySocket.set(s.socket, (bySocket.get(s.socket) ?? new Set()).add(`${s.local} ${s.host}`))
  for (const [id, combos] of bySocket) t.equal(combos.size, 1, `socket ${id}: ${[...combos].join(', ')}`)
  t.ok(seen.some((s) => s.local === '::1' && s.host === `rebind.example:${port}`), 'the rebound requests reached ::1')
  t.equal(pool.opened, attempts.length, 'every socket the pool opened came from the connector')
})

t.test('poolKey: address, port, TLS, server name and Host all separate pools', async (t) => {
  const base = { target: { address: '93.184.216.34', family: 4 as const, port: 443, tls: true, servername: 'a.example' }, hostHeader: 'a.example' }
  const key = poolKey(base)
  t.equal(poolKey({ ...base, hostHeader: 'A.EXAMPLE' }), key, 'Host compares without case, as DNS names do')
  for (const other of [
    { ...base, target: { ...base.target, address: '93.184.216.35' } },
    { ...base, target: { ...base.target, port: 8443 } },
    { ...base, target: { ...base.target, tls: false } },
    { ...base, target: { ...base.target, servername: 'b.example' } },
    { ...base, target: { ...base.target, servername: undefined } },
    { ...base, hostHeader: 'b.example' },
  ]) {
    t.not(poolKey(other), key, JSON.stringify(other))
  }
})
