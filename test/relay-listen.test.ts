// A fixed listen port still held by someone else (a previous instance that is
// draining) is retried, so `systemctl restart` does not fail on a busy port.
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
  const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) })
  const started = Relay.start(yamlConfig, { logger, processMetrics: false })
  setTimeout(() => holder.close(), 400)
  const relay = await started
  t.teardown(() => relay.close())
  t.equal(relay.port, port)
  t.equal((await fetch(`http://127.0.0.1:${port}/livez`)).status, 200)
  t.match(lines.join(''), /cannot listen yet; retrying/, 'the first attempt failed and was retried')
})
