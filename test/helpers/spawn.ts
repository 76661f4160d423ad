import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js')

export interface Spawned {
  child: ChildProcess
  port: number
  base: string
  /** Every stdout line so far (pino JSON). */
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Runs `hookrelay serve` from dist/ as a separate process (as an operator
 * would) and resolves once it logs that it listens.
 */
export function spawnRelay(configFile: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000, cwd?: string): Promise<Spawned> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay did not start in ${timeoutMs} ms: ${stderr} ${lines.join('\n')}`))
    }, timeoutMs)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`relay exited (${code ?? signal}) before listening: ${stderr} ${lines.join('\n')}`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line)
      if (line.includes('"hookrelay listening"')) {
        clearTimeout(timer)
        const address = (JSON.parse(line) as { address: string }).address
        const port = Number(address.slice(address.lastIndexOf(':') + 1))
        resolve({ child, port, base: `http://127.0.0.1:${port}`, lines, exited })
      }
    })
  })
}

/** Writes a YAML config into `dir` and returns its path. */
export function writeConfig(dir: string, yaml: string, name = 'hookrelay.yaml'): string {
  const file = join(dir, name)
  writeFileSync(file, yaml)
  return file
}

/** Compiles test/fixtures/slow-sync.c into `dir`; returns the .so path, or undefined without a C compiler. */
export function buildSlowSync(dir: string): string | undefined {
  const out = join(dir, 'slow-sync.so')
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', out, join(import.meta.dirname, '..', 'fixtures', 'slow-sync.c'), '-ldl'], {
      stdio: 'pipe',
    })
    return out
  } catch {
    return undefined
  }
}
