/** The console's entry: sign-in, then the shell with its menu, the stream and the view for the URL hash. */
import type { ComponentChildren } from 'preact'
import { render } from 'preact'
import { useEffect, useMemo, useState } from 'preact/hooks'
import 'uplot/dist/uPlot.min.css'
import './style.css'
import { api, ApiError, type Session } from './api.js'
import { TailBook, type Route } from './logic.js'
import { useRoute } from './routes.js'
import { TailStream, type StreamStatus } from './stream.js'
import { html } from './ui.js'
import { Consumers } from './views/consumers.js'
import { Destinations } from './views/destinations.js'
import { Inspector } from './views/inspector.js'
import { Runs } from './views/runs.js'
import { SignIn } from './views/sign-in.js'
import { StatsView } from './views/stats.js'
import { Tail } from './views/tail.js'

const TOKEN_KEY = 'hookrelay.console.token'

function statusText(s: StreamStatus): string {
  switch (s.kind) {
    case 'connecting':
      return 'Connecting…'
    case 'live':
      return 'Live'
    case 'down':
      return `Disconnected (${s.reason}); trying again within ${Math.ceil(s.retryInMs / 1000)} s`
    case 'denied':
      return `Stream refused: ${s.reason}`
  }
}

function Shell({ token, session, onSignOut }: { token: string; session: Session; onSignOut: (notice: string) => void }) {
  const route = useRoute()
  const [version, setVersion] = useState(0)
  const [destinations, setDestinations] = useState(false)
  const book = useMemo(() => new TailBook(), [])
  const stream = useMemo(() => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    return new TailStream(`${proto}//${location.host}/v1/stream`, token, book, () => setVersion((v) => v + 1))
  }, [token])
  useEffect(() => {
    stream.start()
    // The destinations view exists only on relays that serve its API.
    api(token, '/v1/destinations').then(
      () => setDestinations(true),
      () => setDestinations(false),
    )
    return () => stream.stop()
  }, [stream])
  useEffect(() => {
    if (stream.status.kind === 'denied') onSignOut(`Signed out: ${stream.status.reason}.`)
  }, [version])
  const nav: Array<[Route['view'], string, string]> = [
    ['tail', '#/tail', 'Tail'],
    ['runs', '#/runs', 'Runs'],
    ['consumers', '#/consumers', 'Consumers'],
    ['stats', '#/stats', 'Stats'],
  ]
  if (destinations) nav.push(['destinations', '#/destinations', 'Destinations'])
  const current = route.view === 'event' ? 'tail' : route.view
  let body: ComponentChildren
  switch (route.view) {
    case 'tail':
      body = html`<${Tail} book=${book} session=${session} version=${version} />`
      break
    case 'event':
      body = html`<${Inspector} key=${route.seq} token=${token} seq=${route.seq} />`
      break
    case 'runs':
      body = html`<${Runs} token=${token} session=${session} source=${route.source} id=${route.id} />`
      break
    case 'consumers':
      body = html`<${Consumers} token=${token} session=${session} />`
      break
    case 'stats':
      body = html`<${StatsView} token=${token} />`
      break
    case 'destinations':
      body = destinations ? html`<${Destinations} token=${token} session=${session} name=${route.name} />` : html`<p>This relay has no destinations.</p>`
      break
  }
  const s = stream.status
  return html`<a class="skip" href="#main">Skip to content</a>
    <header>
      <h1>hookrelay</h1>
      <p class=${`conn conn-${s.kind}`} role="status" aria-live="polite">${statusText(s)}</p>
      <p class="who">${session.subscriber} (${session.role})</p>
      <button type="button" onClick=${() => onSignOut('')}>Sign out</button>
    </header>
    <nav aria-label="Views">
      <ul>${nav.map(([v, href, label]) => html`<li><a href=${href} aria-current=${current === v ? 'page' : undefined}>${label}</a></li>`)}</ul>
    </nav>
    <main id="main" tabindex="-1">${body}</main>`
}

function App() {
  const [auth, setAuth] = useState<{ token: string; session: Session } | null>(null)
  const [notice, setNotice] = useState('')
  const [checking, setChecking] = useState(() => sessionStorage.getItem(TOKEN_KEY) !== null)
  useEffect(() => {
    const token = sessionStorage.getItem(TOKEN_KEY)
    if (token === null) return
    api<Session>(token, '/v1/console/session').then(
      (session) => {
        setAuth({ token, session })
        setChecking(false)
      },
      (err: Error) => {
        if (err instanceof ApiError && err.status === 401) sessionStorage.removeItem(TOKEN_KEY)
        setNotice(err instanceof ApiError && err.status === 401 ? 'The saved token is no longer accepted; sign in again.' : `Cannot reach the relay: ${err.message}.`)
        setChecking(false)
      },
    )
  }, [])
  if (checking) return html`<p aria-busy="true">Signing in…</p>`
  if (!auth)
    return html`<${SignIn}
      notice=${notice}
      onSession=${(token: string, session: Session) => {
        sessionStorage.setItem(TOKEN_KEY, token)
        setAuth({ token, session })
      }}
    />`
  return html`<${Shell}
    token=${auth.token}
    session=${auth.session}
    onSignOut=${(n: string) => {
      sessionStorage.removeItem(TOKEN_KEY)
      setNotice(n)
      setAuth(null)
    }}
  />`
}

render(html`<${App} />`, document.getElementById('app')!)
