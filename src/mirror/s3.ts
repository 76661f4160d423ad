import { createReadStream } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { pipeline } from 'node:stream/promises'
import { Client } from 'minio'
import type { MirrorConfig } from '../config/types.js'
import { RelayError } from '../errors.js'

/** How long a presigned PUT URL made for one upload stays valid. */
const PRESIGN_SECONDS = 15 * 60
/** The largest object one S3 PUT may carry. */
export const MAX_SINGLE_PUT = 5 * 1024 ** 3

/** S3 answered the upload with a non-2xx status. */
export class StoreStatusError extends RelayError {
  readonly storeStatus: number
  constructor(status: number, detail: string) {
    super('HOOKRELAY_MIRROR_STORE_STATUS', `the object store answered ${status}${detail ? `: ${detail}` : ''}`)
    this.storeStatus = status
  }
}

export interface StoredObject {
  bucket: string
  key: string
  size: number
  /** The PUT answer's ETag, quotes removed (the content's MD5 on a plain single PUT). */
  etag: string | undefined
}

/**
 * The bucket outputs are mirrored into (MinIO or any S3-compatible store).
 *
 * The `minio` client does the bucket check and creation, presigning and stat.
 * The upload itself streams the spooled file with its Content-Length to a
 * presigned PUT URL over node:http(s): minio's own `putObject` reads a
 * known-size single PUT whole into memory and buffers unknown-size uploads in
 * parts of up to 528 MiB, which a Pi cannot afford. A single PUT takes up to
 * 5 GiB on S3; `mirror.max_bytes` defaults to 1 GiB.
 */
export class ObjectStore {
  readonly bucket: string
  readonly #client: Client
  readonly #region: string
  readonly #timeoutMs: number
  readonly #idleMs: number

