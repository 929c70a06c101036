import Foundation

/// Durations that come from outside — a provider's `Retry-After`, `retry_after` or rate-limit
/// reset, an API parameter, a config value — are read into a bounded range here, so that no
/// value a peer or a user sends can overflow a conversion and stop the process.
extension Duration {
    /// The longest duration Herald takes from outside: 100 years of 365 days (`36500d`,
    /// 3,153,600,000 s). Longer config or API values are refused; a provider's longer wait is
    /// clamped to it (and then to the channel's `retry.max`). In milliseconds it is far inside
    /// `Int64`, and a date this far from now is an ordinary `Date`.
    public static let longestAccepted: Duration = .seconds(3_153_600_000)

    /// A wait given in seconds by a provider: nil when it is not a number a wait can be (NaN,
    /// ±infinity, negative), so the answer is treated as if it carried no wait; a finite wait
    /// longer than `cap` (at most `longestAccepted`) is `cap`. Millisecond resolution. Never traps.
    public init?(clampingSeconds seconds: Double, cap: Duration = .longestAccepted) {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        let cap = Swift.max(.zero, Swift.min(cap, .longestAccepted))
        if seconds >= cap.seconds {
            self = cap
            return
        }
        // Below the cap, so at most 3.2e12 ms: the conversion cannot overflow.
        self = .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// From `now` until a provider's reset time given as Unix epoch seconds (`x-rate-limit-reset`,
    /// `RateLimit-Reset`): zero when it has passed; nil when the value is not a time (NaN,
    /// ±infinity, negative); clamped like `init(clampingSeconds:cap:)`.
    public init?(untilEpochSeconds reset: Double, now: Date, cap: Duration = .longestAccepted) {
        guard reset.isFinite, reset >= 0 else { return nil }
        self.init(clampingSeconds: Swift.max(0, reset - now.timeIntervalSince1970), cap: cap)
    }

    /// From `now` until a provider's reset date (an HTTP date, an RFC 3339 time): zero when it has
    /// passed, clamped like `init(clampingSeconds:cap:)`; nil only for a date that is not finite.
    public init?(until date: Date, now: Date, cap: Duration = .longestAccepted) {
        let interval = date.timeIntervalSince(now)
        guard interval.isFinite else { return nil }
        self.init(clampingSeconds: Swift.max(0, interval), cap: cap)
    }
}
