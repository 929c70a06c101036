/// Which channels get which events. A route without a match takes every event; an event goes to
/// the union of its matching routes' channels, in the order they are first named.
public struct Route: Sendable, Equatable {
    public struct Match: Sendable, Equatable {
        /// Any of these severities (nil: any severity).
        public var severity: Set<Severity>?
        /// Every one of these labels with exactly this value (nil: no label condition).
        public var labels: [String: String]?
        /// At least one of these components (nil: no component condition).
        public var components: Set<String>?

        public init(severity: Set<Severity>? = nil, labels: [String: String]? = nil, components: Set<String>? = nil) {
            self.severity = severity
            self.labels = labels
            self.components = components
        }

        public func matches(_ event: Event) -> Bool {
            if let severity, !severity.contains(event.severity) { return false }
            if let labels, !labels.allSatisfy({ event.labels[$0.key] == $0.value }) { return false }
            if let components, components.isDisjoint(with: event.components) { return false }
            return true
        }
    }

    public var match: Match?
    public var channels: [String]

    public init(match: Match? = nil, channels: [String]) {
        self.match = match
        self.channels = channels
    }
}

extension Array where Element == Route {
    /// The channels an event is routed to: the union over matching routes, without repeats.
    public func channels(for event: Event) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for route in self where route.match?.matches(event) ?? true {
            for name in route.channels where seen.insert(name).inserted {
                out.append(name)
            }
        }
        return out
    }
}
