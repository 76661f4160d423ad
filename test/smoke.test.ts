import t from 'tap'
import { RelayError } from '../src/errors.js'
t.test('RelayError carries code and status', async t => {
  const e = new RelayError('HOOKRELAY_X_Y', 'msg', { status: 400 })
  t.equal(e.code, 'HOOKRELAY_X_Y')
  t.equal(e.status, 400)
})
