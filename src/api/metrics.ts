/**
 * Prometheus metrics with prom-client: requests by route and status, a latency histogram, logins
 * by outcome and the projection lag (a position delta) for this service; the process's CPU,
 * memory, heap, GC, handles and event-loop lag (`nodejs_eventloop_lag_*`) from prom-client's
 * default metrics. The request path only increments a counter and a histogram; everything else
 * is read when /metrics is scraped.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/**
 * The process metrics, registered once per process however many services it runs (tests start
 * many): each registration would start its own event-loop delay monitor and GC observer.
 */
let processRegistry: Registry | undefined
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export function createMetrics() {
  const registry = new Registry()
  const registers = [registry]
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route template and status.',
    labelNames: ['route', 'status'] as const,
    registers,
  })
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Request latency by route template.',
    labelNames: ['route'] as const,
    buckets: BUCKETS,
    registers,
  })
  const logins = new Counter({
    name: 'auth_logins_total',
    help: 'Login attempts by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  })
  const lag = new Gauge({
    name: 'auth_projection_lag',
    help: 'How far the read models trail the event store, as a position delta: global position of the last event minus the position applied (events on the embedded store, log bytes on EventStoreDB; 0 = caught up).',
    registers,
  })
  const lagEvents = new Gauge({
    name: 'auth_projection_lag_events',
    help: 'Deprecated, use auth_projection_lag: the same position delta (the count of unapplied events on the embedded store only).',
    registers,
  })
  const position = new Gauge({
    name: 'auth_projection_position',
    help: 'Global position the read models have reached.',
    registers,
  })
  const all = Registry.merge([registry, processMetrics()])

  return {
    /** The Content-Type of `render`'s text. */
    contentType: registry.contentType,

    observe(route: string, status: number, seconds: number): void {
      requests.inc({ route, status })
      latency.observe({ route }, seconds)
    },

    login(outcome: string): void {
      logins.inc({ outcome })
    },

    /**
     * `projectionLag` is a difference of global positions (head of the store minus the read
     * models' position): the number of events not yet applied on the embedded store, whose
     * positions count events; log bytes on EventStoreDB. 0 means caught up either way.
     */
    async render(gauges: { projectionLag: bigint; projectionPosition: bigint }): Promise<string> {
      // Prometheus values are doubles; positions stay far below 2^53.
      lag.set(Number(gauges.projectionLag))
      lagEvents.set(Number(gauges.projectionLag))
      position.set(Number(gauges.projectionPosition))
      return all.metrics()
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>
