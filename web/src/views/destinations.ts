// Appears in the menu only on relays that answer GET /v1/destinations.
import { api } from '../api.js'
import { Failed, html, useLoad } from '../ui.js'

export function Destinations({ token }: { token: string }) {
  const { data, error } = useLoad(() => api<{ destinations: Array<Record<string, unknown>> }>(token, '/v1/destinations'), [])
  const rows = data?.destinations ?? []
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  return html`<section aria-labelledby="dest-h">
    <h2 id="dest-h">Destinations</h2>
    ${error ? html`<${Failed} error=${error} what="destinations" />` : null}
    ${rows.length > 0
      ? html`<div class="scroll"><table>
          <thead><tr>${cols.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
          <tbody>${rows.map((r) => html`<tr>${cols.map((c) => html`<td>${typeof r[c] === 'object' ? JSON.stringify(r[c]) : String(r[c] ?? '')}</td>`)}</tr>`)}</tbody>
        </table></div>`
      : null}
  </section>`
}
