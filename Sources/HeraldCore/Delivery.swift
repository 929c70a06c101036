import Foundation

/// Where a delivery is in its life. See `DeliveryLifecycle` for the transitions.
public enum DeliveryState: String, Codable, Sendable, CaseIterable {
    /// Waiting for its first attempt, due at `dueAt`.
    case queued
    /// Claimed by a dispatcher under a lease; an attempt is running.
    case inFlight = "in_flight"
    /// A receipt was recorded. Final.
    case delivered
    /// The last attempt failed transiently; the next one is due at `dueAt`.
    case retrying
    /// Permanently failed or out of retries. Final until replayed.
    case failed
    /// A notice an operator's silence holds (`silencedBy`): it goes out (queued, due then) when no
    /// silence holds it any more and its cycle is still open; the resolve supersedes it.
    case silenced
    /// Never to be sent: a later event made it moot (the resolve overtook a notice or update still
    /// waiting, or a notice that failed or was released after the resolve). Final.
    case superseded

    public var isFinal: Bool { self == .delivered || self == .failed || self == .superseded }
}

/// What a delivery says. Per recipient and incident cycle: one notice, then updates, then one
/// all-clear; or, for a recipient the notice never reached, at most one summary.
public enum DeliveryKind: String, Codable, Sendable, CaseIterable {
    /// The first word of a cycle to a recipient.
    case notice
    /// More about the incident (an `updated` or `acknowledged` event), threaded onto the notice.
    case update
    /// The resolve, to a recipient that was told, threaded onto its notice.
    case allClear = "all_clear"
    /// "Was down from A to B, now restored", to a recipient routed in the cycle but never reached.
    case summary

    /// All-clears and summaries are served ahead of any backlog, updates ahead of new notices.
    public var priority: Int {
        switch self {
        case .notice: return 0
        case .update: return 5
        case .allClear, .summary: return 10
        }
    }

    /// A follow-up of the notice (it threads onto it and never goes before it).
    public var isFollowUp: Bool { self != .notice }

    /// It says the incident is over (an all-clear or a summary).
    public var isResolution: Bool { self == .allClear || self == .summary }
}

/// One event to one channel.
public struct Delivery: Codable, Sendable, Equatable {
    public var id: String
    public var eventId: String
    public var incident: String
    /// The incident cycle it belongs to.
    public var cycle: Int
    public var channel: String
    /// The recipient within the channel (an email address), for channels that fan out per
    /// recipient; nil when the channel is one destination.
    public var recipient: String?
    public var kind: DeliveryKind
    public var state: DeliveryState
    public var priority: Int
    public var attempts: Int
    public var createdAt: Date
    public var dueAt: Date?
    public var updatedAt: Date
    public var lastStatus: Int?
    public var lastError: String?
    /// The provider's reference from the receipt (Message-ID, status id, `ts`, …).
    public var receipt: String?
    public var deliveredAt: Date?
    /// How many times an operator replayed it.
    public var replays: Int
    /// The silence that holds it (state `silenced`), or last held it.
    public var silencedBy: String?

    public init(id: String, eventId: String, incident: String, cycle: Int = 1, channel: String, recipient: String? = nil, kind: DeliveryKind,
                state: DeliveryState, priority: Int, attempts: Int, createdAt: Date, dueAt: Date?,
                updatedAt: Date, lastStatus: Int? = nil, lastError: String? = nil, receipt: String? = nil,
                deliveredAt: Date? = nil, replays: Int = 0, silencedBy: String? = nil) {
        self.id = id
        self.eventId = eventId
        self.incident = incident
        self.cycle = cycle
        self.channel = channel
        self.recipient = recipient
        self.kind = kind
        self.state = state
        self.priority = priority
        self.attempts = attempts
        self.createdAt = createdAt
        self.dueAt = dueAt
        self.updatedAt = updatedAt
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.receipt = receipt
        self.deliveredAt = deliveredAt
        self.replays = replays
        self.silencedBy = silencedBy
    }

