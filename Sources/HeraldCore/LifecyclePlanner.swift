import Foundation

/// A delivery of the incident's current cycle, as the planner needs to see it.
public struct CycleDelivery: Sendable, Equatable {
    public var id: String
    public var target: Target
    public var kind: DeliveryKind
    public var state: DeliveryState
    /// The failed notice this one stands in for (a fallback channel's notice), if any.
    public var fallbackOf: String?

    public init(id: String, target: Target, kind: DeliveryKind, state: DeliveryState, fallbackOf: String? = nil) {
        self.id = id
        self.target = target
        self.kind = kind
        self.state = state
        self.fallbackOf = fallbackOf
    }
}

/// One delivery the planner asks the store to create.
public struct PlannedDelivery: Sendable, Equatable {
    public var target: Target
    public var kind: DeliveryKind
    /// Not due yet: an update to a recipient whose notice is still being sent waits for the
    /// notice's receipt, which makes it due (or, if the notice never arrives, supersedes it).
    public var waitsForNotice: Bool
    /// A notice held by this silence (its id): created `silenced`, it goes out when nothing holds
    /// it any more and its cycle is still open.
    public var silencedBy: String?

    public init(target: Target, kind: DeliveryKind, waitsForNotice: Bool = false, silencedBy: String? = nil) {
        self.target = target
        self.kind = kind
        self.waitsForNotice = waitsForNotice
        self.silencedBy = silencedBy
    }

    /// The state it is created in.
    public var state: DeliveryState { silencedBy == nil ? .queued : .silenced }
}

/// What one event does: the incident's new state, the event as stored, the deliveries to create
/// and the ones to supersede.
public struct LifecyclePlan: Sendable, Equatable {
    public enum Transition: String, Sendable, Equatable {
        /// The first trigger of a cycle: a notice to every routed target.
        case opened
        /// A trigger of an open cycle: recorded; a notice only to routed targets the cycle has not
        /// routed before (the repeat raised the severity or named new components or labels).
        case repeated
        /// An update of an open cycle: threaded to the targets already told.
        case updated
        /// An acknowledgement of an open cycle: recorded with who and when, and to those told as an update.
        case acknowledged
        /// The resolve of an open cycle: all-clears to those told, summaries to those routed but never reached.
        case resolved
        /// A resolve of a cycle already resolved.
        case alreadyResolved = "already_resolved"
        /// An update, acknowledgement or resolve of an incident that is not open: recorded, nothing sent.
        case recorded
    }

    public var transition: Transition
    /// The incident after the event.
    public var incident: Incident
    /// The incident did not exist before this event.
    public var isNewIncident: Bool
    /// The event as it is stored: the fields its sender left out filled in from the incident.
    public var event: Event
    public var create: [PlannedDelivery]
    /// Ids of this cycle's deliveries that must never be sent now.
    public var supersede: [String]
    /// The cycle's silenced notices, looked at again with the incident as this event leaves it (a
    /// repeat that escalates, an update that names new components): each now carries this event,
    /// and goes out now (`silencedBy` nil) or stays held by `silencedBy`.
    public var reheld: [Reheld] = []

    public struct Reheld: Sendable, Equatable {
        public var id: String
        public var target: Target
        public var silencedBy: String?
        public init(id: String, target: Target, silencedBy: String?) {
            self.id = id
            self.target = target
            self.silencedBy = silencedBy
        }

        /// The state it takes: due now, or still held.
        public var state: DeliveryState { silencedBy == nil ? .queued : .silenced }
    }

    /// The channels this plan gives work due now (the lanes to wake): what it creates, except an
    /// update waiting for its notice and a notice a silence holds, and the held notices it lets go.
    public var dueChannels: [String] {
        (create.filter { !$0.waitsForNotice && $0.silencedBy == nil }.map(\.target.channel)
            + reheld.filter { $0.silencedBy == nil }.map(\.target.channel)).uniqued()
    }

