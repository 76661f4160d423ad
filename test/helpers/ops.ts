import type { ChildProcess } from 'node:child_process'
import { uuidv7 } from '../../src/sample.js'
import { postRunflow, type Answer } from './relay.js'

/** A Runflow run.completed callback of about `bytes` bytes (padding in an extra field). */
export function callbackOfSize(bytes: number, runId = uuidv7()): string {
  const base = {
    event: 'run.completed',
    run_id: runId,
    status: 'succeeded',
    output: { image_urls: [`https://storage.example/outputs/${runId}/image-0.png`] },
    padding: '',
  }
  const pad = Math.max(0, bytes - JSON.stringify(base).length)
  return JSON.stringify({ ...base, padding: 'x'.repeat(pad) })
}

/** Posts `n` distinct callbacks of `bytes` each, `concurrency` at a time; returns the answers in order. */
export async function postMany(base: string, n: number, bytes = 512, concurrency = 8): Promise<Answer[]> {
  const out: Answer[] = new Array(n)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++
        out[i] = await postRunflow(base, callbackOfSize(bytes))
      }
    }),
  )
  return out
}

/** The value of one sample in Prometheus text (`name` or `name{labels}` exactly as printed). */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1))
  }
  return undefined
}

export async function scrape(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text()
}

/**
 * Resolves with the first stdout line of `child` (from now on) that matches,
 * or rejects after `timeoutMs`. Listens without pausing the stream (spawnRelay
 * reads it too).
 */
export function waitForLine(child: ChildProcess, match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const stdout = child.stdout!
  return new Promise((resolve, reject) => {
    let rest = ''
    const done = (): void => {
      clearTimeout(timer)
      stdout.off('data', onData)
    }
    const onData = (d: Buffer): void => {
      const lines = (rest + d.toString()).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        if (match(line)) {
          done()
          resolve(line)
          return
        }
      }
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`no matching log line within ${timeoutMs} ms`))
    }, timeoutMs)
    stdout.on('data', onData)
  })
}

/** Resolves when a log line has this `msg`. */
export function waitForMsg(child: ChildProcess, msg: string, timeoutMs?: number): Promise<Record<string, unknown>> {
  return waitForLine(child, (l) => l.includes(`"msg":${JSON.stringify(msg)}`), timeoutMs).then((l) => JSON.parse(l) as Record<string, unknown>)
}
