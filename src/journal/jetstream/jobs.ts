/**
 * Job queues of the JetStream journal, in the `<stream>_jobs` KV bucket: one
 * KV entry per job, `{ job, lease }`. Every relay keeps a copy of the bucket
 * in memory from a KV watch, so that append hooks and `changeJobs` read jobs
 * synchronously as they do inside an LMDB transaction.
 *
 * `claim` leases a job to this relay with a compare-and-set on the entry's
 * revision (two relays never both win it); the relay renews its leases while
 * it lives, and a lease whose relay died expires, after which any relay's
 * `claim` takes the job.
 */
import type { KV, KvEntry } from '@nats-io/kv'
import type { QueuedIterator } from '@nats-io/nats-core'
import type { ClaimOptions, QueuedJob } from '../port.js'
import type { JobChanges, JobKey, JobView } from '../types.js'
import { compareJobKeys, jobKvKey, parseJobKvKey } from './keys.js'
import { isConflict } from './errors.js'

interface Lease {
  owner: string
  /** Epoch ms. */
  until: number
}

interface JobValue {
  job: unknown
  lease?: Lease
}

interface Local {
  /** Undefined once deleted. */
  value: JobValue | undefined
  revision: number
  queue: string
  key: JobKey
}

export class JobStore {
  #kv: KV
  #owner: string
  #leaseMs: number
  #map = new Map<string, Local>()
  /** KV keys of jobs this relay holds a lease on. */
  #held = new Set<string>()
  #watch: QueuedIterator<KvEntry> | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #now: () => number

  private constructor(kv: KV, owner: string, leaseMs: number, now: () => number) {
    this.#kv = kv
    this.#owner = owner
    this.#leaseMs = leaseMs
    this.#now = now
  }

  /** Loads the bucket and follows it; `owner` names this relay in leases. */
  static async open(kv: KV, owner: string, leaseMs: number, now: () => number = Date.now): Promise<JobStore> {
    const store = new JobStore(kv, owner, leaseMs, now)
    // Follow first, then load: whichever of the two sees a key last by revision wins.
    const watch = await kv.watch()
    store.#watch = watch
    void (async () => {
      for await (const e of watch) store.#note(e)
    })().catch(() => undefined)
    const keys: string[] = []
    for await (const k of await kv.keys()) keys.push(k)
    for (const k of keys) {
      const e = await kv.get(k)
      if (e) store.#note(e)
    }
    store.#renewTimer = setInterval(() => void store.#renew(), Math.max(50, Math.floor(leaseMs / 3)))
    store.#renewTimer.unref()
    return store
  }