    /// The cycle the event belongs to.
    public var cycle: Int { incident.cycle }
}

/// The incident lifecycle, written once: both stores call it inside their transaction with what
/// they read, and only store what it returns. Per target and incident cycle the outcome is
/// nothing, or one notice, then updates, then one all-clear; or, for a target the notice never
/// reached, at most one summary — never a notice or an update after the all-clear or summary,
/// never a second notice in one cycle.
///
/// - A `triggered` event of an open cycle pages nobody again. It is recorded (the incident counts
///   it), and if the incident as it now stands (a raised severity, new components or labels) is
///   routed to targets this cycle has not routed before, only those get the notice.
/// - `updated` and `acknowledged` go, as updates, only to targets already told (notice delivered
///   or in flight). An acknowledgement records who and when, and never changes the title or
///   severity. Neither opens an incident.
/// - The resolve is decided by the cycle's notices, never by the resolve's own routing: told →
///   all-clear threaded onto the notice; routed but never reached (still waiting, failed,
///   superseded) → one summary; never routed in the cycle → nothing. A target whose failed notice
///   was handed to a fallback channel is followed there instead. Notices and updates still waiting
///   are superseded.
/// - A field an event leaves out keeps the incident's value.
/// - A notice that an active silence holds is created `silenced`: not told, so no update follows
///   it; at the resolve it is superseded and its target gets nothing (it was never told, by the
///   operator's choice). Silences hold notices only, never an update or all-clear to a target told.
public enum LifecyclePlanner {
    /// - Parameters:
    ///   - incident: the incident as stored, nil if Herald never saw the key.
    ///   - cycle: the deliveries of the incident's current cycle: every notice, and every update
    ///     not yet final (others may be left out). Empty when the incident is not open.
    ///   - event: the event as received (its `omitted` fields still to be filled in).
    ///   - routing: the routes and recipients in force.
    ///   - now: the commit time.
    ///   - silences: the silences in force at `now` (others are ignored).
    public static func plan(incident current: Incident?, cycle: [CycleDelivery], event: Event, routing: Routing,
                            now: Date, silences: [Silence] = []) -> LifecyclePlan {
        guard let current else {
            let event = merged(event, into: nil)
            if event.status == .triggered {
                return open(event, cycle: 1, routing: routing, now: now, isNew: true, silences: silences)
            }
            // Nothing to follow up: the incident is known from now on, closed, at cycle 0, so the
            // next trigger opens cycle 1.
            let incident = Incident(key: event.incident, status: .resolved, cycle: 0, title: event.title,
                                    severity: event.severity, openedAt: event.occurredAt, resolvedAt: event.occurredAt,
                                    updatedAt: now, components: event.components, labels: event.labels, link: event.link,
                                    triggers: 0, lastSeenAt: event.receivedAt)
            return LifecyclePlan(transition: .recorded, incident: incident, isNewIncident: true, event: event,
                                 create: [], supersede: [])
        }
        switch (current.status, event.status) {
        case (.resolved, .triggered):
            var event = event
            event = merged(event, into: current, sameCycle: false)
            return open(event, cycle: current.cycle + 1, routing: routing, now: now, isNew: false, silences: silences)
        case (.resolved, _):
            let event = merged(event, into: current, sameCycle: false)
            return LifecyclePlan(transition: event.status == .resolved ? .alreadyResolved : .recorded, incident: current,
                                 isNewIncident: false, event: event, create: [], supersede: [])
        case (.open, .triggered):
            var plan = repeated(merged(event, into: current), incident: current, cycle: cycle, routing: routing, now: now,
                                silences: silences)
            plan.reheld = reheld(cycle, event: plan.event, now: now, silences: silences)
            return plan
        case (.open, .updated), (.open, .acknowledged):
            var plan = update(merged(event, into: current), incident: current, cycle: cycle, now: now)
            if event.status == .updated { plan.reheld = reheld(cycle, event: plan.event, now: now, silences: silences) }
            return plan
        case (.open, .resolved):
            return resolve(merged(event, into: current), incident: current, cycle: cycle, now: now)
        }
    }

