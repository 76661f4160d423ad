import t from 'tap'
import { interpolate } from '../src/config/interpolate.js'
import { formatDuration, formatSize, parseDuration, parseSize } from '../src/config/units.js'

const KiB = 1024
const MiB = KiB * KiB
const GiB = MiB * KiB

t.test('parseSize: units are binary multiples, any spelling', async (t) => {
  const cases: Array<[string | number, number]> = [
    ['5mb', 5 * MiB],
    ['4gb', 4 * GiB],
    ['512kb', 512 * KiB],
    [1024, 1024],
    ['1024', 1024],
    ['10b', 10],
    ['1.5k', 1536],
    ['.5kb', 512],
    ['2MiB', 2 * MiB],
    ['3GB', 3 * GiB],
    ['1Ki', KiB],
    ['1t', KiB ** 4],
    [' 5 mb ', 5 * MiB],
    [0, 0],
  ]
  for (const [input, bytes] of cases) t.equal(parseSize(input), bytes, String(input))
})

t.test('parseSize: bad input throws a message saying how to write it', async (t) => {
  for (const bad of ['', 'mb', 'abc', '5zb', '5 m b', '-1kb', '1e3', '5bb', '5ibk']) {
    t.throws(() => parseSize(bad), { message: /is not a size; write a number with a unit/ }, JSON.stringify(bad))
  }
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => parseSize(bad), { message: /is not a size/ }, String(bad))
  }
  t.throws(() => parseSize('99999999999tb'), { message: /too large/ })
})

t.test('parseDuration: units and plain milliseconds', async (t) => {
  const cases: Array<[string | number, number]> = [
    ['7d', 7 * 86_400_000],
    ['1h', 3_600_000],
    ['300s', 300_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1w', 604_800_000],
    ['1.5s', 1500],
    ['1h30m', 5_400_000],
    ['2m 5s', 125_000],
    ['10S', 10_000],
    ['250', 250],
    [1500, 1500],
    [0, 0],
  ]
  for (const [input, ms] of cases) t.equal(parseDuration(input), ms, String(input))
})

t.test('parseDuration: bad input throws a message saying how to write it', async (t) => {
  for (const bad of ['', 'abc', '5x', '1h30', 'h', '-1s', '5 parsecs']) {
    t.throws(() => parseDuration(bad), { message: /is not a duration; write a number with a unit/ }, JSON.stringify(bad))
  }
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => parseDuration(bad), { message: /is not a duration/ }, String(bad))
  }
  t.throws(() => parseDuration('9999999999999w'), { message: /too long/ })
})

t.test('formatSize / formatDuration pick the largest exact unit', async (t) => {
  t.equal(formatSize(5 * MiB), '5mb')
  t.equal(formatSize(64 * KiB), '64kb')
  t.equal(formatSize(1536), '1536b')
  t.equal(formatSize(2 * KiB ** 4), '2tb')
  t.equal(formatDuration(300_000), '5m')
  t.equal(formatDuration(1500), '1500ms')
  t.equal(formatDuration(7 * 86_400_000), '1w')
  t.equal(formatDuration(1000), '1s')
})

t.test('interpolate', async (t) => {
  const env = { HOST: 'example.com', PORT: '80', EMPTY: '' }
  t.same(interpolate('plain', env), { value: 'plain', substituted: false, unset: [] })
  t.same(interpolate('${HOST}', env), { value: 'example.com', substituted: true, unset: [] })
  t.equal(interpolate('http://${HOST}:${PORT}/x', env).value, 'http://example.com:80/x', 'inside longer strings')
  t.equal(interpolate('${NOPE:-fallback}', env).value, 'fallback', 'default when unset')
  t.equal(interpolate('${EMPTY:-fallback}', env).value, 'fallback', ':- also applies when empty')
  t.equal(interpolate('${HOST:-fallback}', env).value, 'example.com', 'set value wins')
  t.equal(interpolate('${NOPE:-}', env).value, '', '${VAR:-} is the empty string')
  t.equal(interpolate('${EMPTY}', env).value, '', 'set but empty is not unset')
  t.equal(interpolate('${NOPE:-a:-b}', env).value, 'a:-b', 'default may contain :-')
  t.same(interpolate('a${NOPE}b${ALSO}', env), { value: 'ab', substituted: true, unset: ['NOPE', 'ALSO'] })
  t.same(interpolate('$${HOST}', env), { value: '${HOST}', substituted: false, unset: [] }, '$${ escapes')
  t.equal(interpolate('$$${HOST}', env).value, '$${HOST}', 'only $${ is an escape')
  t.equal(interpolate('cost: $5, $HOST, $', env).value, 'cost: $5, $HOST, $', 'other $ left alone')
  t.throws(() => interpolate('${HOST', env), { message: /unterminated/ })
  t.throws(() => interpolate('${1X}', env), { message: /does not name a variable/ })
  t.throws(() => interpolate('${}', env), { message: /does not name a variable/ })
  t.throws(() => interpolate('${A:-${B}}', env), { message: /nested/ })
})
