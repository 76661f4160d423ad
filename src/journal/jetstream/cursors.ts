/** Durable consumer acks of the JetStream journal, in `<stream>_cursors`: one KV entry per consumer. */
import type { KV } from '@nats-io/kv'
import type { StoredCursor } from '../port.js'
import { cursorKey, cursorName } from './keys.js'

export class Cursors {
  #kv: KV

  constructor(kv: KV) {
    this.#kv = kv
  }

  async get(name: string): Promise<StoredCursor | undefined> {
    const e = await this.#kv.get(cursorKey(name))
    if (!e || e.operation !== 'PUT') return undefined
    const c = e.json<{ seq: number; epoch: string }>()
    return { seq: c.seq, epoch: c.epoch }
  }

  /** Stores every ack of `acks` in `epoch` (one put each: a consumer's ack is its own key). */
  async save(acks: ReadonlyMap<string, number>, epoch: string): Promise<void> {
    const at = Date.now()
    await Promise.all([...acks].map(([name, seq]) => this.#kv.put(cursorKey(name), JSON.stringify({ seq, epoch, at }))))
  }

  async list(): Promise<Array<{ name: string; seq: number }>> {
    const keys: string[] = []
    for await (const k of await this.#kv.keys()) keys.push(k)
    const out: Array<{ name: string; seq: number }> = []
    for (const k of keys) {
      const e = await this.#kv.get(k)
      if (e && e.operation === 'PUT') out.push({ name: cursorName(k), seq: e.json<{ seq: number }>().seq })
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async delete(name: string): Promise<boolean> {
    const e = await this.#kv.get(cursorKey(name))
    if (!e || e.operation !== 'PUT') return false
    await this.#kv.delete(cursorKey(name))
    return true
  }
}
