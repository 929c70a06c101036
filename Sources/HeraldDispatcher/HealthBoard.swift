import Foundation
import HeraldCore
import Metrics
import Synchronization

/// A channel paused or recovered.
public struct HealthChange: Sendable {
    public var channel: String
    public var change: ChannelHealth.Change
    /// The channel's health just before a recovery, or as it paused.
    public var health: ChannelHealth
    public var policy: HealthPolicy
    public var at: Date
}

/// Every channel's health in this process, fed by its lane's attempts. A channel rebuilt by a
/// reload keeps its record (its endpoint may still be down). Not shared between nodes: each node
/// pauses and probes on what its own attempts see, and their operator notices are one incident.
public final class HealthBoard: Sendable {
    private let states = Mutex<[String: ChannelHealth]>([:])
    private let gauges = Mutex<[String: Gauge]>([:])
    private let handler = Mutex<(@Sendable (HealthChange) -> Void)?>(nil)
    private let windows = Mutex<[String: AttemptWindow]>([:])

    public init() {}

    /// Called (outside any lock) when a channel pauses or recovers.
    public func onChange(_ body: @escaping @Sendable (HealthChange) -> Void) {
        handler.withLock { $0 = body }
    }

    /// Every channel's health by name.
    public func snapshot() -> [String: ChannelHealth] {
        states.withLock { $0 }
    }

    /// Each channel's attempts over the last hour on this node.
    public func lastHour(at now: Date = Date()) -> [String: AttemptWindow.Summary] {
        windows.withLock { $0 }.mapValues { $0.summary(at: now) }
    }

    func tally(_ channel: String, _ outcome: AttemptWindow.Outcome, durationMs: Double, error: String?, at now: Date) {
        windows.withLock { $0[channel, default: AttemptWindow()].record(outcome, durationMs: durationMs, error: error, at: now) }
    }

    func health(_ channel: String) -> ChannelHealth {
        states.withLock { $0[channel] } ?? ChannelHealth()
    }

    /// A lane for this channel starts: its gauge shows, and a paused channel whose settings were
    /// just reloaded probes at once (the reload may have fixed its address).
    func register(_ channel: String) {
        let paused = states.withLock { s -> Bool in
            s[channel]?.probeNow()
            return s[channel]?.state == .paused
        }
        gauge(channel).record(paused ? 1 : 0)
    }

    func admits(_ channel: String, want: Int, at now: Date, policy: HealthPolicy) -> (count: Int, nextProbe: Date?) {
        states.withLock { $0[channel] }?.admits(want, at: now, policy: policy) ?? (want, nil)
    }

    func probed(_ channel: String, at now: Date) {
        states.withLock { $0[channel]?.probed(at: now) }
    }

    /// Records an attempt's outcome; tells the handler when that paused or recovered the channel.
    func record(_ channel: String, failure: String?, at now: Date, policy: HealthPolicy) {
        let (change, health) = states.withLock { s -> (ChannelHealth.Change?, ChannelHealth) in
            var health = s[channel] ?? ChannelHealth()
            let before = health
            let change: ChannelHealth.Change?
            if let failure { change = health.failed(failure, at: now, policy: policy) } else { change = health.succeeded() }
            s[channel] = health
            return (change, change == .recovered ? before : health)
        }
        guard let change else { return }
        gauge(channel).record(change == .paused ? 1 : 0)
        let body = handler.withLock { $0 }
        body?(HealthChange(channel: channel, change: change, health: health, policy: policy, at: now))
    }

    private func gauge(_ channel: String) -> Gauge {
        gauges.withLock { g in
            if let gauge = g[channel] { return gauge }
            let gauge = Gauge(label: "herald_channel_paused", dimensions: [("channel", channel)])
            g[channel] = gauge
            return gauge
        }
    }
}