    /// The event with the fields its sender left out taken from the incident. Within a cycle,
    /// components and labels accumulate: an event adds to what the cycle named.
    public static func merged(_ event: Event, into incident: Incident?, sameCycle: Bool = true) -> Event {
        var e = event
        guard let incident else { return e }
        if e.omitted.contains(.severity) { e.severity = incident.severity }
        if e.omitted.contains(.title) { e.title = incident.title }
        if e.omitted.contains(.link) { e.link = incident.link }
        if e.omitted.contains(.components) {
            e.components = incident.components
        } else if sameCycle {
            e.components = incident.components + e.components.filter { !incident.components.contains($0) }
        }
        if e.omitted.contains(.labels) {
            e.labels = incident.labels
        } else if sameCycle {
            e.labels = incident.labels.merging(e.labels) { _, new in new }
        }
        return e
    }

    private static func open(_ event: Event, cycle: Int, routing: Routing, now: Date, isNew: Bool,
                             silences: [Silence]) -> LifecyclePlan {
        let incident = Incident(key: event.incident, status: .open, cycle: cycle, title: event.title, severity: event.severity,
                                openedAt: event.occurredAt, resolvedAt: nil, updatedAt: now, components: event.components,
                                labels: event.labels, link: event.link, triggers: 1, lastSeenAt: event.receivedAt)
        let create = notices(routing.targets(for: event), event: event, now: now, silences: silences)
        return LifecyclePlan(transition: .opened, incident: incident, isNewIncident: isNew, event: event, create: create,
                             supersede: [])
    }

    /// A notice to each target, held by the silence that holds it, if any.
    private static func notices(_ targets: [Target], event: Event, now: Date, silences: [Silence]) -> [PlannedDelivery] {
        targets.map { target in
            PlannedDelivery(target: target, kind: .notice,
                            silencedBy: silences.isEmpty ? nil : silences.holding(event, channel: target.channel, at: now)?.id)
        }
    }

    /// The cycle's silenced notices against the event as it now stands: a silence matched the
    /// incident as it was, and may not match it escalated.
    private static func reheld(_ cycle: [CycleDelivery], event: Event, now: Date, silences: [Silence]) -> [LifecyclePlan.Reheld] {
        cycle.filter { $0.kind == .notice && $0.state == .silenced }.map {
            LifecyclePlan.Reheld(id: $0.id, target: $0.target, silencedBy: silences.holding(event, channel: $0.target.channel, at: now)?.id)
        }
    }

    /// The incident's fields an event of its open cycle changes (never by an acknowledgement).
    private static func absorb(_ event: Event, into incident: inout Incident, now: Date) {
        if !event.omitted.contains(.title) { incident.title = event.title }
        if !event.omitted.contains(.severity) { incident.severity = event.severity }
        incident.components = event.components
        incident.labels = event.labels
        incident.link = event.link
        incident.updatedAt = now
        incident.lastSeenAt = event.receivedAt
    }

    private static func repeated(_ event: Event, incident current: Incident, cycle: [CycleDelivery], routing: Routing,
                                 now: Date, silences: [Silence]) -> LifecyclePlan {
        var incident = current
        absorb(event, into: &incident, now: now)
        incident.triggers += 1
        let routedBefore = Set(cycle.lazy.filter { $0.kind == .notice }.map(\.target))
        let create = notices(routing.targets(for: event).filter { !routedBefore.contains($0) }, event: event, now: now,
                             silences: silences)
        return LifecyclePlan(transition: .repeated, incident: incident, isNewIncident: false, event: event, create: create,
                             supersede: [])
    }

