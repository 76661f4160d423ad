import { useState } from 'preact/hooks'
import { api, type OneEvent, type Session } from '../api.js'
import { bytes } from '../logic.js'
import { enc, Failed, html, useLoad } from '../ui.js'

interface Run {
  source: string
  id: string
  event: string
  status: string | null
  seq: number
  revision: number
  received_at: string
  mirror: { state: string; objects: Array<{ index: number; url: string; state: string; bucket?: string; key?: string; size?: number; reason?: { code: string; message: string } }> }
}

export function Runs({ token, session, source, id }: { token: string; session: Session; source?: string; id?: string }) {
  const [src, setSrc] = useState(source ?? session.sources[0] ?? '')
  const [runId, setRunId] = useState(id ?? '')
  const submit = (e: Event): void => {
    e.preventDefault()
    if (runId.trim() !== '') location.hash = `#/runs/${enc(src)}/${enc(runId.trim())}`
  }
  return html`<section aria-labelledby="runs-h">
    <h2 id="runs-h">Run lookup</h2>
    <form class="lookup" onSubmit=${submit}>
      <label>Source
        <select name="source" value=${src} onChange=${(e: Event) => setSrc((e.target as HTMLSelectElement).value)}>
          ${session.sources.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
      <label>Run id <input name="id" required value=${runId} onInput=${(e: Event) => setRunId((e.target as HTMLInputElement).value)} /></label>
      <button type="submit">Look up</button>
    </form>
    ${source !== undefined && id !== undefined ? html`<${RunView} key=${`${source}/${id}`} token=${token} source=${source} id=${id} />` : null}
  </section>`
}

function RunView({ token, source, id }: { token: string; source: string; id: string }) {
  const { data: run, error } = useLoad(() => api<Run>(token, `/v1/runs/${enc(source)}/${enc(id)}`), [source, id])
  const { data: latest } = useLoad(() => (run ? api<OneEvent>(token, `/v1/events/${run.seq}`) : Promise.resolve(undefined)), [run?.seq])
  if (error) return html`<${Failed} error=${error} what=${`run ${id} from ${source}`} />`
  if (!run) return html`<p aria-busy="true">Loading…</p>`
  return html`<div class="run" aria-live="polite">
    <h3>${run.source} / ${run.id}</h3>
    <dl class="meta">
      <dt>Status</dt><dd><span class=${`status s-${run.status ?? 'none'}`}>${run.status ?? '—'}</span></dd>
      <dt>Event</dt><dd>${run.event}</dd>
      <dt>Revision</dt><dd>${run.revision}</dd>
      <dt>Latest entry</dt><dd><a href=${`#/event/${run.seq}`}>#${run.seq}</a></dd>
      <dt>Received</dt><dd>${run.received_at}</dd>
      <dt>Mirror</dt><dd><span class=${`status s-${run.mirror.state}`}>${run.mirror.state}</span></dd>
    </dl>
    <h4>Revisions</h4>
    <ul class="revs">
      ${(latest?.revisions ?? [{ revision: run.revision, seq: run.seq }]).map((r) => html`<li><a href=${`#/event/${r.seq}`}>revision ${r.revision} (#${r.seq})</a></li>`)}
    </ul>
    <h4>Mirror objects</h4>
    ${run.mirror.objects.length === 0
      ? html`<p>No output files to mirror.</p>`
      : html`<div class="scroll"><table>
          <thead><tr><th scope="col">#</th><th scope="col">State</th><th scope="col">URL</th><th scope="col">Object</th><th scope="col">Error</th></tr></thead>
          <tbody>
            ${run.mirror.objects.map(
              (o) => html`<tr>
                <td>${o.index}</td><td><span class=${`status s-${o.state}`}>${o.state}</span></td>
                <td class="url">${o.url}</td>
                <td>${o.bucket !== undefined ? `${o.bucket}/${o.key} (${bytes(o.size ?? 0)})` : '—'}</td>
                <td>${o.reason ? `${o.reason.message} (${o.reason.code})` : ''}</td>
              </tr>`,
            )}
          </tbody>
        </table></div>`}
  </div>`
}
