import { useMemo, useState } from 'preact/hooks'
import type { Session } from '../api.js'
import { matcher, NO_FILTER, type TailBook, type TailEvent, type TailFilter } from '../logic.js'
import { html } from '../ui.js'

function time(iso: string): string {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString(undefined, { hour12: false })
}

export function Tail({ book, session, version }: { book: TailBook; session: Session; version: number }) {
  const [filter, setFilter] = useState<TailFilter>(NO_FILTER)
  const [paused, setPaused] = useState<readonly TailEvent[] | null>(null)
  const [jump, setJump] = useState('')
  const shown = paused ?? book.events
  const match = useMemo(() => matcher(filter), [filter])
  const rows = shown.filter(match).slice().reverse()
  const newer = paused ? book.events.filter((e) => e.seq > (paused[paused.length - 1]?.seq ?? 0)).length : 0
  // `version` changes on every event, which is what re-renders this view.
  void version
  const set = (k: keyof TailFilter) => (e: Event) => setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value })
  const go = (e: Event): void => {
    e.preventDefault()
    if (/^\d+$/.test(jump.trim())) location.hash = `#/event/${jump.trim()}`
  }
  return html`<section aria-labelledby="tail-h">
    <h2 id="tail-h">Live tail</h2>
    <div class="toolbar">
      <form class="filters" role="search" aria-label="Filter the tail" onSubmit=${(e: Event) => e.preventDefault()}>
        <label>Source
          <select name="source" value=${filter.source} onChange=${set('source')}>
            <option value="">All sources</option>
            ${session.sources.map((s) => html`<option value=${s}>${s}</option>`)}
          </select>
        </label>
        <label>Event glob <input name="events" placeholder="run.*, batch.failed" value=${filter.events} onInput=${set('events')} /></label>
        <label>Key <input name="key" placeholder="part of a run id" value=${filter.key} onInput=${set('key')} /></label>
      </form>
      <button type="button" class="pause" aria-pressed=${paused !== null} onClick=${() => setPaused(paused ? null : [...book.events])}>
        ${paused ? 'Resume' : 'Pause'}
      </button>
      <form class="jump" onSubmit=${go}>
        <label>Jump to seq <input name="seq" inputmode="numeric" pattern="[0-9]*" value=${jump} onInput=${(e: Event) => setJump((e.target as HTMLInputElement).value)} /></label>
        <button type="submit">Open</button>
      </form>
    </div>
    <p class="count" aria-live="polite">
      ${paused ? `Paused: ${newer} newer event${newer === 1 ? '' : 's'} held. ` : ''}${rows.length} of ${shown.length} shown
    </p>
    <ol class="tail" aria-label="Events, newest first">
      ${rows.map(
        (e) => html`<li key=${e.seq}>
          <a href=${`#/event/${e.seq}`} class="row" data-seq=${e.seq}>
            <span class="seq">#${e.seq}</span>
            <span class="time">${time(e.received_at)}</span>
            <span class="source">${e.source}</span>
            <span class="event">${e.event}</span>
            <span class="key">${e.key}</span>
            <span class="rev">rev ${e.revision}</span>
          </a>
        </li>`,
      )}
    </ol>
    ${rows.length === 0 ? html`<p class="empty">No events yet${filter !== NO_FILTER ? ' that match the filter' : ''}.</p>` : null}
  </section>`
}
