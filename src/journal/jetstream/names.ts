/**
 * Names the JetStream backend derives from `journal.jetstream.stream`: the
 * stream's subjects and the KV buckets beside it, so that two relays on the
 * same config agree on every name and two journals on one cluster never share
 * one.
 */

/** What a KV bucket of a journal holds. */
export type BucketKind = 'runs' | 'cursors' | 'jobs' | 'meta'

/** The subjects the journal's stream captures: everything under `<stream>.`. */
export function streamSubjects(stream: string): string[] {
  return [`${stream}.>`]
}

/** The subject an entry of `source` is published on. */
export function entrySubject(stream: string, source: string): string {
  return `${stream}.entry.${source}`
}

/** The KV bucket of `kind` for the journal on `stream` (`<stream>_<kind>`). */
export function bucketName(stream: string, kind: BucketKind): string {
  return `${stream}_${kind}`
}
