import type { JobChanges, JobView, JournalPort, RunRow } from '../journal/port.js'
import { jobKey, MIRROR_QUEUE, summarize, type MirrorJob, type SpooledFile } from './outbox.js'
import { mirrorOf, setMirror, type MirrorFailure, type MirrorObject } from './run-part.js'
import { urlPath } from './urls.js'

/**
 * Appends `mirror.completed` and, in the same transaction, marks the run
 * row's object completed and deletes the job (and a refreshed job for the
 * same object: its bytes are the ones just stored).
 */
export async function appendCompleted(
  journal: JournalPort,
  bucket: string,
  job: MirrorJob,
  s: SpooledFile,
): Promise<void> {
  const body = {
    event: 'mirror.completed',
    source: job.source,
    run_id: job.id,
    index: job.index,
    url: job.url,
    bucket,
    key: job.key,
    size: s.size,
    sha256: s.sha256,
    content_type: s.content_type,
    completed_at: new Date().toISOString(),
  }
  await journal.complete(MIRROR_QUEUE, jobKey(job), {
    source: job.source,
    event: 'mirror.completed',
    key: job.id,
    body: Buffer.from(JSON.stringify(body)),
    receivedAt: Date.now(),
    json: body,
    updateRow: (row) => {
      const mirror = mirrorOf(row)
      const o = objectOf(row, job)
      if (o === undefined) return
      // A newer revision's fresh URL for the same object is done too: drop its job.
      const refreshed: JobChanges | undefined =
        o.state === 'pending' && o.deadline !== undefined ? { remove: [{ queue: MIRROR_QUEUE, key: jobKey({ ...job, deadline: o.deadline }) }] } : undefined
      Object.assign(o, {
        state: 'completed',
        bucket,
        key: job.key,
        size: s.size,
        sha256: s.sha256,
        content_type: s.content_type,
      } satisfies Partial<MirrorObject>)
      delete o.reason
      delete o.deadline
      setMirror(row, { state: summarize(mirror.objects), objects: mirror.objects })
      return refreshed
    },
  })
}

/**
 * Appends `mirror.failed` and marks the object failed, deleting the job, in
 * one transaction. Returns false, appending nothing, when a newer revision
 * gave the object a fresh URL meanwhile (its own job carries on).
 */
export async function appendFailed(journal: JournalPort, job: MirrorJob, reason: MirrorFailure): Promise<boolean> {
  const row = await journal.getRun(job.source, job.id)
  const o = row && mirrorOf(row).objects.find((x) => x.index === job.index)
  if (o !== undefined && o.url !== job.url) {
    await journal.changeJobs((jobs) => removeJob(jobs, job))
    return false
  }
  const body = {
    event: 'mirror.failed',
    source: job.source,
    run_id: job.id,
    index: job.index,
    url: job.url,
    reason: { code: reason.code, message: reason.message },
    failed_at: new Date().toISOString(),
  }
  await journal.appendInternal({
    source: job.source,
    event: 'mirror.failed',
    key: job.id,
    body: Buffer.from(JSON.stringify(body)),
    receivedAt: Date.now(),
    json: body,
    updateRow: (row, jobs) => {
      const removed = removeJob(jobs, job)
      const mirror = mirrorOf(row)
      const cur = objectOf(row, job)
      // Refreshed between the check above and this commit: the fresh URL stays pending.
      if (cur === undefined || cur.url !== job.url) return removed
      cur.state = 'failed'
      cur.reason = { code: reason.code, message: reason.message }
      delete cur.deadline
      setMirror(row, { state: summarize(mirror.objects), objects: mirror.objects })
      return removed
    },
  })
  return true
}

/** Removes this job, unless a refresh put another URL under the same key (same deadline). */
function removeJob(jobs: JobView, job: MirrorJob): JobChanges | undefined {
  const key = jobKey(job)
  return jobs.getJob<MirrorJob>(MIRROR_QUEUE, key)?.url === job.url ? { remove: [{ queue: MIRROR_QUEUE, key }] } : undefined
}

/** The row's object for this job, when it is still the same object (same path). */
function objectOf(row: RunRow, job: MirrorJob): MirrorObject | undefined {
  const o = mirrorOf(row).objects.find((x) => x.index === job.index)
  return o !== undefined && urlPath(o.url) === urlPath(job.url) ? o : undefined
}
