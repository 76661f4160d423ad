import { randomBytes } from 'node:crypto'

/** A UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, variant 10, random rest. */
export function uuidv7(now = Date.now()): string {
  const b = randomBytes(16)
  b.writeUIntBE(now, 0, 6)
  b[6] = 0x70 | (b[6]! & 0x0f)
  b[8] = 0x80 | (b[8]! & 0x3f)
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Runflow's timestamp form: `+00:00` offset, milliseconds, never `Z`. */
export function runflowTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+00:00')
}

/**
 * A realistic Runflow `run.completed` callback, as Runflow's docs show it:
 * UUIDv7 run id, `+00:00` timestamps, presigned S3-style output URLs.
 */
export function sampleRunflowCallback(opts: { runId?: string; now?: number; outputUrls?: string[] } = {}): string {
  const now = opts.now ?? Date.now()
  const runId = opts.runId ?? uuidv7(now)
  const amzDate = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
  const urls = opts.outputUrls ?? [
    `https://storage.example/outputs/${runId}/image-0.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=${amzDate}&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=${randomBytes(32).toString('hex')}`,
  ]
  return JSON.stringify({
    event: 'run.completed',
    run_id: runId,
    status: 'succeeded',
    output: { image_urls: urls },
    duration_ms: 102345,
    created_at: runflowTime(now - 102345),
    completed_at: runflowTime(now),
    metadata: null,
  })
}
