import Foundation

/// A channel's attempts over the last hour, in one-minute buckets: how many were delivered,
/// retried and failed, and their durations in a log-scale histogram (so a percentile costs a
/// walk of 48 counters, not a sort). What the console's channel page shows; memory is fixed
/// whatever the traffic.
public struct AttemptWindow: Sendable {
    public enum Outcome: Sendable { case delivered, retried, failed }

    public struct Summary: Sendable, Equatable {
        public var delivered = 0
        public var retried = 0
        public var failed = 0
        /// Upper bounds of the histogram buckets holding the median and the 99th percentile.
        public var p50Ms: Double?
        public var p99Ms: Double?
        /// The last failed or retried attempt's error (already redacted), and when.
        public var lastError: String?
        public var lastErrorAt: Date?
        public var attempts: Int { delivered + retried + failed }
        public init(lastError: String? = nil, lastErrorAt: Date? = nil) {
            self.lastError = lastError
            self.lastErrorAt = lastErrorAt
        }
    }

    /// Bucket upper bounds in milliseconds: 0.5 ms × 1.35ⁿ, up to about 11 minutes.
    static let bounds: [Double] = (0..<48).map { 0.5 * pow(1.35, Double($0)) }
    static let minutes = 60

    private struct Minute: Sendable {
        var index = Int.min
        var delivered = 0
        var retried = 0
        var failed = 0
        var histogram = [UInt32](repeating: 0, count: AttemptWindow.bounds.count + 1)
    }
    private var ring = [Minute](repeating: Minute(), count: AttemptWindow.minutes)
    private var lastError: (text: String, at: Date)?

    public init() {}

    public mutating func record(_ outcome: Outcome, durationMs: Double, error: String? = nil, at time: Date) {
        if outcome != .delivered, let error { lastError = (String(error.prefix(500)), time) }
        let index = Int((time.timeIntervalSince1970 / 60).rounded(.down))
        let slot = ((index % Self.minutes) + Self.minutes) % Self.minutes
        if ring[slot].index != index { ring[slot] = Minute(index: index) }
        switch outcome {
        case .delivered: ring[slot].delivered += 1
        case .retried: ring[slot].retried += 1
        case .failed: ring[slot].failed += 1
        }
        let bucket = Self.bounds.firstIndex { durationMs <= $0 } ?? Self.bounds.count
        ring[slot].histogram[bucket] &+= 1
    }

    /// The attempts of the last 60 minutes up to `now`.
    public func summary(at now: Date) -> Summary {
        let current = Int((now.timeIntervalSince1970 / 60).rounded(.down))
        var s = Summary(lastError: lastError?.text, lastErrorAt: lastError?.at)
        var histogram = [Int](repeating: 0, count: Self.bounds.count + 1)
        for minute in ring where minute.index > current - Self.minutes && minute.index <= current {
            s.delivered += minute.delivered
            s.retried += minute.retried
            s.failed += minute.failed
            for (i, n) in minute.histogram.enumerated() { histogram[i] += Int(n) }
        }
        let total = histogram.reduce(0, +)
        guard total > 0 else { return s }
        func percentile(_ q: Double) -> Double {
            let rank = max(1, Int((q * Double(total)).rounded(.up)))
            var seen = 0
            for (i, n) in histogram.enumerated() {
                seen += n
                if seen >= rank { return i < Self.bounds.count ? Self.bounds[i] : .infinity }
            }
            return .infinity
        }
        s.p50Ms = percentile(0.5)
        s.p99Ms = percentile(0.99)
        return s
    }
}
