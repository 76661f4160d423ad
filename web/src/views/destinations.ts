// Appears in the menu only on relays that answer GET /v1/destinations.
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, type Session } from '../api.js'
import { destinationState, latencyText, nextAttemptText, replaySeq, urlWithoutQuery, type DestinationRow } from '../logic.js'
import { enc, Failed, html } from '../ui.js'
import type { AttemptRecord, DeadLetter } from '../../../src/destinations/records.js'

type Detail = DestinationRow & { dead_letter_list: DeadLetter[]; recent_attempts: AttemptRecord[] }

type Action = { kind: 'dead' } | { kind: 'from'; seq: number } | { kind: 'pause' } | { kind: 'resume' }

/** Loads now and every 2 s, keeping the last answer on screen while the next is on its way. */
function usePoll<T>(load: () => Promise<T>): { data?: T; error?: Error; now: number; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: Error; now: number }>({ now: Date.now() })
  const [n, setN] = useState(0)
  useEffect(() => {
    let live = true
    const tick = (): void => {
      load().then(
        (data) => live && setState({ data, now: Date.now() }),
        (error: Error) => live && setState((s) => ({ ...s, error, now: Date.now() })),
      )
    }
    tick()
    const t = setInterval(tick, 2000)
    return () => {
      live = false
      clearInterval(t)
    }
  }, [n])
  return { ...state, reload: () => setN(n + 1) }
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false })
}

function State({ d }: { d: Pick<DestinationRow, 'paused' | 'paused_reason' | 'circuit'> }) {
  const s = destinationState(d)
  return html`<span class=${`status d-${s.kind}`}>${s.text}</span>`
}

export function Destinations({ token, session, name }: { token: string; session: Session; name?: string }) {
  return name === undefined ? html`<${List} token=${token} />` : html`<${One} key=${name} token=${token} session=${session} name=${name} />`
}

