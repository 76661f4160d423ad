import { useEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError, type Session } from '../api.js'
import { html } from '../ui.js'

export function SignIn({ onSession, notice }: { onSession: (token: string, s: Session) => void; notice: string }) {
  const [error, setError] = useState(notice)
  const [busy, setBusy] = useState(false)
  const input = useRef<HTMLInputElement>(null)
  useEffect(() => input.current?.focus(), [])
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    const token = input.current?.value.trim() ?? ''
    if (token === '') {
      setError('Paste a subscriber token first.')
      return
    }
    setBusy(true)
    try {
      onSession(token, await api<Session>(token, '/v1/console/session'))
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'This token is not accepted by the relay. Use a token from subscribers[].token in the config (or the generated one in data_dir/generated-secrets.json).'
          : `Cannot sign in: ${(err as Error).message}.`,
      )
      input.current?.select()
    } finally {
      setBusy(false)
    }
  }
  return html`<main id="main" class="signin">
    <h1>hookrelay console</h1>
    <form onSubmit=${submit} aria-describedby="signin-help">
      <label for="token">Subscriber token</label>
      <input ref=${input} id="token" name="token" type="password" autocomplete="off" spellcheck=${false} aria-invalid=${error !== ''} aria-errormessage="signin-error" />
      <button type="submit" disabled=${busy}>Sign in</button>
      <p id="signin-help" class="help">The token stays in this browser tab only (session storage) and shows what that subscriber may read.</p>
      <p id="signin-error" class="error" role="alert">${error}</p>
    </form>
  </main>`
}
