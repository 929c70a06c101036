import CoreMetrics
import Foundation
import HeraldCore
import HeraldStore
import Prometheus

/// Prometheus exposition (`GET /metrics`, text format 0.0.4, checked by `promtool check metrics`
/// in CI): the swift-metrics counters and histograms Herald keeps as it works, each family with its
/// `# HELP`; the queue depth of waiting work (read from indexes that hold only waiting rows, so a
/// scrape costs the same after years of history); `herald_build_info`; and the standard
/// `process_*` metrics.
public enum HeraldMetrics {
    /// Bootstrapped once per process (swift-metrics allows one bootstrap).
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(HelpfulMetricsFactory(registry: registry))
        return registry
    }()

    public static func bootstrap() {
        _ = registry
    }

    /// The `# HELP` of every family Herald makes, by name. A metric made without an entry here
    /// still gets a HELP line (its name in words), so the exposition stays valid; add one.
    public static let help: [String: String] = [
        "herald_events_received_total": "Events committed by ingest, by event status.",
        "herald_events_rejected_total": "Events refused, by reason: invalid input, or refused by the store.",
        "herald_deliveries_total":
            "Delivery attempt outcomes per channel: delivered, retry (tried again later) or failed (for good).",
        "herald_attempt_duration_seconds": "Duration of delivery attempts per channel, from request to the provider's answer.",
        "herald_allclear_delay_seconds":
            "Per channel, from the receipt of a resolve to the delivery of its all-clear (the all-clear's whole wait).",
        "herald_queue_depth":
            "Deliveries waiting to be sent (queued, retrying), being sent (in_flight) or held by a silence (silenced) in the whole store, by state.",
        "herald_auth_failures_total":
            "Failed authentications: denied (no or a wrong token) and throttled (too many failures from one address).",
        "herald_pruned_rows_total": "Rows removed by retention, by table.",
        "herald_channel_paused":
            "1 while a channel is paused because every attempt failed for its health.pause_after (one probe per probe_every), else 0.",
        "herald_build_info": "Always 1; the version label names the running Herald.",
    ]

    static func help(for name: String) -> String {
        help[name] ?? name.replacingOccurrences(of: "_", with: " ")
    }

    /// Bucket bounds per histogram; others use `defaultDurationBuckets`.
    static let durationBuckets: [String: [Duration]] = [
        // An all-clear waits for its channel's queue and retries: seconds to an hour.
        "herald_allclear_delay_seconds": [
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1800), .seconds(3600),
        ],
    ]
    static let defaultDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// The waiting states: the only ones whose count a scrape reads. Outcomes are counters
    /// (`herald_deliveries_total`), so a scrape never counts the history.
    static let waitingStates: [DeliveryState] = [.queued, .retrying, .inFlight, .silenced]

    static let queueDepth: [DeliveryState: Prometheus.Gauge] = Dictionary(uniqueKeysWithValues: waitingStates.map {
        ($0, registry.makeGauge(name: "herald_queue_depth", labels: [("state", $0.rawValue)], help: help(for: "herald_queue_depth")))
    })

    static func render(store: any Store) async -> [UInt8] {
        if let counts = try? await store.waitingCounts() {
            for (state, gauge) in queueDepth { gauge.set(Double(counts[state] ?? 0)) }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        buffer.append(contentsOf: buildInfo.utf8)
        ProcessMetrics.render(into: &buffer)
        return buffer
    }

    static let buildInfo = """
        # HELP herald_build_info \(help(for: "herald_build_info"))
        # TYPE herald_build_info gauge
        herald_build_info{version="\(HeraldVersion.current)"} 1

        """
}

/// swift-metrics on the Prometheus registry, with each family's help text (the registry's own
/// factory makes every family without one, which `promtool check metrics` rejects).
struct HelpfulMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: HeraldMetrics.help(for: label))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: HeraldMetrics.help(for: label))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(name: label, labels: dimensions, help: HeraldMetrics.help(for: label)) }
        return registry.makeValueHistogram(name: label, labels: dimensions,
                                           buckets: [0.01, 0.1, 1, 10, 100, 1000, 10_000], help: HeraldMetrics.help(for: label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(name: label, labels: dimensions, help: HeraldMetrics.help(for: label))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(name: label, labels: dimensions,
                                       buckets: HeraldMetrics.durationBuckets[label] ?? HeraldMetrics.defaultDurationBuckets,
                                       help: HeraldMetrics.help(for: label))
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
