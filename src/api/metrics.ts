/** Prometheus text metrics: requests by route and status, latency histogram, logins by outcome, projection lag (a position delta). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export function createMetrics() {
  /** route template → status → count; labels are built only when rendering. */
  const requests = new Map<string, Map<number, number>>()
  const logins = new Map<string, number>()
  const latency = new Map<string, { buckets: number[]; sum: number; count: number }>()

  const label = (value: string): string =>
    value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

  return {
    observe(route: string, status: number, seconds: number): void {
      let byStatus = requests.get(route)
      if (!byStatus) {
        byStatus = new Map()
        requests.set(route, byStatus)
      }
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
      let h = latency.get(route)
      if (!h) {
        h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }
        latency.set(route, h)
      }
      // Each observation counts in its own bucket; render() makes them cumulative.
      let i = 0
      while (i < BUCKETS.length && seconds > BUCKETS[i]) i++
      if (i < BUCKETS.length) h.buckets[i]++
      h.sum += seconds
      h.count++
    },

    login(outcome: string): void {
      logins.set(outcome, (logins.get(outcome) ?? 0) + 1)
    },

    /**
     * `projectionLag` is a difference of global positions (head of the store minus the read
     * models' position): the number of events not yet applied on the embedded store, whose
     * positions count events; log bytes on EventStoreDB. 0 means caught up either way.
     */
    render(gauges: { projectionLag: bigint; projectionPosition: bigint }): string {
      const lines: string[] = []
      lines.push('# HELP http_requests_total HTTP requests by route template and status.')
      lines.push('# TYPE http_requests_total counter')
      for (const [route, byStatus] of requests) {
        for (const [status, n] of byStatus) {
          lines.push(`http_requests_total{route="${label(route)}",status="${status}"} ${n}`)
        }
      }
      lines.push('# HELP http_request_duration_seconds Request latency by route template.')
      lines.push('# TYPE http_request_duration_seconds histogram')
      for (const [route, h] of latency) {
        const r = `route="${label(route)}"`
        let cumulative = 0
        for (const [i, b] of BUCKETS.entries()) {
          cumulative += h.buckets[i]
          lines.push(`http_request_duration_seconds_bucket{${r},le="${b}"} ${cumulative}`)
        }
        lines.push(`http_request_duration_seconds_bucket{${r},le="+Inf"} ${h.count}`)
        lines.push(`http_request_duration_seconds_sum{${r}} ${h.sum}`)
        lines.push(`http_request_duration_seconds_count{${r}} ${h.count}`)
      }
      lines.push('# HELP auth_logins_total Login attempts by outcome.')
      lines.push('# TYPE auth_logins_total counter')
      for (const [outcome, n] of logins) lines.push(`auth_logins_total{outcome="${label(outcome)}"} ${n}`)
      lines.push(
        '# HELP auth_projection_lag How far the read models trail the event store, as a position delta: global position of the last event minus the position applied (events on the embedded store, log bytes on EventStoreDB; 0 = caught up).',
      )
      lines.push('# TYPE auth_projection_lag gauge')
      lines.push(`auth_projection_lag ${gauges.projectionLag}`)
      lines.push(
        '# HELP auth_projection_lag_events Deprecated, use auth_projection_lag: the same position delta (the count of unapplied events on the embedded store only).',
      )
      lines.push('# TYPE auth_projection_lag_events gauge')
      lines.push(`auth_projection_lag_events ${gauges.projectionLag}`)
      lines.push('# HELP auth_projection_position Global position the read models have reached.')
      lines.push('# TYPE auth_projection_position gauge')
      lines.push(`auth_projection_position ${gauges.projectionPosition}`)
      return `${lines.join('\n')}\n`
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>
