// The README is the contract users read: every error code the source can
// produce, every CLI command and every metric must be documented there.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}
const code = sources(join(root, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n')

t.test('the README error table is the error registry, row for row; src/ uses no code outside it', async (t) => {
  const { ERRORS } = await import('../src/errors.js')
  const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Dependencies'))
  const rows = new Map([...section.matchAll(/^\| `(HOOKRELAY_[A-Z0-9_]+)` \| ([^|]+) \| (.+) \|$/gm)].map((m) => [m[1]!, { where: m[2]!.trim(), meaning: m[3]!.trim() }]))
  t.ok(rows.size > 40, `${rows.size} rows in the table`)
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.same(rows.get(code), { where: spec.where, meaning: spec.meaning }, `${code}: README row matches the registry`)
  }
  for (const code of rows.keys()) t.ok(code in ERRORS, `${code}: in the README, so in the registry`)
  const used = new Set(code.match(/HOOKRELAY_[A-Z0-9]+_[A-Z0-9_]*[A-Z0-9]/g))
  for (const c of used) t.ok(c in ERRORS, `${c}: used in src/, so in the registry`)
})

t.test('every CLI command is in the README command table', async (t) => {
  const cli = readFileSync(join(root, 'src', 'cli.ts'), 'utf8')
  const main = cli.slice(cli.indexOf('async function main('))
  const cmds = [...main.matchAll(/^\s+case '([a-z][a-z-]+)':\s*$/gm)].map((m) => m[1]!).filter((c) => c !== 'help')
  t.ok(cmds.includes('serve') && cmds.includes('backup'))
  for (const c of new Set(cmds)) t.ok(readme.includes(`\`hookrelay ${c}`), c)
})

t.test('every metric is documented', async (t) => {
  const names = new Set([...code.matchAll(/name: '(hookrelay_[a-z_]+)'/g)].map((m) => m[1]!))
  t.ok(names.size > 15, `${names.size} metrics found`)
  for (const n of names) t.ok(readme.includes(n), n)
})
