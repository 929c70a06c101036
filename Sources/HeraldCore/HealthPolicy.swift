import Foundation

/// `health:` — when a channel whose every attempt fails is paused, how a paused channel is
/// probed, and which channels hear about it. The top-level block is every channel's default; a
/// channel's own `health:` overrides it key by key.
public struct HealthPolicy: Sendable, Equatable {
    /// `pause_after`, default 1h: a channel whose every attempt failed for this long (and at least
    /// `minimumFailures` times) is paused. nil (`off`): never paused.
    public var pauseAfter: Duration? = .seconds(3600)
    /// `probe_every`, default 5m: a paused channel sends one waiting delivery this often; the first
    /// that succeeds resumes it.
    public var probeEvery: Duration = .seconds(300)
    /// `notify`, default none: channels that get an operator notice when this channel pauses and
    /// when it recovers (the channel itself is never told).
    public var notify: [String] = []

    /// Failed attempts needed besides the time: one failure an hour after a quiet spell is not a
    /// dead endpoint yet.
    public static let minimumFailures = 3

    public init() {}
}
