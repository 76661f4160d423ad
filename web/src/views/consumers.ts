import { useEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError, type Session } from '../api.js'
import { enc, Failed, html, useLoad } from '../ui.js'

interface Consumer {
  name: string
  subscriber: string | null
  consumer: string
  acked: number | null
  lag: number
  connected: boolean
}

export function Consumers({ token, session }: { token: string; session: Session }) {
  const { data, error, reload } = useLoad(() => api<{ head: number; consumers: Consumer[] }>(token, '/v1/consumers'), [])
  const [confirm, setConfirm] = useState<string | null>(null)
  const [message, setMessage] = useState('')
  // The Delete button gives way to Confirm: keyboard focus moves with it.
  const confirmButton = useRef<HTMLButtonElement>(null)
  useEffect(() => confirmButton.current?.focus(), [confirm])
  const operator = session.role === 'operator'
  const remove = async (name: string): Promise<void> => {
    setConfirm(null)
    try {
      await api(token, `/v1/consumers/${name.split('/').map(enc).join('/')}`, { method: 'DELETE' })
      setMessage(`Deleted consumer ${name}.`)
    } catch (err) {
      setMessage(err instanceof ApiError && err.status === 409 ? `${name} is connected right now: stop it first, then delete it.` : `Could not delete ${name}: ${(err as Error).message}.`)
    }
    reload()
  }
  return html`<section aria-labelledby="cons-h">
    <h2 id="cons-h">Durable consumers</h2>
    <p>${operator ? 'Every subscriber’s consumers (operator token).' : `Consumers of subscriber ${session.subscriber}.`}
      ${' '}<button type="button" onClick=${reload}>Refresh</button></p>
    <p class="notice" role="status">${message}</p>
    ${error ? html`<${Failed} error=${error} what="consumers" />` : null}
    ${data && data.consumers.length === 0 ? html`<p class="empty">No durable consumers.</p>` : null}
    ${data && data.consumers.length > 0
      ? html`<div class="scroll"><table class="consumers">
          <caption class="sr-only">Durable consumers, journal head ${data.head}</caption>
          <thead><tr><th scope="col">Consumer</th><th scope="col">Acked seq</th><th scope="col">Lag</th><th scope="col">Connected</th>${operator ? html`<th scope="col"><span class="sr-only">Actions</span></th>` : null}</tr></thead>
          <tbody>
            ${data.consumers.map(
              (c) => html`<tr data-consumer=${c.name}>
                <th scope="row">${c.name}</th><td>${c.acked ?? '—'}</td><td>${c.lag}</td><td>${c.connected ? 'yes' : 'no'}</td>
                ${operator
                  ? html`<td>${confirm === c.name
                      ? html`<button type="button" class="danger" ref=${confirmButton} onClick=${() => void remove(c.name)}>Confirm delete</button> <button type="button" onClick=${() => setConfirm(null)}>Cancel</button>`
                      : html`<button type="button" onClick=${() => setConfirm(c.name)} aria-label=${`Delete consumer ${c.name}`}>Delete</button>`}</td>`
                  : null}
              </tr>`,
            )}
          </tbody>
        </table></div>`
      : null}
  </section>`
}
