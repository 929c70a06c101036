import Foundation

/// The delivery state machine as a pure value: the dispatcher feeds it what happened and does what
/// it returns. No I/O and no clock of its own, so every path is testable with an injected time.
///
/// ```
/// queued ──claim──► in_flight ──delivered──► delivered
///    ▲                 │  └──transient, retries left──► retrying ──claim──► in_flight
///    │                 └──permanent / exhausted──► failed ──replay──► queued
///    └──lease expired / drained / released (in_flight → queued or retrying, attempt not counted)
/// queued | retrying ──superseded by an all-clear──► superseded
/// ```
public struct DeliveryLifecycle: Sendable, Equatable {
    public private(set) var state: DeliveryState
    /// Attempts in this replay generation (the retry budget resets on replay).
    public private(set) var attempts: Int
    /// When this generation started (the delivery's creation, or the replay): `max_age` counts from here.
    public private(set) var since: Date

    public init(state: DeliveryState, attempts: Int, since: Date) {
        self.state = state
        self.attempts = attempts
        self.since = since
    }

    /// What the dispatcher must record after an attempt.
    public enum Action: Sendable, Equatable {
        case markDelivered(reference: String?)
        case scheduleRetry(at: Date)
        case markFailed(reason: String)
        /// The event does not apply in this state (a late answer for a delivery that was released).
        case ignore
    }

    /// A dispatcher took the delivery. Valid from `queued` and `retrying`.
    public mutating func claim() -> Bool {
        guard state == .queued || state == .retrying else { return false }
        state = .inFlight
        return true
    }

    /// The attempt succeeded. Valid from `in_flight`.
    public mutating func succeeded(reference: String?) -> Action {
        guard state == .inFlight else { return .ignore }
        attempts += 1
        state = .delivered
        return .markDelivered(reference: reference)
    }

    /// The attempt failed. Valid from `in_flight`. `random` in [0, 1] drives the jitter.
    public mutating func failed(_ error: DeliveryError, now: Date, policy: RetryPolicy, random: Double) -> Action {
        guard state == .inFlight else { return .ignore }
        attempts += 1
        guard error.isTransient else {
            state = .failed
            return .markFailed(reason: error.description)
        }
        let wait = policy.delay(afterAttempts: attempts, retryAfter: error.retryAfter, random: random)
        let age = Duration.milliseconds(Int64(max(0, now.timeIntervalSince(since)) * 1000))
        guard policy.allowsRetry(afterAttempts: attempts, age: age, wait: wait) else {
            state = .failed
            let why = attempts >= policy.maxAttempts
                ? "gave up after \(attempts) attempts"
                : "gave up: older than max_age \(policy.maxAge.formatted)"
            return .markFailed(reason: "\(why); last error: \(error.description)")
        }
        state = .retrying
        return .scheduleRetry(at: now.addingTimeInterval(wait.seconds))
    }

    /// The claim ended without an outcome (shutdown drain, lease expiry): back to waiting.
    public mutating func release() {
        guard state == .inFlight else { return }
        state = attempts == 0 ? .queued : .retrying
    }

    /// An operator re-queues a failed delivery: a fresh retry budget, old attempts kept.
    public mutating func replay(now: Date) -> Bool {
        guard state == .failed else { return false }
        state = .queued
        attempts = 0
        since = now
        return true
    }

    /// An all-clear overtook a notice that was still waiting.
    public mutating func supersede() -> Bool {
        guard state == .queued || state == .retrying else { return false }
        state = .superseded
        return true
    }
}
