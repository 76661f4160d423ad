import t from 'tap'
import { ERRORS, RelayError, statusOf } from '../src/errors.js'

t.test('RelayError carries its code, and the status the registry gives that code', async (t) => {
  const e = new RelayError('HOOKRELAY_INGEST_BODY_TOO_LARGE', 'msg', { cause: new Error('why') })
  t.equal(e.code, 'HOOKRELAY_INGEST_BODY_TOO_LARGE')
  t.equal(e.status, 413)
  t.equal(statusOf('HOOKRELAY_INGEST_BODY_TOO_LARGE'), 413)
  t.match(e.cause, { message: 'why' })
  t.equal(new RelayError('HOOKRELAY_CONFIG_INVALID', 'x').status, undefined, 'a code with no HTTP answer has no status')
})

t.test('every registry entry with a status says so where it surfaces', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    const status = (spec as { status?: number }).status
    if (status !== undefined) t.match(spec.where, new RegExp(`^${status}\\b`), code)
    else t.notMatch(spec.where, /^\d{3}\b/, `${code}: a status in the table is a status in the registry`)
  }
})
