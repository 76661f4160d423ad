/**
 * The run projection of the JetStream journal: one KV entry per run in
 * `<stream>_runs`, `{ row, last, epoch }`, where `last` is the stream seq of
 * the newest callback entry of the run the row includes. The row is a pure
 * function of the run's callback entries (which are on one subject, in
 * order), so whichever relay sees entries the row does not include yet rolls
 * it forward and writes it with compare-and-set on the KV revision.
 */
import type { KV } from '@nats-io/kv'
import type { StoredMsg } from '@nats-io/jetstream'
import type { Logger } from '../../log.js'
import { decodeEvent } from '../record.js'
import { ingestRow } from '../run-row.js'
import type { AppendHook, IngestInput, RunRow } from '../types.js'
import type { JobStore, JobTxn } from './jobs.js'
import { isConflict } from './errors.js'
import { rowKey } from './keys.js'

export interface RowState {
  row: RunRow
  /** Stream seq of the newest callback entry the row includes (0: none). */
  last: number
  /** The journal epoch the row was written in; a row of another epoch is read as absent. */
  epoch: string
}

/** A callback entry as the projection needs it. */
export interface CallbackEntry {
  seq: number
  revision: number
  receivedAt: string
  input: IngestInput
}

export function entryFromMsg(m: StoredMsg): CallbackEntry {
  const ev = decodeEvent(m.seq, Buffer.from(m.data))
  let json: unknown
  try {
    json = JSON.parse(ev.body.toString('utf8'))
  } catch {
    json = undefined
  }
  const status = m.header?.get('Hookrelay-Status') || undefined
  const input: IngestInput = {
    source: ev.source,
    event: ev.event,
    key: ev.key,
    status,
    body: ev.body,
    sha256: ev.private.sha256,
    receivedAt: Date.parse(ev.received_at),
    requestId: ev.private.request_id,
    json,
  }
  if (ev.private.headers) input.headers = ev.private.headers
  return { seq: m.seq, revision: ev.revision, receivedAt: ev.received_at, input }
}

export class Projection {
  readonly kv: KV
  #jobs: JobStore
  #hooks: AppendHook[]
  #log: Logger
  epoch: string

  constructor(kv: KV, jobs: JobStore, hooks: AppendHook[], epoch: string, log: Logger) {
    this.kv = kv
    this.#jobs = jobs
    this.#hooks = hooks
    this.epoch = epoch
    this.#log = log
  }

  /** The run's state and its KV revision (0 when there is no entry). A row of another epoch reads as absent but keeps its revision for the CAS. */
  async read(source: string, key: string): Promise<{ state: RowState | undefined; kvRev: number }> {
    const e = await this.kv.get(rowKey(source, key))
    if (!e || e.operation !== 'PUT') return { state: undefined, kvRev: e?.revision ?? 0 }
    const state = e.json<RowState>()
    if (state.epoch !== this.epoch || state.row.id !== key || state.row.source !== source) return { state: undefined, kvRev: e.revision }
    return { state, kvRev: e.revision }
  }

  /**
   * The state after `entries` (in order, all newer than `state.last`), with
   * the append hooks run for each and their jobs collected in `txn`.
   */
  apply(state: RowState | undefined, entries: CallbackEntry[], txn: JobTxn): RowState {
    let row = state?.row
    let last = state?.last ?? 0
    for (const e of entries) {
      const previous = row
      const next = ingestRow(previous, e.input, e.seq, e.receivedAt).row
      // The stream ordered the run's revisions; the entry says which one it is.
      next.revision = e.revision
      next.revisions[0]!.revision = e.revision
      this.runHooks({ seq: e.seq, source: e.input.source, event: e.input.event, key: e.input.key, revision: e.revision, json: e.input.json, row: next, previous, internal: false }, txn)
      row = next
      last = e.seq
    }
    return { row: row!, last, epoch: this.epoch }
  }

  /**
   * Runs every append hook for one entry. The entry is already in the stream,
   * so a hook that throws cannot roll it back: its changes are left out and
   * the failure logged.
   */
  runHooks(ctx: Omit<Parameters<AppendHook>[0], 'jobs'>, txn: JobTxn): void {
    for (const hook of this.#hooks) {
      try {
        txn.apply(hook({ ...ctx, jobs: txn }))
      } catch (err) {
        this.#log.error({ err, seq: ctx.seq, source: ctx.source, key: ctx.key }, 'an append hook failed for an entry already in the stream; its changes are left out')
      }
    }
  }

  /**
   * Writes the jobs, then the row (compare-and-set on `kvRev`). Returns false
   * when another relay wrote the row first (the caller reads it again).
   */
  async write(source: string, key: string, state: RowState, kvRev: number, txn: JobTxn): Promise<boolean> {
    await this.#jobs.write(txn.changes)
    const k = rowKey(source, key)
    try {
      if (kvRev === 0) await this.kv.create(k, JSON.stringify(state))
      else await this.kv.update(k, JSON.stringify(state), kvRev)
      return true
    } catch (err) {
      if (isConflict(err)) return false
      throw err
    }
  }
}
