import type { AppendHook, JobChanges } from '../journal/port.js'
import { mirrorOf, setMirror, type MirrorObject, type MirrorState } from './run-part.js'
import { extractOutputUrls, objectKey, urlDeadline, urlPath } from './urls.js'

/** A downloaded file waiting for its upload (kept across restarts). */
export interface SpooledFile {
  /** File name inside `<data_dir>/spool/`. */
  file: string
  size: number
  sha256: string
  /** Set for small files (see MD5_MAX_BYTES); absent in records of older versions. */
  md5?: string
  content_type: string
}

/** The journal's job queue the mirror's jobs are kept in. */
export const MIRROR_QUEUE = 'mirror'

/** One output object to copy; a job of the journal's MIRROR_QUEUE. */
export interface MirrorJob {
  source: string
  /** The run (or batch) id: the journal key of the callback. */
  id: string
  index: number
  url: string
  /** Epoch ms after which the URL is expected to have expired. */
  deadline: number
  /** Object key in the bucket. */
  key: string
  /** Seq of the callback revision that brought this URL. */
  seq: number
  spooled?: SpooledFile
}

/**
 * Jobs are keyed `[deadline, source, id, index]`, so a range read in key
 * order is earliest-deadline-first. The run row's object carries the same
 * deadline, which is how a job is found again from the row.
 */
export type JobKey = [number, string, string, number]

export function jobKey(j: { deadline: number; source: string; id: string; index: number }): JobKey {
  return [j.deadline, j.source, j.id, j.index]
}

/** A job's identity across URL refreshes: one output object of one run. */
export function jobId(j: { source: string; id: string; index: number }): string {
  return `${j.source}\u0000${j.id}\u0000${j.index}`
}

/** The run-level state from the objects' states: pending while any is open, completed when all are, failed when none is open and one failed (README "Mirror"). */
export function summarize(objects: readonly MirrorObject[]): MirrorState['state'] {
  if (objects.length === 0) return 'none'
  if (objects.some((o) => o.state === 'pending')) return 'pending'
  if (objects.some((o) => o.state === 'failed')) return 'failed'
  return 'completed'
}

export interface OutboxOptions {
  selectors: readonly string[]
  defaultDeadlineMs: number
  /** Called (inside the transaction) when jobs were written; wake the worker after the commit. */
  onJobs: () => void
  now?: () => number
}

/**
 * The append hook that turns a journaled callback's output URLs into mirror
 * jobs in the same journal transaction as the event (the outbox), and keeps
 * the run row's mirror part in step. The journal's MIRROR_QUEUE must be
 * open (`journal.openQueue`) before the hook is added.
 *
 * A newer revision of a run (Runflow's redelivery brings fresh presigned
 * URLs): an object not yet mirrored at the same index and with the same path
 * takes the new URL and deadline, keeping a file already downloaded; a
 * completed object stays completed; a different path at an index is a new
 * object. Objects the new revision no longer lists are left as they are.
 * Entries the relay writes itself (`internal`) are ignored.
 */
export function createOutbox(opts: OutboxOptions): AppendHook {
  const { selectors, defaultDeadlineMs, onJobs } = opts
  const now = opts.now ?? Date.now
  return (ctx) => {
    if (ctx.internal) return
    const urls = extractOutputUrls(ctx.json, selectors)
    if (urls.length === 0) return
    const t = now()
    const objects = new Map<number, MirrorObject>()
    for (const o of mirrorOf(ctx.row).objects) objects.set(o.index, { ...o })
    const changes: Required<JobChanges> = { enqueue: [], remove: [] }
    for (const { index, url } of urls) {
      const old = objects.get(index)
      const samePath = old !== undefined && urlPath(old.url) === urlPath(url)
      let spooled: SpooledFile | undefined
      if (old !== undefined) {
        if (old.state === 'completed' && samePath) continue
        // An identical URL: its job stands (pending) or would fail again (failed).
        if (old.url === url && old.state !== 'completed') continue
        if (old.state === 'pending' && old.deadline !== undefined) {
          const oldKey = jobKey({ deadline: old.deadline, source: ctx.source, id: ctx.key, index })
          const oldJob = ctx.jobs.getJob<MirrorJob>(MIRROR_QUEUE, oldKey)
          // The bytes of the same object are already here: no need to download again.
          if (samePath && oldJob?.spooled) spooled = oldJob.spooled
          changes.remove.push({ queue: MIRROR_QUEUE, key: oldKey })
        }
      }
      const deadline = urlDeadline(url, t, defaultDeadlineMs)
      const job: MirrorJob = {
        source: ctx.source,
        id: ctx.key,
        index,
        url,
        deadline,
        key: objectKey(ctx.source, ctx.key, index, url),
        seq: ctx.seq,
        ...(spooled ? { spooled } : {}),
      }
      changes.enqueue.push({ queue: MIRROR_QUEUE, key: jobKey(job), job })
      objects.set(index, { index, url, state: 'pending', deadline })
    }
    if (changes.enqueue.length === 0) return
    const list = [...objects.values()].sort((a, b) => a.index - b.index)
    setMirror(ctx.row, { state: summarize(list), objects: list })
    onJobs()
    return changes
  }
}
