// Unit: the client's delivery queue (order, pause at high water, resume below half).
import t from 'tap'
import { DeliveryQueue } from '../src/client/delivery-queue.js'

t.test('DeliveryQueue: in order; pauses the socket at highWater, resumes at half; clear drops all', async (t) => {
  const flow: string[] = []
  const q = new DeliveryQueue<number>(4, { pause: () => flow.push('pause'), resume: () => flow.push('resume') })
  for (let i = 1; i <= 3; i++) q.push(i)
  t.same(flow, [])
  q.push(4)
  t.same(flow, ['pause'], 'at 4 queued')
  q.push(5)
  t.same(flow, ['pause'], 'paused once')
  t.equal(q.shift(), 1)
  t.equal(q.shift(), 2)
  t.same(flow, ['pause'], '3 left: still above half')
  t.equal(q.shift(), 3)
  t.same(flow, ['pause', 'resume'], '2 left: resumed')
  t.equal(q.shift(), 4)
  t.equal(q.shift(), 5)
  t.equal(q.shift(), undefined)
  t.equal(q.length, 0)

  for (let i = 0; i < 3000; i++) q.push(i)
  let next = 0
  for (let e = q.shift(); e !== undefined; e = q.shift()) if (e !== next++) break
  t.equal(next, 3000, 'a long run comes out in order (across compactions)')

  flow.length = 0
  for (let i = 0; i < 5; i++) q.push(i)
  q.clear()
  t.equal(q.length, 0)
  t.equal(q.shift(), undefined)
  q.push(9)
  t.same(flow, ['pause'], 'clear does not resume a socket that is being dropped')
})