  #note(e: KvEntry): void {
    const cur = this.#map.get(e.key)
    if (cur && cur.revision >= e.revision) return
    const { queue, key } = parseJobKvKey(e.key)
    const value = e.operation === 'PUT' ? (e.json<JobValue>() as JobValue) : undefined
    this.#map.set(e.key, { value, revision: e.revision, queue, key })
  }

  /** A job as this relay last saw it. */
  peek<J>(queue: string, key: JobKey): J | undefined {
    return this.#map.get(jobKvKey(queue, key))?.value?.job as J | undefined
  }

  async get<J>(queue: string, key: JobKey): Promise<J | undefined> {
    const e = await this.#kv.get(jobKvKey(queue, key))
    if (e) this.#note(e)
    return e && e.operation === 'PUT' ? (e.json<JobValue>().job as J) : undefined
  }

  /** Every job of `queue` this relay knows, in key order. */
  list<J>(queue: string): Array<QueuedJob<J>> {
    const out: Array<QueuedJob<J>> = []
    for (const l of this.#map.values()) if (l.queue === queue && l.value) out.push({ key: l.key, job: l.value.job as J })
    return out.sort((a, b) => compareJobKeys(a.key, b.key))
  }

  /** A transaction's view: the jobs as they are plus what it changed so far. */
  begin(): JobTxn {
    return new JobTxn(this)
  }

  /** Writes a transaction's changes (deletes, then puts; a replaced job keeps its lease). */
  async write(changes: Map<string, { queue: string; key: JobKey; job: unknown } | undefined>): Promise<void> {
    const writes: Array<Promise<unknown>> = []
    for (const [k, c] of changes) {
      if (c === undefined) {
        const cur = this.#map.get(k)
        if (cur?.value === undefined) continue
        writes.push(
          this.#kv.delete(k).then(() => {
            const now = this.#map.get(k)
            if (now && now.revision === cur.revision) this.#map.set(k, { ...now, value: undefined })
            this.#held.delete(k)
          }),
        )
      } else {
        const lease = this.#map.get(k)?.value?.lease
        const value: JobValue = lease ? { job: c.job, lease } : { job: c.job }
        writes.push(
          this.#kv.put(k, JSON.stringify(value)).then((revision) => {
            const cur = this.#map.get(k)
            if (!cur || cur.revision < revision) this.#map.set(k, { value, revision, queue: c.queue, key: c.key })
          }),
        )
      }
    }
    await Promise.all(writes)
  }

  async claim<J>(queue: string, opts: ClaimOptions<J>): Promise<Array<QueuedJob<J>>> {
    const out: Array<QueuedJob<J>> = []
    if (opts.limit <= 0) return out
    const now = this.#now()
    const candidates = [...this.#map.entries()]
      .filter(([, l]) => l.queue === queue && l.value !== undefined)
      .sort((a, b) => compareJobKeys(a[1].key, b[1].key))
    for (const [k, l] of candidates) {
      const v = l.value!
      const lease = v.lease
      const mine = lease?.owner === this.#owner && lease.until > now
      if (lease && lease.until > now && !mine) continue
      if (opts.accept && !opts.accept(v.job as J, l.key)) continue
      if (!mine && !(await this.#lease(k, l, v))) continue
      out.push({ key: l.key, job: v.job as J })
      if (out.length >= opts.limit) break
    }
    return out
  }

  /** Takes (or renews) the lease of one job by compare-and-set; false when another relay changed it first. */
  async #lease(k: string, l: Local, v: JobValue): Promise<boolean> {
    const value: JobValue = { job: v.job, lease: { owner: this.#owner, until: this.#now() + this.#leaseMs } }
    try {
      const revision = await this.#kv.update(k, JSON.stringify(value), l.revision)
      const cur = this.#map.get(k)
      if (!cur || cur.revision < revision) this.#map.set(k, { ...l, value, revision })
      this.#held.add(k)
      return true
    } catch (err) {
      if (isConflict(err)) return false
      throw err
    }
  }

  async #renew(): Promise<void> {
    for (const k of [...this.#held]) {
      const l = this.#map.get(k)
      if (l?.value?.lease?.owner !== this.#owner) {
        this.#held.delete(k)
        continue
      }
      try {
        if (!(await this.#lease(k, l, l.value))) this.#held.delete(k)
      } catch {
        // Unreachable cluster: the lease runs out and another relay may take the job; retried next tick.
      }
    }
  }

  close(): void {
    if (this.#renewTimer) clearInterval(this.#renewTimer)
    this.#watch?.stop()
  }
}

/** Jobs inside one entry's "transaction": read-your-writes over the store, written with `JobStore.write`. */
export class JobTxn implements JobView {
  #store: JobStore
  readonly changes = new Map<string, { queue: string; key: JobKey; job: unknown } | undefined>()

  constructor(store: JobStore) {
    this.#store = store
  }

  getJob<J>(queue: string, key: JobKey): J | undefined {
    const k = jobKvKey(queue, key)
    if (this.changes.has(k)) return this.changes.get(k)?.job as J | undefined
    return this.#store.peek<J>(queue, key)
  }

  apply(changes: JobChanges | undefined | void): void {
    if (!changes) return
    for (const r of changes.remove ?? []) this.changes.set(jobKvKey(r.queue, r.key), undefined)
    for (const e of changes.enqueue ?? []) this.changes.set(jobKvKey(e.queue, e.key), { queue: e.queue, key: e.key, job: e.job })
  }
}