  /**
   * @param cfg.uploadTimeoutMs the longest an upload may take;
   * @param cfg.idleMs the longest the store may stay silent (connecting, between
   *   body writes, before answering), and the bound on each bucket/stat call.
   */
  constructor(cfg: Pick<MirrorConfig, 'endpoint' | 'region' | 'access_key' | 'secret_key' | 'bucket'> & {
    uploadTimeoutMs: number
    idleMs: number
  }) {
    const u = new URL(cfg.endpoint)
    const useSSL = u.protocol === 'https:'
    this.bucket = cfg.bucket
    this.#region = cfg.region
    this.#timeoutMs = cfg.uploadTimeoutMs
    this.#idleMs = cfg.idleMs
    this.#client = new Client({
      endPoint: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
      port: u.port !== '' ? Number(u.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: cfg.access_key,
      secretKey: cfg.secret_key,
      region: cfg.region,
      // MinIO and most self-hosted stores serve buckets by path, not by virtual host.
      pathStyle: true,
      // The worker retries with its own backoff and deadline.
      retryOptions: { disableRetry: true },
    })
  }

  /**
   * Creates the bucket when it does not exist.
   * @throws RelayError HOOKRELAY_MIRROR_BUCKET when the store cannot be reached or refuses.
   */
  async ensureBucket(): Promise<void> {
    try {
      if (await this.#bounded(this.#client.bucketExists(this.bucket), 'bucketExists')) return
      await this.#bounded(this.#client.makeBucket(this.bucket, this.#region), 'makeBucket')
    } catch (cause) {
      throw new RelayError(
        'HOOKRELAY_MIRROR_BUCKET',
        `cannot check or create bucket ${this.bucket}: ${(cause as Error).message}; check mirror.endpoint and the keys`,
        { cause },
      )
    }
  }

  /**
   * Streams `file` (exactly `size` bytes) to `key`, or sends `bytes` held in
   * memory (small objects). Memory stays flat whatever the file's size.
   *
   * @throws StoreStatusError on a non-2xx answer, RelayError
   *   HOOKRELAY_MIRROR_STORE_UNAVAILABLE when the store cannot be reached.
   *   The stored size is checked by `confirm`.
   */
  async upload(key: string, source: string | Buffer, size: number, contentType: string, signal?: AbortSignal): Promise<StoredObject> {
    if (size > MAX_SINGLE_PUT) {
      throw new RelayError(
        'HOOKRELAY_MIRROR_TOO_LARGE',
        `${size} bytes is over the 5 GiB a single S3 PUT takes; keep mirror.max_bytes at 5gb or less`,
      )
    }
    const timer = AbortSignal.timeout(this.#timeoutMs)
    const both = signal ? AbortSignal.any([signal, timer]) : timer
    try {
      const url = new URL(await this.#client.presignedPutObject(this.bucket, key, PRESIGN_SECONDS))
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = send(url, {
          method: 'PUT',
          headers: { 'content-length': String(size), 'content-type': contentType },
          signal: both,
        })
        // Socket silence (connecting, a stalled body, no answer) for idleMs ends the attempt.
        req.setTimeout(this.#idleMs, () =>
          req.destroy(new RelayError('HOOKRELAY_MIRROR_STORE_UNAVAILABLE', `the object store was silent for ${this.#idleMs} ms`)),
        )
        req.once('response', resolve)
        // `on`, not `once`: a socket error after the response must not be an uncaught 'error'.
        req.on('error', reject)
        if (typeof source === 'string') pipeline(createReadStream(source), req).catch(reject)
        else req.end(source)
      })
      const detail = await readSmall(res, 2048)
      const status = res.statusCode ?? 0
      if (status < 200 || status > 299) throw new StoreStatusError(status, s3Code(detail))
      return { bucket: this.bucket, key, size, etag: res.headers.etag?.replace(/^"|"$/g, '') }
    } catch (err) {
      if (signal?.aborted) throw new RelayError('HOOKRELAY_MIRROR_ABORTED', 'upload aborted', { cause: err })
      if (err instanceof RelayError) throw err
      throw new RelayError('HOOKRELAY_MIRROR_STORE_UNAVAILABLE', `upload of ${key} failed: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }

  /**
   * Checks that the store holds `size` bytes under `key`: a 2xx to a PUT is
   * not proof on every S3 implementation. Separate from `upload` so that the
   * worker can run it beside the next transfer.
   *
   * @throws RelayError HOOKRELAY_MIRROR_STORE_MISMATCH when the stored size
   *   differs, HOOKRELAY_MIRROR_STORE_UNAVAILABLE when the store does not answer.
   */
  async confirm(key: string, size: number): Promise<void> {
    let stored: number
    try {
      stored = (await this.#bounded(this.#client.statObject(this.bucket, key), 'statObject')).size
    } catch (err) {
      if (err instanceof RelayError) throw err
      throw new RelayError('HOOKRELAY_MIRROR_STORE_UNAVAILABLE', `stat of ${key} failed: ${(err as Error).message}`, { cause: err })
    }
    if (stored !== size) {
      throw new RelayError('HOOKRELAY_MIRROR_STORE_MISMATCH', `stored ${stored} bytes for ${key}, sent ${size}`)
    }
  }

  /** The minio client sets no request timeout of its own: a silent store must not hold a worker slot forever. */
  #bounded<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new RelayError('HOOKRELAY_MIRROR_STORE_UNAVAILABLE', `${what} got no answer in ${this.#idleMs} ms`)),
        this.#idleMs,
      )
      // A shutdown does not wait for an abandoned store call.
      timer.unref()
    })
    return Promise.race([p, late]).finally(() => clearTimeout(timer))
  }
}

async function readSmall(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res as AsyncIterable<Buffer>) {
    if (n < max) chunks.push(c.subarray(0, max - n))
    n += c.length
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The `<Code>` of an S3 error document, for logs and the failure reason. */
function s3Code(xml: string): string {
  return /<Code>([^<]{1,64})<\/Code>/.exec(xml)?.[1] ?? ''
}
