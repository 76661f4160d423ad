/**
 * How the JetStream journal names what it stores: the subject of each entry
 * (one subject per run, so the stream itself can order a run's revisions),
 * the message id JetStream deduplicates on, and the KV keys of run rows,
 * cursors and jobs (KV keys allow only `[-/_=.a-zA-Z0-9]`, so free text is
 * hashed or hex-encoded).
 */
import { hash } from 'node:crypto'
import type { JobKey } from '../types.js'
import { entrySubject } from './names.js'

function hex(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex')
}

/** A run's token in subjects and KV keys: 128 bits of sha256 over the idempotency key. */
export function runToken(key: string): string {
  return hash('sha256', key, 'hex').slice(0, 32)
}

/** The subject every callback entry of one run is published on: `<stream>.entry.<source>.<token>`. */
export function runSubject(stream: string, source: string, key: string): string {
  return `${entrySubject(stream, source)}.${runToken(key)}`
}

/** The subject of the relay's own entries about a run (`mirror.completed`, …): outside the run's revision chain. */
export function internalSubject(stream: string, source: string, key: string): string {
  return `${stream}.internal.${source}.${runToken(key)}`
}

/** Whether a stream subject carries a callback entry (as opposed to one of the relay's own). */
export function isCallbackSubject(stream: string, subject: string): boolean {
  return subject.startsWith(`${stream}.entry.`)
}

/** `Nats-Msg-Id` of revision `revision` of a run with body `sha256`: equal exactly for the same body as the same revision. */
export function entryMsgId(source: string, key: string, revision: number, sha256: string): string {
  return hash('sha256', `${source}\0${key}\0${revision}\0${sha256}`, 'hex').slice(0, 40)
}

/** The run row's key in `<stream>_runs`. */
export function rowKey(source: string, key: string): string {
  return `${source}.${runToken(key)}`
}

export function cursorKey(name: string): string {
  return `c.${hex(name)}`
}

export function cursorName(kvKey: string): string {
  return Buffer.from(kvKey.slice(2), 'hex').toString('utf8')
}

/** A job's key in `<stream>_jobs`: `<queue hex>.<JSON of the key, hex>`. */
export function jobKvKey(queue: string, key: JobKey): string {
  return `${hex(queue)}.${hex(JSON.stringify(key))}`
}

export function parseJobKvKey(kvKey: string): { queue: string; key: JobKey } {
  const dot = kvKey.indexOf('.')
  return {
    queue: Buffer.from(kvKey.slice(0, dot), 'hex').toString('utf8'),
    key: JSON.parse(Buffer.from(kvKey.slice(dot + 1), 'hex').toString('utf8')) as JobKey,
  }
}

/** Key order of job queues (LMDB's for arrays of strings and numbers: element by element, numbers before strings). */
export function compareJobKeys(a: JobKey, b: JobKey): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x === y) continue
    if (typeof x === 'number' && typeof y === 'number') return x - y
    if (typeof x === 'number') return -1
    if (typeof y === 'number') return 1
    return x < y ? -1 : 1
  }
  return a.length - b.length
}
