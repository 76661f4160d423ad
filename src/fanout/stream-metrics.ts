import { Counter, Gauge, type Registry } from 'prom-client'

/** Fan-out metrics (`hookrelay_stream_*`), registered on the relay's registry. */
export class StreamMetrics {
  readonly subscribers: Gauge
  readonly framesSent: Counter
  readonly bytesSent: Counter
  readonly slowConsumerCloses: Counter
  readonly consumerLag: Gauge<'consumer'>
  readonly bufferedBytes: Gauge

  constructor(
    registry: Registry,
    sources: {
      /** Each durable consumer and its lag (head − acked), read at scrape time. */
      lags: () => Promise<Iterable<[string, number]>>
      /** Bytes queued in uWS for all subscribers, read at scrape time. */
      buffered: () => number
    },
  ) {
    this.subscribers = new Gauge({
      name: 'hookrelay_stream_subscribers',
      help: 'WebSocket subscribers connected to /v1/stream.',
      registers: [registry],
    })
    this.framesSent = new Counter({
      name: 'hookrelay_stream_frames_sent_total',
      help: 'Event frames sent to subscribers.',
      registers: [registry],
    })
    this.bytesSent = new Counter({
      name: 'hookrelay_stream_bytes_sent_total',
      help: 'Bytes of event frames sent to subscribers.',
      registers: [registry],
    })
    this.slowConsumerCloses = new Counter({
      name: 'hookrelay_stream_slow_consumer_closes_total',
      help: 'Subscribers closed with 4008 because their buffered amount passed stream.hard_limit.',
      registers: [registry],
    })
    this.consumerLag = new Gauge({
      name: 'hookrelay_stream_consumer_lag',
      help: 'Per durable consumer (label: <subscriber>/<consumer>): journal head minus the consumer’s acked seq.',
      labelNames: ['consumer'] as const,
      registers: [registry],
      async collect() {
        const lags = await sources.lags()
        this.reset()
        for (const [consumer, lag] of lags) this.set({ consumer }, lag)
      },
    })
    this.bufferedBytes = new Gauge({
      name: 'hookrelay_stream_buffered_bytes',
      help: 'Bytes queued in the server for all subscribers (bounded by stream.high_water per subscriber plus one frame).',
      registers: [registry],
      collect() {
        this.set(sources.buffered())
      },
    })
  }
}
