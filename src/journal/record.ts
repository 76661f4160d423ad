/**
 * Binary layout of one journal entry, chosen so that fan-out and the read API
 * can build their JSON by concatenation instead of re-serializing the body:
 *
 *   u32le publicLen | public | u32le privateLen | private | body
 *
 * `public` is the comma-separated JSON members every consumer sees
 * (`"source":"runflow","event":"run.completed","key":"…","revision":1,"received_at":"…"`),
 * without braces. `private` is a JSON object for the relay's own use (sha256,
 * sender request id). `body` is the raw request body, byte-exact.
 */

export interface EventMeta {
  source: string
  event: string
  key: string
  revision: number
  received_at: string
}

export interface EventPrivate {
  /** Hex sha256 of the body. */
  sha256: string
  /** Sender's request id (e.g. `Runflow-Request-Id`) for log correlation. */
  request_id?: string
  /**
   * The request headers kept with the entry, lowercase names: the scheme's
   * signature headers, content-type, request ids. Forwarding with the
   * sender's own signature needs them as received.
   */
  headers?: Record<string, string>
}

export interface StoredEvent extends EventMeta {
  seq: number
  /** The JSON members of EventMeta, ready to splice into a frame. */
  fragment: Buffer
  body: Buffer
  private: EventPrivate
}

export function encodeEvent(meta: EventMeta, priv: EventPrivate, body: Buffer): Buffer {
  const pub = Buffer.from(
    `"source":${JSON.stringify(meta.source)},"event":${JSON.stringify(meta.event)},` +
      `"key":${JSON.stringify(meta.key)},"revision":${meta.revision},"received_at":"${meta.received_at}"`,
  )
  const prv = Buffer.from(JSON.stringify(priv))
  const out = Buffer.allocUnsafe(8 + pub.length + prv.length + body.length)
  out.writeUInt32LE(pub.length, 0)
  pub.copy(out, 4)
  out.writeUInt32LE(prv.length, 4 + pub.length)
  prv.copy(out, 8 + pub.length)
  body.copy(out, 8 + pub.length + prv.length)
  return out
}

/**
 * Decodes a stored entry. The returned buffers are views into `raw`, so pass
 * a buffer the caller owns (never lmdb's reusable `getBinaryFast` buffer).
 */
export function decodeEvent(seq: number, raw: Buffer): StoredEvent {
  const pubLen = raw.readUInt32LE(0)
  const fragment = raw.subarray(4, 4 + pubLen)
  const prvLen = raw.readUInt32LE(4 + pubLen)
  const prvStart = 8 + pubLen
  const meta = JSON.parse(`{${fragment.toString()}}`) as EventMeta
  const priv = JSON.parse(raw.toString('utf8', prvStart, prvStart + prvLen)) as EventPrivate
  return { seq, ...meta, fragment, private: priv, body: raw.subarray(prvStart + prvLen) }
}
