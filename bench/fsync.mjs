#!/usr/bin/env node
// fdatasync latency of the disk holding the repo (or a given directory):
// 4 KiB written then fdatasync'd, N times, overwriting in place and appending (the file grows).
// An LMDB commit does two syncs (data pages, then the meta page).
// Usage: node bench/fsync.mjs [dir] [n=1000]
import { openSync, writeSync, fdatasyncSync, closeSync, rmSync, mkdtempSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = mkdtempSync(join(process.argv[2] ?? join(dirname(dirname(fileURLToPath(import.meta.url))), '..'), '.fsync-'))
const n = Number(process.argv[3] ?? 1000)
const buf = Buffer.alloc(4096, 7)
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]
function run(append) {
  const f = join(dir, append ? 'append' : 'overwrite')
  const fd = openSync(f, 'w')
  if (!append) {
    for (let i = 0; i < 16; i++) writeSync(fd, buf, 0, buf.length, i * 4096)
    fdatasyncSync(fd)
  }
  const t = []
  for (let i = 0; i < n; i++) {
    const pos = append ? i * 4096 : (i % 16) * 4096
    const t0 = process.hrtime.bigint()
    writeSync(fd, buf, 0, buf.length, pos)
    fdatasyncSync(fd)
    t.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  closeSync(fd)
  t.sort((a, b) => a - b)
  return { p50_ms: pct(t, 50), p99_ms: pct(t, 99), max_ms: t.at(-1), per_s: 1000 / (t.reduce((a, b) => a + b, 0) / n) }
}
try {
  const out = { dir, n, overwrite: run(false), append: run(true) }
  console.log(JSON.stringify(out))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
