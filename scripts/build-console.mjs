#!/usr/bin/env node
// Builds the console (web/) into dist/console: one script and one style
// sheet named by their content hash (served immutable), index.html pointing
// at them, and console-manifest.json, written last, that the relay reads.
import { build } from 'esbuild'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'

const root = join(import.meta.dirname, '..')
const out = join(root, 'dist', 'console')
mkdirSync(out, { recursive: true })
// Only the bundle's own files: tsc writes the console's server side here too.
for (const f of readdirSync(out)) if (/^console-[A-Z0-9]+\.(js|css)$/.test(f) || f === 'index.html' || f === 'console-manifest.json') rmSync(join(out, f))

const result = await build({
  entryPoints: [join(root, 'web', 'src', 'app.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outdir: out,
  entryNames: 'console-[hash]',
  assetNames: 'console-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
})

const files = Object.keys(result.metafile.outputs).map((p) => basename(p))
const js = files.find((f) => f.endsWith('.js'))
const css = files.find((f) => f.endsWith('.css'))
if (!js || !css) throw new Error(`the console build made ${files.join(', ')}; expected one .js and one .css`)
const html = readFileSync(join(root, 'web', 'index.html'), 'utf8').replace('%JS%', js).replace('%CSS%', css)
writeFileSync(join(out, 'index.html'), html)
const manifest = {
  index: 'index.html',
  assets: [
    { file: js, type: 'text/javascript; charset=utf-8' },
    { file: css, type: 'text/css; charset=utf-8' },
  ],
}
writeFileSync(join(out, 'console-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
console.log(`console: ${files.join(', ')}`)
