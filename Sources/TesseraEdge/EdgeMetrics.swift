// The edge agent's metrics (SLI M9), as Prometheus text on `GET /metrics`: answers from the
// cache (fresh and stale), misses, local denials, invalidations from the change stream, audit
// events queued and delivered, and how stale the cache may be.
import Prometheus

final class EdgeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let hits: Counter
    let staleHits: Counter
    let misses: Counter
    let denied: Counter
    let invalidations: Counter
    let delivered: Counter
    let entries: Gauge
    let queued: Gauge
    let reachable: Gauge
    let streamLive: Gauge
    let staleness: Gauge
    let sealed: Gauge

    init() {
        hits = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tessera_edge_cache_hits_total", unitName: "", helpText: "Reads answered from the cache while it was current."))
        staleHits = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tessera_edge_cache_stale_hits_total", unitName: "", helpText: "Reads answered from the cache while the central server was unreachable."))
        misses = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tessera_edge_cache_misses_total", unitName: "", helpText: "Cacheable reads forwarded to the central server."))
        denied = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tessera_edge_denied_total", unitName: "", helpText: "Cached reads refused by the client's rules."))
        invalidations = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tessera_edge_invalidations_total", unitName: "", helpText: "Changes received from the change stream."))
        delivered = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tessera_edge_audit_delivered_total", unitName: "", helpText: "Audit events recorded by the central server."))
        entries = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tessera_edge_cache_entries", unitName: "", helpText: "Answers in the cache."))
        queued = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tessera_edge_audit_queued_events", unitName: "", helpText: "Audit events waiting for the central server."))
        reachable = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tessera_edge_central_reachable", unitName: "", helpText: "1 while the central server answers."))
        streamLive = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tessera_edge_change_stream_live", unitName: "", helpText: "1 while the change stream is live."))
        staleness = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tessera_edge_staleness_seconds", unitName: "", helpText: "Seconds since the cache was last known current (0 while the change stream is live)."))
        sealed = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tessera_edge_central_sealed", unitName: "",
                                                                     helpText: "1 while the central server says it is sealed (nothing is answered from the cache)."))
    }

    func render(entries: Int, queued: Int, reachable: Bool, streamLive: Bool, staleness: Double, sealed: Bool) -> String {
        self.sealed.set(to: sealed ? 1 : 0)
        self.entries.set(to: Double(entries))
        self.queued.set(to: Double(queued))
        self.reachable.set(to: reachable ? 1 : 0)
        self.streamLive.set(to: streamLive ? 1 : 0)
        self.staleness.set(to: staleness)
        var out: [UInt8] = []
        registry.emit(into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