    enum CodingKeys: String, CodingKey {
        case id, incident, cycle, channel, recipient, kind, state, priority, attempts, receipt, replays
        case eventId = "event_id"
        case createdAt = "created_at"
        case dueAt = "due_at"
        case updatedAt = "updated_at"
        case lastStatus = "last_status"
        case lastError = "last_error"
        case deliveredAt = "delivered_at"
        case silencedBy = "silenced_by"
    }
}

/// One try of a delivery.
public struct Attempt: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case delivered, retry, failed
    }
    public var deliveryId: String
    /// 1-based, counting across replays.
    public var number: Int
    /// Which replay generation this attempt belongs to (0: before any replay).
    public var replay: Int
    public var startedAt: Date
    public var durationMs: Double
    public var outcome: Outcome
    public var status: Int?
    /// Bounded failure reason (`serverError`, `rateLimited`, …), nil on success.
    public var reason: String?
    public var error: String?
    /// The answer came after the claim's lease had passed to another claimer: kept in the history,
    /// it changed nothing.
    public var late: Bool

    public init(deliveryId: String, number: Int, replay: Int, startedAt: Date, durationMs: Double,
                outcome: Outcome, status: Int?, reason: String?, error: String?, late: Bool = false) {
        self.deliveryId = deliveryId
        self.number = number
        self.replay = replay
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.outcome = outcome
        self.status = status
        self.reason = reason
        self.error = error
        self.late = late
    }

    enum CodingKeys: String, CodingKey {
        case number, replay, outcome, status, reason, error, late
        case deliveryId = "delivery_id"
        case startedAt = "started_at"
        case durationMs = "duration_ms"
    }
}

/// The incident as channels and the admin API see it: its current cycle's state, as the
/// lifecycle planner keeps it.
public struct Incident: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case open, resolved
    }
    public var key: String
    public var status: Status
    /// Increments each time a resolved incident is triggered again. 0 for an incident known only
    /// from events that opened nothing (an update or resolve of an incident Herald never saw).
    public var cycle: Int
    public var title: String
    public var severity: Severity
    public var openedAt: Date
    public var resolvedAt: Date?
    public var updatedAt: Date
    /// The union of the components this cycle's events named.
    public var components: [String]
    /// The labels of this cycle's events, later values over earlier ones.
    public var labels: [String: String]
    public var link: String?
    /// Who acknowledged this cycle, and when (nil: nobody yet).
    public var acknowledgedAt: Date?
    public var acknowledgedBy: String?
    /// `triggered` events in this cycle: the first and every repeat.
    public var triggers: Int
    /// When the last event of this cycle arrived.
    public var lastSeenAt: Date?

    public init(key: String, status: Status, cycle: Int, title: String, severity: Severity,
                openedAt: Date, resolvedAt: Date?, updatedAt: Date, components: [String] = [], labels: [String: String] = [:],
                link: String? = nil, acknowledgedAt: Date? = nil, acknowledgedBy: String? = nil, triggers: Int = 0,
                lastSeenAt: Date? = nil) {
        self.key = key
        self.status = status
        self.cycle = cycle
        self.title = title
        self.severity = severity
        self.openedAt = openedAt
        self.resolvedAt = resolvedAt
        self.updatedAt = updatedAt
        self.components = components
        self.labels = labels
        self.link = link
        self.acknowledgedAt = acknowledgedAt
        self.acknowledgedBy = acknowledgedBy
        self.triggers = triggers
        self.lastSeenAt = lastSeenAt
    }

    enum CodingKeys: String, CodingKey {
        case key, status, cycle, title, severity, components, labels, link, triggers
        case openedAt = "opened_at"
        case resolvedAt = "resolved_at"
        case updatedAt = "updated_at"
        case acknowledgedAt = "acknowledged_at"
        case acknowledgedBy = "acknowledged_by"
        case lastSeenAt = "last_seen_at"
    }
}
