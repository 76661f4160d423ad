import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import { api } from '../api.js'
import { bytes, statsDelta } from '../logic.js'
import { html } from '../ui.js'

interface Stats {
  at: number
  head: number
  journal_bytes: number
  ingested: number
  ack_count: number
  ack_sum_seconds: number
}

/** Samples kept: three minutes at one every 2 s. */
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

export function StatsView({ token }: { token: string }) {
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
