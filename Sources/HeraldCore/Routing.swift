/// One addressee: a channel, and within it one recipient (an email address), or nil for a
/// channel that is one destination. Receipts, retries and the all-clear are per target.
public struct Target: Hashable, Sendable, CustomStringConvertible {
    public var channel: String
    public var recipient: String?

    public init(channel: String, recipient: String? = nil) {
        self.channel = channel
        self.recipient = recipient
    }

    public var description: String { recipient.map { "\(channel)/\($0)" } ?? channel }
}

/// How events reach targets: the configured routes, and the recipients of channels that deliver
/// to several (one delivery each). A pure value, so the lifecycle planner can route the event as
/// it stands after merging it into the incident (a repeat that raises the severity is routed
/// with the new severity).
public struct Routing: Sendable, Equatable {
    public var routes: [Route]
    /// Per channel with several recipients, their addresses; a channel absent here is one target.
    public var recipients: [String: [String]]
    /// The `subscribers` channel, if one is configured: its recipients are the confirmed
    /// subscribers, planned page by page after the commit (`SubscriberFanOut`), never here.
    public var subscriberChannel: String?
    /// The `statuspage` channels: an incident routed to one is public, and its subscribers hear of it.
    public var statusChannels: Set<String>

    public init(routes: [Route], recipients: [String: [String]] = [:], subscriberChannel: String? = nil,
                statusChannels: Set<String> = []) {
        self.routes = routes
        self.recipients = recipients
        self.subscriberChannel = subscriberChannel
        self.statusChannels = statusChannels
    }

    /// The event (with its cycle's deliveries and the ones it creates) concerns subscribers: a
    /// subscribers channel exists and the cycle reaches a status page.
    public func reachesSubscribers(_ targets: some Sequence<Target>) -> Bool {
        subscriberChannel != nil && !statusChannels.isEmpty && targets.contains { statusChannels.contains($0.channel) }
    }

    /// Every event goes to exactly these channels (tests, `herald test-channel`).
    public init(channels: [String], recipients: [String: [String]] = [:]) {
        self.init(routes: channels.isEmpty ? [] : [Route(channels: channels)], recipients: recipients)
    }

    /// The targets of an event, in route order, without repeats.
    public func targets(for event: Event) -> [Target] {
        routes.channels(for: event).flatMap { channel -> [Target] in
            guard let list = recipients[channel], !list.isEmpty else { return [Target(channel: channel)] }
            return list.map { Target(channel: channel, recipient: $0) }
        }
    }
}
