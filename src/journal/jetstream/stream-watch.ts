/**
 * What the JetStream journal knows of its stream between entries: whether it
 * is reachable with a leader (readiness), its first seq and size, and whether
 * it ever moved under the relay — recreated, gone backwards, or handing the
 * tail a jump over entries it should still hold — which makes the journal
 * stop acknowledging (fail-stop, `HOOKRELAY_JOURNAL_STREAM_CHANGED`).
 */
import type { JetStreamManager, StoredMsg, StreamInfo } from '@nats-io/jetstream'
import { RelayError } from '../../errors.js'
import type { Logger } from '../../log.js'
import { decodeEvent, type StoredEvent } from '../record.js'
import type { Tail } from './tail.js'

/** How long the stream may stay below the head this relay has seen (a new leader applying) before the journal fails. */
const BEHIND_GRACE_MS = 10_000

export interface StreamWatchDeps {
  jsm: JetStreamManager
  stream: string
  replicas: number
  log: Logger
  tail: Tail
  /** One message from the stream's leader. */
  message: (seq: number) => Promise<StoredMsg | null>
  /** How often the stream is checked (ms). */
  pollMs: number
}

export class StreamWatch {
  #d: StreamWatchDeps
  readonly #created: string
  #first: number
  #messages: number
  #bytes: number
  #available = true
  #reason = ''
  #failed: RelayError | undefined
  #polling = false
  #closed = false
  /**
   * The head when a check first found the stream's last seq below it, and when: checked again once
   * the stream reports that seq (a stale stream info, common under concurrent publishers), failed if
   * it never does within BEHIND_GRACE_MS.
   */
  #behind: { seq: number; since: number } | undefined
  /** The head at the previous check (a tail that stopped moving while the stream grew is restarted). */
  #headAtCheck = -1
  #timer: NodeJS.Timeout

  constructor(info: StreamInfo, deps: StreamWatchDeps) {
    this.#d = deps
    this.#created = info.created
    this.#first = info.state.first_seq
    this.#messages = info.state.messages
    this.#bytes = info.state.bytes
    this.#timer = setInterval(() => void this.check(), deps.pollMs)
    this.#timer.unref()
  }

  get failed(): RelayError | undefined {
    return this.#failed
  }

  /** Why the stream cannot take entries now, or undefined. */
  get unavailable(): string | undefined {
    return this.#available ? undefined : this.#reason
  }

  get bytes(): number {
    return this.#bytes
  }

  /** The first seq still in the stream; head + 1 when it is empty. */
  earliest(head: number): number {
    if (this.#messages === 0 || this.#first === 0) return head + 1
    return Math.min(this.#first, head + 1)
  }

  /** An entry the tail delivered. */
  delivered(seq: number): void {
    if (this.#messages === 0 || this.#first === 0) this.#first = seq
    this.#messages++
  }

  /** The tail was handed seq `through + 1` after `from - 1`: fine when retention removed them, else the stream lost them. */
  skipped(from: number, through: number): boolean {
    if (through < this.#first || this.#failed) return true
    this.fail(`stream ${this.#d.stream} skipped entries ${from}..${through} that it should still hold (its first seq is ${this.#first})`)
    return false
  }

  /** Marks the stream unavailable until the next successful check. */
  markUnavailable(reason: string): void {
    if (this.#available) this.#d.log.warn({ stream: this.#d.stream, reason }, 'journal stream unavailable: ingest answers 503')
    this.#available = false
    this.#reason = reason
  }

  fail(reason: string): void {
    if (this.#failed) return
    this.#failed = new RelayError('HOOKRELAY_JOURNAL_STREAM_CHANGED', reason)
    this.#d.log.error({ stream: this.#d.stream, head: this.#d.tail.head }, `journal stopped acknowledging: ${reason}`)
  }

  /** Checks the stream: reachable with a leader (readiness), and never moved backwards or recreated. */
  async check(): Promise<void> {
    if (this.#polling || this.#closed) return
    this.#polling = true
    const { stream, tail } = this.#d
    try {
      const info = await this.#d.jsm.streams.info(stream)
      const head = tail.head
      if (info.created !== this.#created) {
        this.fail(`stream ${stream} was recreated (created ${this.#created}, now ${info.created})`)
      } else if (this.#behind !== undefined && info.state.last_seq >= this.#behind.seq) {
        // The stream caught up with the seq it was once seen below: it must hold the entry this relay delivered there.
        const seq = this.#behind.seq
        this.#behind = undefined
        if (!(await this.#sameAt(seq))) this.fail(`stream ${stream} holds another entry at seq ${seq} than it delivered before`)
      } else if (info.state.last_seq < head) {
        // A stream info can trail what this relay's tail has already received: about one poll in three
        // with two relays publishing (measured), and right after a leader change while the new leader
        // applies. Neither makes a PubAck less durable, so appends go on; the seq is checked once the
        // stream reports it, and a stream that stays below it is one that went backwards.
        this.#behind ??= { seq: head, since: Date.now() }
        if (Date.now() - this.#behind.since >= BEHIND_GRACE_MS) {
          this.fail(`stream ${stream} went backwards: its last seq is ${info.state.last_seq}, this relay had seen ${this.#behind.seq}`)
        }
      }
      // A trailing answer may also carry an older first seq: only a current one is compared and kept.
      const current = info.state.last_seq >= head
      if (current && info.state.messages > 0 && this.#messages > 0 && info.state.first_seq < this.#first) {
        this.fail(`stream ${stream} went backwards: its first seq is ${info.state.first_seq}, it was ${this.#first}`)
      }
      // The stream is ahead and the tail did not move since the last check: its consumer is gone; make a new one.
      if (info.state.last_seq > head && head === this.#headAtCheck) void tail.restart().catch(() => undefined)
      this.#headAtCheck = head
      if (current) {
        this.#first = info.state.first_seq
        this.#messages = info.state.messages
        this.#bytes = info.state.bytes
      }
      if (this.#d.replicas > 1 && !info.cluster?.leader) this.markUnavailable('the stream has no leader (no quorum)')
      else {
        if (!this.#available) this.#d.log.info({ stream }, 'journal stream available again')
        this.#available = true
      }
    } catch (err) {
      this.markUnavailable((err as Error).message)
    } finally {
      this.#polling = false
    }
  }

  /** Whether the stream's entry at `seq` is the one the tail delivered (checked after the stream was seen behind). */
  async #sameAt(seq: number): Promise<boolean> {
    const seen = this.#d.tail.cached(seq)
    if (seen === undefined) return true
    return sameEntry(await this.#d.message(seq), seen)
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }
}

/** Whether a stream message is the entry `seen` (same fields, same body). */
function sameEntry(m: StoredMsg | null, seen: StoredEvent): boolean {
  if (m === null) return false
  const now = decodeEvent(m.seq, Buffer.from(m.data))
  return now.fragment.equals(seen.fragment) && now.body.equals(seen.body) && now.private.sha256 === seen.private.sha256
}
