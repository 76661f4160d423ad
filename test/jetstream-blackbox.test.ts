// The black-box ingest and read-API suite (test/ingest.test.ts), run again
// with every relay on the JetStream backend: a real 3-node nats-server
// cluster on loopback, one R3 stream per relay's data dir. The tests that
// exercise LMDB itself (map size, group commit) skip themselves there.
import t from 'tap'
import { startNatsCluster } from './helpers/nats.js'

const cluster = await startNatsCluster(t, { dir: t.testdir() })
process.env.HOOKRELAY_TEST_BACKEND = 'jetstream'
process.env.HOOKRELAY_TEST_NATS = cluster.urls.join(',')
await import('./ingest.test.js')
