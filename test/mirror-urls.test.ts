import t from 'tap'
import { extractOutputUrls, objectFileName, objectKey, parseSelector, urlDeadline, urlPath } from '../src/mirror/urls.js'

// A hang fails in bounded time instead of waiting for tap's global timeout.
t.setTimeout(45_000)

const batch = {
  event: 'batch.succeeded',
  batch_id: 'b1',
  output: {
    items: [
      { run_id: 'r1', output: { image_urls: ['https://s/1.png', 'https://s/2.png'] } },
      { run_id: 'r2', output: null, error: { message: 'failed' } },
      { run_id: 'r3', output: { video: { url: 'http://s/3.mp4', poster: 'https://s/3.jpg' }, note: 'text', n: 3 } },
    ],
    total: 3,
  },
  metadata: { callback: 'https://elsewhere/ignored' },
}

t.test('extractOutputUrls: every http(s) string under output, depth-first, in document order', async (t) => {
  t.same(extractOutputUrls(batch), [
    { index: 0, url: 'https://s/1.png' },
    { index: 1, url: 'https://s/2.png' },
    { index: 2, url: 'http://s/3.mp4' },
    { index: 3, url: 'https://s/3.jpg' },
  ])
  t.same(extractOutputUrls({ output: 'https://s/only.png' }), [{ index: 0, url: 'https://s/only.png' }])
  t.same(extractOutputUrls({ output: ['ftp://s/x', 'HTTPS://S/UP.PNG', 'https//not', 'http://'] }), [{ index: 0, url: 'HTTPS://S/UP.PNG' }])
  t.same(extractOutputUrls({ output: null }), [])
  t.same(extractOutputUrls({ status: 'failed' }), [])
  t.same(extractOutputUrls(null), [])
  t.same(extractOutputUrls([{ output: 'https://s/x' }]), [])
  t.same(extractOutputUrls('https://s/x'), [])
  // Duplicates keep their positions: the index is the position under output.
  t.same(extractOutputUrls({ output: ['https://s/a', 'https://s/a'] }).map((u) => u.index), [0, 1])
})

t.test('extractOutputUrls: a hostile depth is bounded', async (t) => {
  let deep: unknown = 'https://s/deep'
  for (let i = 0; i < 10_000; i++) deep = [deep]
  t.same(extractOutputUrls({ output: deep }), [])
})

t.test('selectors', async (t) => {
  t.same(parseSelector('output.image_urls[*]'), [{ key: 'image_urls' }, { each: true }])
  t.same(parseSelector('output.items[*].output["video"].url'), [
    { key: 'items' },
    { each: true },
    { key: 'output' },
    { key: 'video' },
    { key: 'url' },
  ])
  t.same(parseSelector('output[0]'), [{ at: 0 }])
  t.equal(parseSelector('input.x'), undefined)
  t.equal(parseSelector('output..x'), undefined)
  t.equal(parseSelector('output.x[?]'), undefined)

  t.same(
    extractOutputUrls(batch, ['output.items[*].output.video.url']).map((u) => u.url),
    ['http://s/3.mp4'],
  )
  t.same(
    extractOutputUrls(batch, ['output.items[*].output.video.poster', 'output.items[0].output.image_urls[1]']),
    [
      { index: 0, url: 'https://s/3.jpg' },
      { index: 1, url: 'https://s/2.png' },
    ],
  )
  // A selector reaching a container takes every URL under it; a URL reached twice counts once.
  t.same(
    extractOutputUrls(batch, ['output.items[0]', 'output.items[*].output.image_urls[*]']).map((u) => u.url),
    ['https://s/1.png', 'https://s/2.png'],
  )
  t.same(extractOutputUrls(batch, ['output.nothing[*]', 'bogus']), [])
})

t.test('urlDeadline: SigV4, Expires, default', async (t) => {
  const now = Date.UTC(2026, 4, 6, 10, 30)
  t.equal(
    urlDeadline('https://s/a?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260506T100000Z&X-Amz-Expires=3600&X-Amz-Signature=ab', now, 1000),
    Date.UTC(2026, 4, 6, 11),
  )
  t.equal(urlDeadline('https://s/a?x-amz-date=20260506T100000Z&x-amz-expires=60', now, 1000), Date.UTC(2026, 4, 6, 10, 1))
  t.equal(urlDeadline('https://s/a?AWSAccessKeyId=A&Expires=1778065200&Signature=x', now, 1000), 1778065200_000)
  t.equal(urlDeadline('https://s/a?X-Amz-Date=garbage&X-Amz-Expires=60', now, 1000), now + 1000)
  t.equal(urlDeadline('https://s/a?X-Amz-Date=20260506T100000Z&X-Amz-Expires=-5', now, 1000), now + 1000)
  t.equal(urlDeadline('https://s/a', now, 1000), now + 1000)
  t.equal(urlDeadline('not a url', now, 1000), now + 1000)
})

t.test('object keys and paths', async (t) => {
  t.equal(urlPath('https://s:9000/a/b.png?X-Amz-Signature=1#f'), 'https://s:9000/a/b.png')
  t.equal(urlPath('https://s/a/b.png?sig=1'), urlPath('https://s/a/b.png?sig=2'))
  t.equal(objectFileName('https://s/outputs/run/image%200.png?X-Amz-Signature=1'), 'image_0.png')
  t.equal(objectFileName('https://s/outputs/'), 'file')
  t.equal(objectFileName('https://s/..%2F..%2Fetc%2Fpasswd'), 'etc_passwd')
  t.equal(objectFileName('https://s/%E0%A4%A'), 'E0_A4_A')
  t.equal(objectFileName(`https://s/${'a'.repeat(300)}.png`).length, 100)
  t.equal(objectKey('runflow', '0190f5c2-8d4e-7a31', 3, 'https://s/x/out.webp?sig'), 'runflow/0190f5c2-8d4e-7a31/3-out.webp')
  t.equal(objectKey('runflow', '../weird id', 0, 'https://s/x'), 'runflow/.._weird_id/0-x')
  t.equal(objectKey('runflow', '..', 0, 'https://s/x'), 'runflow/_.._/0-x')
  t.equal(objectKey('runflow', '', 0, 'https://s/x'), 'runflow/__/0-x')
})
