import HeraldCore

/// A delivery as `DeliveryLifecycle` sees it when something happens to it (an outcome, a lease
/// that ends, a replay), with where it goes: what both stores read before they ask the lifecycle.
public struct LiveDelivery: Sendable {
    public var id: String
    public var current: DeliveryLifecycle.Current
    public var incident: String
    public var cycle: Int
    public var target: Target
    public var eventId: String

    public init(id: String, current: DeliveryLifecycle.Current, incident: String, cycle: Int, target: Target, eventId: String) {
        self.id = id
        self.current = current
        self.incident = incident
        self.cycle = cycle
        self.target = target
        self.eventId = eventId
    }
}

extension ReplayResult {
    /// What a redirect did (or would do): the notices moved, the targets that got work, and the
    /// channel's other waiting or failed deliveries, left as they are.
    public static func redirect(_ planned: [(row: LiveDelivery, change: DeliveryLifecycle.Transition?)], targets: [Target]) -> ReplayResult {
        let moved = planned.filter { $0.change != nil }.map(\.row)
        return ReplayResult(count: moved.count, ids: moved.map(\.id), channels: moved.isEmpty ? [] : targets.map(\.channel).uniqued(),
                            skipped: planned.filter { $0.change == nil }.map(\.row.id))
    }
}
