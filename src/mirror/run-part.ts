import type { RunRow } from '../journal/port.js'

/** The mirror's part of a run row: `row.parts[MIRROR_PART]`. */
export const MIRROR_PART = 'mirror'

/** Why an object was given up: a stable `HOOKRELAY_MIRROR_*` code, and a message for people. */
export interface MirrorFailure {
  code: string
  message: string
}

/** One mirrored (or to-be-mirrored) output object of a run. */
export interface MirrorObject {
  /** Position of the URL among the http(s) strings under `output`. */
  index: number
  url: string
  state: 'pending' | 'completed' | 'failed'
  bucket?: string
  key?: string
  size?: number
  sha256?: string
  content_type?: string
  reason?: MirrorFailure
  /** Epoch ms after which the URL is expected to have expired. */
  deadline?: number
}

export interface MirrorState {
  state: 'none' | 'pending' | 'completed' | 'failed'
  objects: MirrorObject[]
}

/** The run's mirror state (none when the mirror never saw it). */
export function mirrorOf(row: RunRow): MirrorState {
  return (row.parts[MIRROR_PART] as MirrorState | undefined) ?? { state: 'none', objects: [] }
}

/** Replaces the run's mirror state (inside the journal transaction that stores the row). */
export function setMirror(row: RunRow, state: MirrorState): void {
  row.parts[MIRROR_PART] = state
}

/** The `mirror` member of the read API's run JSON. */
export function mirrorJson(row: RunRow): string {
  const m = mirrorOf(row)
  return JSON.stringify({
    state: m.state,
    objects: m.objects.map((o) => ({
      index: o.index,
      url: o.url,
      state: o.state,
      ...(o.bucket !== undefined ? { bucket: o.bucket, key: o.key, size: o.size, sha256: o.sha256, content_type: o.content_type } : {}),
      ...(o.reason !== undefined ? { reason: o.reason } : {}),
    })),
  })
}
