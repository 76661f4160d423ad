// `hookrelay forward` through a real relay's /v1/stream to a real handler, with the relay restarted under it.
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createInterface } from 'node:readline'
import t from 'tap'
import { fanoutExtension } from '../src/fanout/hub.js'
import { postRunflow, SECRET } from './helpers/relay.js'
import { CLI } from './helpers/spawn.js'
import { READER_TOKEN, startDestinationRelay, startHandler } from './destinations-harness.js'

function startForward(t: { teardown(fn: () => unknown): void }, args: string[]) {
  const child = spawn(process.execPath, [CLI, 'forward', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const lines: string[] = []
  const stderr: string[] = []
  const events = new EventEmitter<{ line: [string]; err: [string] }>()
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l)
    events.emit('line', l)
  })
  createInterface({ input: child.stderr }).on('line', (l) => {
    stderr.push(l)
    events.emit('err', l)
  })
  /** Resolves once stderr has a line holding `text`. */
  const said = (text: string): Promise<void> =>
    new Promise((resolve) => {
      if (stderr.some((l) => l.includes(text))) return resolve()
      const on = (l: string): void => {
        if (!l.includes(text)) return
        events.off('err', on)
        resolve()
      }
      events.on('err', on)
    })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  /** Resolves once `n` delivery lines were printed in all. */
  const printed = (n: number): Promise<void> =>
    new Promise((resolve) => {
      if (lines.length >= n) return resolve()
      const on = (): void => {
        if (lines.length < n) return
        events.off('line', on)
        resolve()
      }
      events.on('line', on)
    })
  return { child, lines, stderr, printed, said, exited }
}

const callback = (i: number): string => `{"event":"run.completed",  "run_id":"fw-${i}","status":"succeeded"}`

t.test('forward delivers every event in order through a relay restart, re-signed so the handler verifies', async (t) => {
  const got: string[] = []
  const signatures: boolean[] = []
  const h = await startHandler(t, (r) => {
    got.push((JSON.parse(r.body.toString()) as { run_id: string }).run_id)
    signatures.push(r.headers['runflow-signature'] === createHmac('sha256', SECRET).update(r.body).digest('hex'))
    return { status: 200 }
  })
  const dir = t.testdir()
  const first = await startDestinationRelay(t, '', { dir, extensions: [fanoutExtension()] })
  const port = first.relay.port
  const fw = startForward(t, [
    '--url', `ws://127.0.0.1:${port}`,
    '--token', READER_TOKEN,
    '--to', h.url,
    '--consumer', 'laptop',
    '--sign', 'runflow',
    '--secret', SECRET,
  ])
  // The first event goes in only once forward is subscribed: a new consumer starts at the head.
  await fw.said('forwarding')
  for (let i = 1; i <= 3; i++) t.equal((await postRunflow(first.base, callback(i))).status, 200)
  await fw.printed(3)
  t.match(fw.lines[0], /^1 runflow run\.completed fw-1 -> 200 \(\d+(\.\d+)? ms\)$/)

  await first.relay.close()
  const second = await startDestinationRelay(t, '', { dir, port, extensions: [fanoutExtension()] })
  for (let i = 4; i <= 6; i++) t.equal((await postRunflow(second.base, callback(i))).status, 200)
  await fw.printed(6)
  t.same(got, ['fw-1', 'fw-2', 'fw-3', 'fw-4', 'fw-5', 'fw-6'], 'every event once, in order, across the restart')
  t.ok(signatures.every(Boolean), 'Runflow-Signature of the bytes sent verifies')
  t.ok(fw.stderr.some((l) => l.includes('disconnected')), 'it saw the relay go')
  fw.child.kill('SIGTERM')
  t.equal(await fw.exited, 0, 'SIGTERM stops it cleanly')
})

t.test('forward retries a failing handler until 2xx before it acks, and stops on 410', async (t) => {
  const h = await startHandler(t, (r) => (r.n <= 2 ? { status: 500 } : r.n === 3 ? { status: 200 } : { status: 410 }))
  const { relay, base } = await startDestinationRelay(t, '', { extensions: [fanoutExtension()] })
  const fw = startForward(t, ['--url', `ws://127.0.0.1:${relay.port}`, '--token', READER_TOKEN, '--to', h.url])
  await fw.said('forwarding')
  await postRunflow(base, callback(1))
  await fw.printed(1)
  t.equal(h.received.length, 3, 'two failures, then the delivery')
  t.equal(fw.stderr.filter((l) => l.includes('-> status 500; retrying')).length, 2)
  await postRunflow(base, callback(2))
  t.equal(await fw.exited, 1, '410 stops it')
  t.ok(fw.stderr.some((l) => l.includes('410 Gone for seq 2')))
})

t.test('forward: usage errors exit 64', async (t) => {
  const fw = startForward(t, ['--url', 'ws://127.0.0.1:1', '--token', 'x'])
  t.equal(await fw.exited, 64)
  const bad = startForward(t, ['--url', 'ws://127.0.0.1:1', '--token', 'x', '--to', 'http://127.0.0.1:1/', '--sign', 'runflow'])
  t.equal(await bad.exited, 64)
})
