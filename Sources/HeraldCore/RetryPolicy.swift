/// Exponential backoff with full jitter, bounded by attempts and by age.
public struct RetryPolicy: Sendable, Equatable {
    public var initial: Duration
    public var max: Duration
    public var maxAttempts: Int
    public var maxAge: Duration

    public init(initial: Duration = .seconds(1), max: Duration = .seconds(300), maxAttempts: Int = 12, maxAge: Duration = .seconds(86_400)) {
        self.initial = initial
        self.max = max
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
    }

    public static let `default` = RetryPolicy()

    /// The wait before attempt `attempts + 1`, given `attempts` done so far (≥ 1).
    /// Full jitter: uniform in [0, min(max, initial·2^(attempts-1))]. A provider's `Retry-After`
    /// replaces the jittered value, capped at `max`.
    public func delay(afterAttempts attempts: Int, retryAfter: Duration? = nil, random: Double) -> Duration {
        if let retryAfter {
            return Swift.min(Swift.max(retryAfter, .zero), max)
        }
        let exponent = Swift.min(Swift.max(attempts - 1, 0), 40)
        let ceilingSeconds = Swift.min(initial.seconds * Double(1 << Swift.min(exponent, 62)), max.seconds)
        let r = random.isNaN ? 0 : Swift.min(Swift.max(random, 0), 1)
        return Duration(clampingSeconds: ceilingSeconds * r) ?? .zero
    }

    /// Whether another attempt is allowed after `attempts` tries of a delivery first queued
    /// `age` ago, if the next one would start after `wait`.
    public func allowsRetry(afterAttempts attempts: Int, age: Duration, wait: Duration) -> Bool {
        attempts < maxAttempts && age + wait <= maxAge
    }
}

extension Duration {
    /// The duration in (fractional) seconds.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// Parses `250ms`, `1s`, `5m`, `24h`, `2d`, and sums such as `1h30m`, to the millisecond.
    /// Nil when malformed, and when the total is longer than `Duration.longestAccepted` (100
    /// years, `36500d`): config and API values above that are refused, never overflowed.
    public init?(parsing text: String) {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return nil }
        var total: Double = 0
        var number = ""
        var unit = ""
        func flush() -> Bool {
            guard let n = Double(number), n >= 0 else { return false }
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86_400
            default: return false
            }
            total += n * scale
            number = ""
            unit = ""
            return true
        }
        for ch in s {
            if ch.isNumber || ch == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(ch)
            } else if ch.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(ch)
            } else {
                return nil
            }
        }
        guard flush() else { return nil }
        // Each part is finite, but a long run of digits is not (Double("9…9") is +inf), and the
        // sum is checked before it becomes an integer.
        guard total.isFinite, total <= Duration.longestAccepted.seconds else { return nil }
        self = .milliseconds(Int64((total * 1000).rounded()))
    }

    /// `1.5s`, `250ms`, `5m`, `2h` — the shortest form that reads well.
    public var formatted: String {
        // Whole milliseconds from the components, so that no duration can overflow here.
        let c = components
        let (whole, overflow) = c.seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow, whole < Int64.max - 1000, whole > Int64.min + 1000 else { return "\(c.seconds)s" }
        let ms = whole + Int64((Double(c.attoseconds) / 1e15).rounded())
        if ms < 1000 { return "\(ms)ms" }
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(Double(ms) / 1000)s"
    }
}

import Foundation
