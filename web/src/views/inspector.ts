import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api, type OneEvent } from '../api.js'
import { lineDiff, pretty, sideBySide } from '../logic.js'
import { enc, Failed, html, useLoad } from '../ui.js'

export function Inspector({ token, seq }: { token: string; seq: number }) {
  const { data: e, error } = useLoad(() => api<OneEvent>(token, `/v1/events/${seq}`), [seq])
  const [raw, setRaw] = useState(false)
  const heading = useRef<HTMLHeadingElement>(null)
  useEffect(() => heading.current?.focus(), [seq])
  return html`<section aria-labelledby="ev-h">
    <h2 id="ev-h" tabindex="-1" ref=${heading}>Event #${seq}</h2>
    ${error ? html`<${Failed} error=${error} what=${`event ${seq}`} />` : null}
    ${e
      ? html`<dl class="meta">
            <dt>Source</dt><dd>${e.source}</dd>
            <dt>Event</dt><dd>${e.event}</dd>
            <dt>Key</dt><dd><a href=${`#/runs/${enc(e.source)}/${enc(e.key)}`}>${e.key}</a></dd>
            <dt>Revision</dt><dd>${e.revision}</dd>
            <dt>Received</dt><dd>${e.received_at}</dd>
          </dl>
          <h3>Headers</h3>
          ${Object.keys(e.headers).length === 0
            ? html`<p>No headers were kept with this entry.</p>`
            : html`<table class="headers"><caption class="sr-only">Request headers kept with the entry</caption>
                <thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead>
                <tbody>${Object.entries(e.headers).map(([k, v]) => html`<tr><th scope="row">${k}</th><td><code>${v}</code></td></tr>`)}</tbody>
              </table>`}
          <h3>Body</h3>
          <div class="tabs" role="group" aria-label="Body view">
            <button type="button" aria-pressed=${!raw} onClick=${() => setRaw(false)}>Pretty</button>
            <button type="button" aria-pressed=${raw} onClick=${() => setRaw(true)}>Raw</button>
          </div>
          <pre class="body" tabindex="0" aria-label=${raw ? 'Raw body' : 'Pretty-printed body'}>${raw ? e.body : pretty(e.body)}</pre>
          <${Revisions} token=${token} e=${e} />`
      : error
        ? null
        : html`<p aria-busy="true">Loading…</p>`}
  </section>`
}

function Revisions({ token, e }: { token: string; e: OneEvent }) {
  const others = e.revisions
  // The pair shown: this revision against the one before it (or the next, for revision 1).
  const idx = Math.max(0, others.findIndex((r) => r.seq === e.seq))
  const pair = others.length < 2 ? [] : idx === 0 ? [others[0]!, others[1]!] : [others[idx - 1]!, others[idx]!]
  const { data, error } = useLoad(
    () => Promise.all(pair.map((r) => (r.seq === e.seq ? Promise.resolve(e) : api<OneEvent>(token, `/v1/events/${r.seq}`)))),
    [e.seq, pair.map((r) => r.seq).join(',')],
  )
  return html`<h3>Revisions of ${e.key}</h3>
    <ul class="revs">
      ${others.map(
        (r) => html`<li>${r.seq === e.seq ? html`<strong aria-current="page">revision ${r.revision} (#${r.seq})</strong>` : html`<a href=${`#/event/${r.seq}`}>revision ${r.revision} (#${r.seq})</a>`}</li>`,
      )}
    </ul>
    ${pair.length === 0 ? html`<p>Only one revision.</p>` : null}
    ${error ? html`<${Failed} error=${error} what="the other revision (it may have been pruned)" />` : null}
    ${data && data.length === 2 ? html`<${Diff} a=${data[0]!} b=${data[1]!} />` : null}`
}

function Diff({ a, b }: { a: OneEvent; b: OneEvent }) {
  const rows = useMemo(() => sideBySide(lineDiff(pretty(a.body), pretty(b.body))), [a.seq, b.seq])
  const cell = (l: { kind: string; text: string } | undefined) =>
    l === undefined
      ? html`<td class="gap"></td>`
      : html`<td class=${l.kind}>${l.kind === 'same' ? '' : html`<span class="sr-only">${l.kind}: </span>`}${l.text}</td>`
  return html`<table class="diff" aria-label=${`Differences between revision ${a.revision} and revision ${b.revision}`}>
    <thead><tr><th scope="col">Revision ${a.revision} (#${a.seq})</th><th scope="col">Revision ${b.revision} (#${b.seq})</th></tr></thead>
    <tbody>${rows.map((r) => html`<tr>${cell(r.left)}${cell(r.right)}</tr>`)}</tbody>
  </table>`
}
