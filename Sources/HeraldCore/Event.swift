import Foundation

/// One state change of an incident, as received and normalised.
public struct Event: Codable, Sendable, Equatable {
    public var id: String
    public var incident: String
    public var status: EventStatus
    public var severity: Severity
    public var title: String
    public var message: String?
    public var components: [String]
    public var labels: [String: String]
    public var link: String?
    public var occurredAt: Date
    public var receivedAt: Date

    public init(
        id: String, incident: String, status: EventStatus, severity: Severity, title: String,
        message: String? = nil, components: [String] = [], labels: [String: String] = [:],
        link: String? = nil, occurredAt: Date, receivedAt: Date
    ) {
        self.id = id
        self.incident = incident
        self.status = status
        self.severity = severity
        self.title = title
        self.message = message
        self.components = components
        self.labels = labels
        self.link = link
        self.occurredAt = occurredAt
        self.receivedAt = receivedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, incident, status, severity, title, message, components, labels, link
        case occurredAt = "occurred_at"
        case receivedAt = "received_at"
    }
}
