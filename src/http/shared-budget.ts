/**
 * The body budget (`http.max_body_in_flight`, `http.max_body_per_address`)
 * shared by every ingest thread: counters in a SharedArrayBuffer, taken and
 * given with compare-and-swap, so the bounds hold across threads exactly as
 * `BodyBudget` holds them on one.
 *
 * Per address, bytes are counted in one of ADDRESS_SLOTS slots chosen by a
 * hash of the address. Two addresses that hash to the same slot share one
 * per-address bound: stricter for both, never looser (the global bound is
 * exact). With 65,536 slots that is rare for the few senders a relay has.
 */
import type { BytesBudget } from './ingest.js'

export const ADDRESS_SLOTS = 1 << 16

/** Layout of the shared memory: [inUse, max, perAddress, slot 0 … slot N-1], all BigInt64. */
const IN_USE = 0
const MAX = 1
const PER_ADDRESS = 2
const SLOTS = 3

export class SharedBodyBudget implements BytesBudget {
  readonly memory: SharedArrayBuffer
  #a: BigInt64Array

  /** A new budget (`max`, `perAddress` set), or a view of one another thread made (`memory`). */
  constructor(init: { max: number; perAddress: number } | SharedArrayBuffer) {
    if (init instanceof SharedArrayBuffer) {
      this.memory = init
      this.#a = new BigInt64Array(init)
    } else {
      this.memory = new SharedArrayBuffer((SLOTS + ADDRESS_SLOTS) * 8)
      this.#a = new BigInt64Array(this.memory)
      this.max = init.max
      this.perAddress = init.perAddress
    }
  }

  get inUse(): number {
    return Number(Atomics.load(this.#a, IN_USE))
  }

  get max(): number {
    return Number(Atomics.load(this.#a, MAX))
  }

  set max(n: number) {
    Atomics.store(this.#a, MAX, BigInt(n))
  }

  get perAddress(): number {
    return Number(Atomics.load(this.#a, PER_ADDRESS))
  }

  set perAddress(n: number) {
    Atomics.store(this.#a, PER_ADDRESS, BigInt(n))
  }

  /** Slots holding bytes (tests check it drains to 0). */
  get addresses(): number {
    let n = 0
    for (let i = SLOTS; i < SLOTS + ADDRESS_SLOTS; i++) if (Atomics.load(this.#a, i) !== 0n) n++
    return n
  }

  /** Takes n bytes for `address`; false when either bound would be passed (nothing is taken then). */
  take(address: string, n: number): boolean {
    const a = this.#a
    const bn = BigInt(n)
    const max = Atomics.load(a, MAX)
    for (;;) {
      const cur = Atomics.load(a, IN_USE)
      if (cur + bn > max) return false
      if (Atomics.compareExchange(a, IN_USE, cur, cur + bn) === cur) break
    }
    const slot = SLOTS + slotOf(address)
    const per = Atomics.load(a, PER_ADDRESS)
    for (;;) {
      const cur = Atomics.load(a, slot)
      if (cur + bn > per) {
        Atomics.sub(a, IN_USE, bn)
        return false
      }
      if (Atomics.compareExchange(a, slot, cur, cur + bn) === cur) return true
    }
  }

  give(address: string, n: number): void {
    if (n === 0) return
    const bn = BigInt(n)
    Atomics.sub(this.#a, IN_USE, bn)
    Atomics.sub(this.#a, SLOTS + slotOf(address), bn)
  }
}

/** FNV-1a of the address's UTF-16 code units, folded to a slot. */
export function slotOf(address: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h ^ (h >>> 16)) & (ADDRESS_SLOTS - 1)
}
