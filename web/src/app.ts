import { h, render, type ComponentChildren } from 'preact'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import htm from 'htm'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import './style.css'
import { api, ApiError, type Session } from './api.js'
import { bytes, lineDiff, matcher, NO_FILTER, pretty, sideBySide, statsDelta, TailBook, type TailEvent, type TailFilter } from './logic.js'
import { TailStream, type StreamStatus } from './stream.js'

const html = htm.bind(h)
const TOKEN_KEY = 'hookrelay.console.token'

// ---------------------------------------------------------------- routing

type Route =
  | { view: 'tail' }
  | { view: 'event'; seq: number }
  | { view: 'runs'; source?: string; id?: string }
  | { view: 'consumers' }
  | { view: 'stats' }
  | { view: 'destinations' }

function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent)
  switch (parts[0]) {
    case 'event':
      return /^\d+$/.test(parts[1] ?? '') ? { view: 'event', seq: Number(parts[1]) } : { view: 'tail' }
    case 'runs':
      return parts.length >= 3 ? { view: 'runs', source: parts[1], id: parts.slice(2).join('/') } : { view: 'runs' }
    case 'consumers':
    case 'stats':
    case 'destinations':
      return { view: parts[0] }
    default:
      return { view: 'tail' }
  }
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}

const enc = encodeURIComponent

// ---------------------------------------------------------------- sign-in

function SignIn({ onSession, notice }: { onSession: (token: string, s: Session) => void; notice: string }) {
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

// ---------------------------------------------------------------- tail

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

function time(iso: string): string {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString(undefined, { hour12: false })
}

function Tail({ book, session, version }: { book: TailBook; session: Session; version: number }) {
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

// ---------------------------------------------------------------- inspector

interface OneEvent {
  seq: number
  source: string
  event: string
  key: string
  revision: number
  received_at: string
  headers: Record<string, string>
  revisions: Array<{ revision: number; seq: number }>
  body: string
}

function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: ApiError | Error; reload: () => void } {
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

function Failed({ error, what }: { error: Error; what: string }) {
  const msg = error instanceof ApiError && error.status === 404 ? `No ${what} that this token may read.` : `Could not load ${what}: ${error.message}.`
  return html`<p class="error" role="alert">${msg}</p>`
}

function Inspector({ token, seq }: { token: string; seq: number }) {
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

// ---------------------------------------------------------------- runs

interface Run {
  source: string
  id: string
  event: string
  status: string | null
  seq: number
  revision: number
  received_at: string
  mirror: { state: string; objects: Array<{ index: number; url: string; state: string; bucket?: string; key?: string; size?: number; reason?: string }> }
}

function Runs({ token, session, source, id }: { token: string; session: Session; source?: string; id?: string }) {
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
                <td>${o.reason ?? ''}</td>
              </tr>`,
            )}
          </tbody>
        </table></div>`}
  </div>`
}

// ---------------------------------------------------------------- consumers

interface Consumer {
  name: string
  subscriber: string | null
  consumer: string
  acked: number | null
  lag: number
  connected: boolean
}

function Consumers({ token, session }: { token: string; session: Session }) {
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

// ---------------------------------------------------------------- stats

interface Stats {
  at: number
  head: number
  journal_bytes: number
  ingested: number
  ack_count: number
  ack_sum_seconds: number
}

const KEEP = 90

function Chart({ label, unit, xs, ys }: { label: string; unit: string; xs: number[]; ys: Array<number | null> }) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  useEffect(() => {
    const el = box.current!
    plot.current = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 140,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{ stroke: '#333' }, { stroke: '#333', size: 56 }],
        series: [{}, { label, stroke: '#0b5cad', width: 2, fill: 'rgba(11,92,173,0.12)', spanGaps: true }],
      },
      [xs, ys],
      el,
    )
    const resize = (): void => plot.current?.setSize({ width: Math.max(240, el.clientWidth), height: 140 })
    addEventListener('resize', resize)
    return () => {
      removeEventListener('resize', resize)
      plot.current?.destroy()
    }
  }, [])
  useEffect(() => plot.current?.setData([xs, ys]), [xs, ys])
  // The latest point with a value: an interval without callbacks has no latency.
  const last = [...ys].reverse().find((y) => y !== null)
  return html`<figure class="chart">
    <figcaption>${label}: <strong>${last === null || last === undefined ? '—' : `${last.toFixed(unit === '/s' ? 1 : 2)} ${unit}`}</strong></figcaption>
    <div ref=${box} role="img" aria-label=${`${label} over the last ${xs.length} samples`}></div>
  </figure>`
}

function StatsView({ token }: { token: string }) {
  const [samples, setSamples] = useState<Stats[]>([])
  const [error, setError] = useState('')
  useEffect(() => {
    let live = true
    const tick = (): void => {
      api<Stats>(token, '/v1/console/stats').then(
        (s) => {
          if (!live) return
          setError('')
          setSamples((old) => [...old, s].slice(-KEEP))
        },
        (err: Error) => live && setError(err.message),
      )
    }
    tick()
    const t = setInterval(tick, 2000)
    return () => {
      live = false
      clearInterval(t)
    }
  }, [])
  const series = useMemo(() => {
    const xs: number[] = []
    const rate: Array<number | null> = []
    const ack: Array<number | null> = []
    const size: Array<number | null> = []
    for (let i = 1; i < samples.length; i++) {
      const d = statsDelta(samples[i - 1]!, samples[i]!)
      xs.push(samples[i]!.at / 1000)
      rate.push(d.rate)
      ack.push(d.ackMs)
      size.push(samples[i]!.journal_bytes)
    }
    // One unit for the whole chart, chosen by its largest value.
    const mib = Math.max(0, ...size.map((v) => v ?? 0)) >= 1024 * 1024
    return { xs, rate, ack, size: size.map((v) => (v ?? 0) / (mib ? 1024 * 1024 : 1024)), sizeUnit: mib ? 'MiB' : 'KiB' }
  }, [samples])
  const now = samples[samples.length - 1]
  return html`<section aria-labelledby="stats-h">
    <h2 id="stats-h">Relay</h2>
    <p>Head #${now?.head ?? '…'}, journal ${now ? bytes(now.journal_bytes) : '…'}, ${now?.ingested ?? '…'} callbacks accepted since start (sources this token reads).</p>
    ${error ? html`<p class="error" role="alert">Stats unavailable: ${error}</p>` : null}
    <div class="charts">
      <${Chart} label="Ingest rate" unit="/s" xs=${series.xs} ys=${series.rate} />
      <${Chart} label="Mean ack latency" unit="ms" xs=${series.xs} ys=${series.ack} />
      <${Chart} label="Journal size" unit=${series.sizeUnit} xs=${series.xs} ys=${series.size} />
    </div>
  </section>`
}

// ---------------------------------------------------------------- destinations (appears with GET /v1/destinations)

function Destinations({ token }: { token: string }) {
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

// ---------------------------------------------------------------- shell

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
      body = destinations ? html`<${Destinations} token=${token} />` : html`<p>This relay has no destinations.</p>`
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
