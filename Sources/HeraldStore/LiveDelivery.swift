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
