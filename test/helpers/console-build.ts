// The console tests serve the page from dist/console. `npm test` builds it
// first; a test file run on its own rebuilds it only when web/ is newer, so
// two test files running at once never rebuild (and delete) what the other serves.
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = join(import.meta.dirname, '..', '..')

function newest(dir: string): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

export function ensureConsoleBuilt(): void {
  let built = 0
  try {
    built = statSync(join(ROOT, 'dist', 'console', 'console-manifest.json')).mtimeMs
  } catch {
    // not built yet
  }
  if (built >= newest(join(ROOT, 'web'))) return
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-console.mjs')], { stdio: 'ignore' })
}
