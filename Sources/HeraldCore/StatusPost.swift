import Foundation

/// One update on Herald's public status page and feed, as published by a `statuspage` channel.
public struct StatusPost: Codable, Sendable, Equatable {
    /// The delivery id: stable, so the feed entry's id is too.
    public var id: String
    public var incident: String
    public var kind: DeliveryKind
    /// The event's status (triggered, updated, resolved).
    public var status: EventStatus
    public var severity: Severity
    /// The incident's title, and this update's words.
    public var title: String
    public var message: String?
    public var components: [String]
    public var link: String?
    public var openedAt: Date
    public var resolvedAt: Date?
    public var postedAt: Date
    /// The event was labelled `breakthrough=true`: it shows over a maintenance window of its
    /// components (nil: not).
    public var breakthrough: Bool?
    /// A scheduled maintenance's own post (the page shows the maintenance instead; nil: not).
    public var maintenance: Bool?

    public init(id: String, incident: String, kind: DeliveryKind, status: EventStatus, severity: Severity, title: String,
                message: String?, components: [String], link: String?, openedAt: Date, resolvedAt: Date?, postedAt: Date) {
        self.id = id
        self.incident = incident
        self.kind = kind
        self.status = status
        self.severity = severity
        self.title = title
        self.message = message
        self.components = components
        self.link = link
        self.openedAt = openedAt
        self.resolvedAt = resolvedAt
        self.postedAt = postedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, incident, kind, status, severity, title, message, components, link, breakthrough, maintenance
        case openedAt = "opened_at"
        case resolvedAt = "resolved_at"
        case postedAt = "posted_at"
    }
}
