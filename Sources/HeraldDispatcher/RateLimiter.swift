import Foundation

/// A token bucket: `rate` starts per second, bursts up to `max(1, rate)`.
struct RateLimiter: Sendable {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: Date

    init(rate: Double, now: Date) {
        self.rate = rate
        self.burst = Self.burst(for: rate)
        self.tokens = burst
        self.last = now
    }

    /// Starts allowed at once after a quiet spell: one second's worth, and at least one. The
    /// bucket a shared store keeps for several nodes uses the same rule.
    static func burst(for rate: Double) -> Double {
        max(1, rate)
    }

    private mutating func refill(_ now: Date) {
        let elapsed = max(0, now.timeIntervalSince(last))
        tokens = min(burst, tokens + elapsed * rate)
        last = now
    }

    /// Whole starts allowed now. Counted up to `Int32.max`: config caps the rate far below that,
    /// and no token count may trap here whatever rate a caller passes.
    mutating func available(_ now: Date) -> Int {
        refill(now)
        guard tokens >= 1 else { return 0 }
        return Int(min(tokens, Double(Int32.max)).rounded(.down))
    }

    mutating func take(_ n: Int, _ now: Date) {
        refill(now)
        tokens -= Double(n)
    }

    /// When the next start is allowed.
    func nextStart(_ now: Date) -> Date {
        tokens >= 1 ? now : now.addingTimeInterval((1 - tokens) / rate)
    }
}
