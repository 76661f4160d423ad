// A fixed listen port still held by someone else (a previous instance that is
// draining) is retried, so `systemctl restart` does not fail on a busy port;
// a port that stays served makes start fail: the port is bound exclusively,
// so two relays never split callbacks between two journals.
import { createServer } from 'node:net'
import t from 'tap'
import { Relay } from '../src/relay.js'
import { loadConfigText } from '../src/config/load.js'
import { pino } from 'pino'
import { testConfigYaml } from './helpers/relay.js'

t.test('a held fixed port is retried until it frees', async (t) => {
  const holder = createServer()
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
  const port = (holder.address() as { port: number }).port
  const dir = t.testdir()
  const yamlConfig = loadConfigText(testConfigYaml(dir).replace('port: 0', `port: ${port}`), '<test>', { env: {} })
  const lines: string[] = []
  // The port frees once the relay has said it is waiting for it.
  const logger = pino({ level: 'warn' }, { write: (l: string) => void (lines.push(l), /cannot listen yet/.test(l) && holder.close()) })
  const started = Relay.start(yamlConfig, { logger, processMetrics: false })
  const relay = await started
  t.teardown(() => relay.close())
  t.equal(relay.port, port)
  t.equal((await fetch(`http://127.0.0.1:${port}/livez`)).status, 200)
  t.match(lines.join(''), /cannot listen yet \(port in use\); retrying/, 'the first attempt failed and was retried')
})

t.test('a second relay on a port another relay serves refuses to start; every callback reaches the first', async (t) => {
  const { startTestRelay, postRunflow } = await import('./helpers/relay.js')
  const { sampleRunflowCallback } = await import('../src/sample.js')
  const { relay: first, base } = await startTestRelay(t)
  const dir = t.testdir()
  const config = loadConfigText(testConfigYaml(dir).replace('port: 0', `port: ${first.port}`), '<test>', { env: {} })
  const logger = pino({ level: 'silent' })
  await t.rejects(Relay.start(config, { logger, processMetrics: false, listenRetryMs: 300 }), {
    code: 'HOOKRELAY_HTTP_LISTEN',
    message: /already served by another process/,
  })
  const answers = await Promise.all(Array.from({ length: 40 }, () => postRunflow(base, sampleRunflowCallback())))
  t.ok(answers.every((a) => a.status === 200))
  t.equal(first.journal.head, 40, 'all 40 in the one journal')
})

t.test('a min_free larger than the disk: the relay starts, and says why it will refuse every callback', async (t) => {
  const dir = t.testdir()
  const config = loadConfigText(testConfigYaml(dir, 'journal: { min_free: 100000gb }'), '<test>', { env: {} })
  const lines: string[] = []
  const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) })
  const relay = await Relay.start(config, { logger, processMetrics: false })
  t.teardown(() => relay.close())
  t.match(lines.join(''), /journal\.min_free .* is not below the size of the disk/)
  t.equal((await fetch(`http://127.0.0.1:${relay.port}/readyz`)).status, 503)
})