    private static func update(_ event: Event, incident current: Incident, cycle: [CycleDelivery], now: Date) -> LifecyclePlan {
        var incident = current
        if event.status == .acknowledged {
            if incident.acknowledgedAt == nil {
                incident.acknowledgedAt = event.occurredAt
                incident.acknowledgedBy = event.actor
            }
            incident.updatedAt = now
            incident.lastSeenAt = event.receivedAt
        } else {
            absorb(event, into: &incident, now: now)
        }
        var create: [PlannedDelivery] = []
        for target in noticeOrder(cycle) {
            let notices = cycle.filter { $0.kind == .notice && $0.target == target }
            guard notices.contains(where: { $0.state == .delivered || $0.state == .inFlight }) else { continue }
            create.append(PlannedDelivery(target: target, kind: .update,
                                          waitsForNotice: !notices.contains { $0.state == .delivered }))
        }
        return LifecyclePlan(transition: event.status == .acknowledged ? .acknowledged : .updated, incident: incident,
                             isNewIncident: false, event: event, create: create, supersede: [])
    }

    private static func resolve(_ event: Event, incident current: Incident, cycle: [CycleDelivery], now: Date) -> LifecyclePlan {
        var incident = current
        incident.status = .resolved
        incident.resolvedAt = event.occurredAt
        incident.updatedAt = now
        incident.lastSeenAt = event.receivedAt
        incident.components = event.components
        let notices = cycle.filter { $0.kind == .notice }
        let handedOverIds = Set(notices.compactMap(\.fallbackOf))
        var told: Set<Target> = []
        var handedOver: Set<Target> = []
        var silenced: Set<Target> = []
        for n in notices {
            if n.state == .delivered || n.state == .inFlight { told.insert(n.target) }
            if handedOverIds.contains(n.id) { handedOver.insert(n.target) }
            if n.state == .silenced { silenced.insert(n.target) }
        }
        var create: [PlannedDelivery] = []
        for target in noticeOrder(cycle) {
            if told.contains(target) {
                create.append(PlannedDelivery(target: target, kind: .allClear))
            } else if !handedOver.contains(target) && !silenced.contains(target) {
                create.append(PlannedDelivery(target: target, kind: .summary))
            }
        }
        let supersede = cycle.filter {
            ($0.kind == .notice || $0.kind == .update) && ($0.state == .queued || $0.state == .retrying || $0.state == .silenced)
        }
            .map(\.id)
        return LifecyclePlan(transition: .resolved, incident: incident, isNewIncident: false, event: event, create: create,
                             supersede: supersede)
    }

    /// The targets of the cycle's notices, in the order they were first noticed.
    static func noticeOrder(_ cycle: [CycleDelivery]) -> [Target] {
        var seen: Set<Target> = []
        return cycle.compactMap { $0.kind == .notice && seen.insert($0.target).inserted ? $0.target : nil }
    }

    /// Where a notice that failed for good goes instead: the fallback's targets this cycle has not
    /// routed yet (one routed already was paged, or will be, on its own notice). Nothing once the
    /// cycle is over: the failed notice's target gets the summary.
    /// The notices of a failed notice's fallback targets (see `fallbackTargets`), each held by
    /// a silence in force on its channel at `now` as any notice is (`event`: the failed notice's;
    /// the next trigger or update of the incident looks at a held one again).
    public static func fallbackNotices(_ fallback: [Target], cycle: [CycleDelivery], cycleOpen: Bool, event: Event?,
                                       silences: [Silence], now: Date) -> [PlannedDelivery] {
        fallbackTargets(fallback, cycle: cycle, cycleOpen: cycleOpen).map { target in
            PlannedDelivery(target: target, kind: .notice,
                            silencedBy: event.flatMap { silences.holding($0, channel: target.channel, at: now)?.id })
        }
    }

    public static func fallbackTargets(_ fallback: [Target], cycle: [CycleDelivery], cycleOpen: Bool) -> [Target] {
        guard cycleOpen else { return [] }
        let routed = Set(cycle.lazy.filter { $0.kind == .notice }.map(\.target))
        var seen: Set<Target> = []
        return fallback.filter { !routed.contains($0) && seen.insert($0).inserted }
    }
}
