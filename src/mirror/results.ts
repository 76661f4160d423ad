import type { Journal } from '../journal/journal.js'
import type { MirrorFailure, MirrorObject, RunRow } from '../journal/types.js'
import { jobKey, summarize, type JobsDb, type MirrorJob, type SpooledFile } from './outbox.js'
import { urlPath } from './urls.js'

/**
 * Appends `mirror.completed` and, in the same transaction, marks the run
 * row's object completed and deletes the job (and a refreshed job for the
 * same object: its bytes are the ones just stored).
 */
export async function appendCompleted(
  journal: Journal,
  jobs: JobsDb,
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
  await journal.appendInternal({
    source: job.source,
    event: 'mirror.completed',
    key: job.id,
    body: Buffer.from(JSON.stringify(body)),
    receivedAt: Date.now(),
    json: body,
    updateRow: (row) => {
      jobs.removeSync(jobKey(job))
      const o = objectOf(row, job)
      if (o === undefined) return
      // A newer revision's fresh URL for the same object is done too: drop its job.
      if (o.state === 'pending' && o.deadline !== undefined) jobs.removeSync(jobKey({ ...job, deadline: o.deadline }))
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
      row.mirror.state = summarize(row.mirror.objects)
    },
  })
}

/**
 * Appends `mirror.failed` and marks the object failed, deleting the job, in
 * one transaction. Returns false, appending nothing, when a newer revision
 * gave the object a fresh URL meanwhile (its own job carries on).
 */
export async function appendFailed(journal: Journal, jobs: JobsDb, job: MirrorJob, reason: MirrorFailure): Promise<boolean> {
  const o = journal.getRun(job.source, job.id)?.mirror.objects.find((x) => x.index === job.index)
  if (o !== undefined && o.url !== job.url) {
    await jobs.transaction(() => removeJob(jobs, job))
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
    updateRow: (row) => {
      removeJob(jobs, job)
      const cur = objectOf(row, job)
      // Refreshed between the check above and this commit: the fresh URL stays pending.
      if (cur === undefined || cur.url !== job.url) return
      cur.state = 'failed'
      cur.reason = { code: reason.code, message: reason.message }
      delete cur.deadline
      row.mirror.state = summarize(row.mirror.objects)
    },
  })
  return true
}

/** Removes this job, unless a refresh put another URL under the same key (same deadline). */
function removeJob(jobs: JobsDb, job: MirrorJob): void {
  const key = jobKey(job)
  if (jobs.get(key)?.url === job.url) jobs.removeSync(key)
}

/** The row's object for this job, when it is still the same object (same path). */
function objectOf(row: RunRow, job: MirrorJob): MirrorObject | undefined {
  const o = row.mirror.objects.find((x) => x.index === job.index)
  return o !== undefined && urlPath(o.url) === urlPath(job.url) ? o : undefined
}