function List({ token }: { token: string }) {
  const { data, error } = usePoll(() => api<{ destinations: DestinationRow[] }>(token, '/v1/destinations'))
  const rows = data?.destinations ?? []
  return html`<section aria-labelledby="dest-h">
    <h2 id="dest-h">Destinations</h2>
    ${error ? html`<${Failed} error=${error} what="destinations" />` : null}
    ${data && rows.length === 0 ? html`<p class="empty">No destinations that this token may read.</p>` : null}
    ${rows.length > 0
      ? html`<div class="scroll"><table>
          <caption class="sr-only">Destinations</caption>
          <thead><tr><th scope="col">Destination</th><th scope="col">URL</th><th scope="col">State</th><th scope="col">Lag</th><th scope="col">Dead letters</th></tr></thead>
          <tbody>${rows.map(
            (d) => html`<tr data-destination=${d.name}>
              <th scope="row"><a href=${`#/destinations/${enc(d.name)}`}>${d.name}</a></th>
              <td class="url">${urlWithoutQuery(d.url)}</td><td><${State} d=${d} /></td><td>${d.lag}</td><td>${d.dead_letters}</td>
            </tr>`,
          )}</tbody>
        </table></div>`
      : null}
  </section>`
}

function One({ token, session, name }: { token: string; session: Session; name: string }) {
  const path = `/v1/destinations/${enc(name)}`
  const { data: d, error, now, reload } = usePoll(() => api<Detail>(token, path))
  const [confirm, setConfirm] = useState<Action | null>(null)
  const [from, setFrom] = useState('')
  const [message, setMessage] = useState('')
  // An action button gives way to Confirm: keyboard focus moves with it.
  const confirmButton = useRef<HTMLButtonElement>(null)
  useEffect(() => confirmButton.current?.focus(), [confirm])
  const operator = session.role === 'operator'

  const run = async (a: Action): Promise<void> => {
    setConfirm(null)
    const [action, body, done] =
      a.kind === 'dead'
        ? ['replay', { dead_letters: true }, 'Queued the dead letters for delivery.']
        : a.kind === 'from'
          ? ['replay', { from: a.seq }, `Delivering again from #${a.seq}.`]
          : [a.kind, undefined, a.kind === 'pause' ? `Paused ${name}.` : `Resumed ${name}.`]
    try {
      await api(token, `${path}/${action}`, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) })
      setMessage(done)
    } catch (err) {
      setMessage(`Could not ${action} ${name}: ${(err as Error).message}.`)
    }
    reload()
  }

  const question = (a: Action, dest: Detail): string => {
    switch (a.kind) {
      case 'dead':
        return `Send the ${dest.dead_letters} dead letter${dest.dead_letters === 1 ? '' : 's'} of ${name} again?`
      case 'from':
        return `Send #${a.seq} and every event after it to ${name} again? Events already delivered are delivered twice.`
      case 'pause':
        return `Pause ${name}? Nothing is delivered until it is resumed.`
      case 'resume':
        return `Resume ${name}?`
    }
  }

  return html`<section aria-labelledby="dest-h">
    <p><a href="#/destinations">All destinations</a></p>
    <h2 id="dest-h">Destination ${name}</h2>
    ${error ? html`<${Failed} error=${error} what=${`destination ${name}`} />` : null}
    ${d
      ? html`<dl class="meta">
            <dt>URL</dt><dd class="url">${urlWithoutQuery(d.url)}</dd>
            <dt>State</dt><dd><${State} d=${d} /></dd>
            <dt>Lag</dt><dd>${d.lag} (delivered up to #${d.cursor}, head #${d.head})</dd>
            <dt>In flight</dt><dd>${d.in_flight}</dd>
            <dt>Dead letters</dt><dd>${d.dead_letters}</dd>
          </dl>
          ${operator
            ? html`<div class="toolbar actions" role="group" aria-label="Actions">
                <button type="button" disabled=${d.dead_letters === 0} onClick=${() => setConfirm({ kind: 'dead' })}>Replay dead letters</button>
                <form class="lookup" onSubmit=${(e: Event) => {
                  e.preventDefault()
                  const seq = replaySeq(from)
                  if (seq === null) setMessage('Type the seq to replay from: a whole number of at least 1.')
                  else setConfirm({ kind: 'from', seq })
                }}>
                  <label>From seq<input name="from" inputmode="numeric" value=${from} onInput=${(e: Event) => setFrom((e.target as HTMLInputElement).value)} /></label>
                  <button type="submit">Replay from seq</button>
                </form>
                ${d.paused
                  ? html`<button type="button" onClick=${() => setConfirm({ kind: 'resume' })}>Resume</button>`
                  : html`<button type="button" onClick=${() => setConfirm({ kind: 'pause' })}>Pause</button>`}
              </div>
              ${confirm
                ? html`<p class="confirm">${question(confirm, d)}${' '}
                    <button type="button" class="danger" ref=${confirmButton} onClick=${() => void run(confirm)}>Confirm</button>${' '}
                    <button type="button" onClick=${() => setConfirm(null)}>Cancel</button></p>`
                : null}`
            : html`<p class="help actions">Replay, pause and resume need an operator’s token.</p>`}
          <p class="notice" role="status">${message}</p>
          <h3>Recent attempts</h3>
          ${d.recent_attempts.length === 0
            ? html`<p class="empty">No attempts yet.</p>`
            : html`<div class="scroll"><table class="attempts">
                <caption class="sr-only">Recent attempts, newest first</caption>
                <thead><tr><th scope="col">Time</th><th scope="col">Seq</th><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Latency</th><th scope="col">Error</th><th scope="col">Outcome</th><th scope="col">Next attempt</th></tr></thead>
                <tbody>${d.recent_attempts.map(
                  (a) => html`<tr data-seq=${a.seq} data-attempt=${a.attempt}>
                    <td>${clock(a.at)}</td><td><a href=${`#/event/${a.seq}`}>#${a.seq}</a></td><td>${a.attempt}</td><td>${a.status ?? '—'}</td>
                    <td>${latencyText(a.latency_ms)}</td><td>${a.error ?? ''}</td><td class=${`outcome o-${a.outcome}`}>${a.outcome}</td><td>${nextAttemptText(a.next_at, now, clock)}</td>
                  </tr>`,
                )}</tbody>
              </table></div>`}
          <h3>Dead letters</h3>
          ${d.dead_letter_list.length === 0
            ? html`<p class="empty">No dead letters.</p>`
            : html`<div class="scroll"><table class="dead">
                <caption class="sr-only">Dead letters, oldest first</caption>
                <thead><tr><th scope="col">Seq</th><th scope="col">Event</th><th scope="col">Key</th><th scope="col">Given up at</th><th scope="col">Attempts</th><th scope="col">Reason</th></tr></thead>
                <tbody>${d.dead_letter_list.map(
                  (x) => html`<tr data-seq=${x.seq}>
                    <th scope="row"><a href=${`#/event/${x.seq}`}>#${x.seq}</a></th><td>${x.source} ${x.event}</td><td class="key">${x.key}</td>
                    <td>${clock(x.at)}</td><td>${x.attempts}</td><td>${x.reason}</td>
                  </tr>`,
                )}</tbody>
              </table></div>`}`
      : null}
  </section>`
}
