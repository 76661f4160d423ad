/** What every view shares: the template tag, loading state, and the "could not load" line. */
import { h } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import htm from 'htm'
import { ApiError } from './api.js'

export const html = htm.bind(h)
export const enc = encodeURIComponent

/** Runs `load` when `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: ApiError | Error; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: ApiError | Error }>({})
  const [n, setN] = useState(0)
  useEffect(() => {
    let live = true
    setState({})
    load().then(
      (data) => live && setState({ data }),
      (error: Error) => live && setState({ error }),
    )
    return () => {
      live = false
    }
  }, [...deps, n])
  return { ...state, reload: () => setN(n + 1) }
}

export function Failed({ error, what }: { error: Error; what: string }) {
  const msg = error instanceof ApiError && error.status === 404 ? `No ${what} that this token may read.` : `Could not load ${what}: ${error.message}.`
  return html`<p class="error" role="alert">${msg}</p>`
}
