import Foundation

/// One channel's health as its attempts report it: healthy, failing (every attempt since
/// `failingSince` failed), or paused (failing for `pauseAfter`: new work waits, one probe per
/// `probeEvery`). Pure: the dispatcher feeds it outcomes and asks it how many attempts may start.
public struct ChannelHealth: Sendable, Equatable {
    public enum State: String, Sendable { case healthy, failing, paused }

    /// What an outcome changed, for the operator notice.
    public enum Change: String, Sendable, Equatable { case paused, recovered }

    /// The first failed attempt since the last success.
    public private(set) var failingSince: Date?
    /// Failed attempts since the last success.
    public private(set) var failures = 0
    /// The last failure's reason (redacted by the caller).
    public private(set) var lastError: String?
    public private(set) var pausedAt: Date?
    /// When the last probe started (a paused channel's last claim).
    public private(set) var lastProbeAt: Date?

    public init() {}

    public var state: State {
        if pausedAt != nil { return .paused }
        return failingSince == nil ? .healthy : .failing
    }

    /// An attempt succeeded: the channel is healthy again.
    public mutating func succeeded() -> Change? {
        let wasPaused = pausedAt != nil
        self = ChannelHealth()
        return wasPaused ? .recovered : nil
    }

    /// An attempt failed (for any reason: every attempt failing is what a dead endpoint looks like).
    public mutating func failed(_ error: String, at now: Date, policy: HealthPolicy) -> Change? {
        if failingSince == nil { failingSince = now }
        failures += 1
        lastError = error
        guard pausedAt == nil, let pauseAfter = policy.pauseAfter, let since = failingSince,
              failures >= HealthPolicy.minimumFailures, now.timeIntervalSince(since) >= pauseAfter.seconds else { return nil }
        pausedAt = now
        lastProbeAt = now
        return .paused
    }

    /// How many attempts may start now (`want` when not paused), and when a paused channel may
    /// start its next probe.
    public func admits(_ want: Int, at now: Date, policy: HealthPolicy) -> (count: Int, nextProbe: Date?) {
        guard pausedAt != nil else { return (want, nil) }
        let due = (lastProbeAt ?? .distantPast).addingTimeInterval(policy.probeEvery.seconds)
        return now >= due ? (min(want, 1), nil) : (0, due)
    }

    /// A paused channel claimed its probe.
    public mutating func probed(at now: Date) {
        if pausedAt != nil { lastProbeAt = now }
    }

    /// The next probe may start at once (its settings were just reloaded).
    public mutating func probeNow() {
        if pausedAt != nil { lastProbeAt = nil }
    }
}
