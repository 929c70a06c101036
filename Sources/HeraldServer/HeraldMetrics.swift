import CoreMetrics
import Foundation
import HeraldCore
import HeraldStore
import Prometheus

/// Prometheus exposition of swift-metrics: events received, deliveries by channel and outcome,
/// the attempt duration histogram, and the queue depth by state (read from the store at scrape).
public enum HeraldMetrics {
    /// Bootstrapped once per process (swift-metrics allows one bootstrap).
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    public static func bootstrap() {
        _ = registry
    }

    static let queueDepth: [DeliveryState: Prometheus.Gauge] = Dictionary(uniqueKeysWithValues: DeliveryState.allCases.map {
        ($0, registry.makeGauge(name: "herald_queue_depth", labels: [("state", $0.rawValue)]))
    })

    static func render(store: any Store) async -> [UInt8] {
        if let counts = try? await store.countsByState() {
            for (state, n) in counts { queueDepth[state]?.set(Double(n)) }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
