import Foundation

/// One state change of an incident, as received and normalised.
///
/// A sender may leave fields out (a PagerDuty `acknowledge` has no summary or severity; a resolve
/// often carries no severity). Such a field is listed in `omitted`, and the lifecycle planner fills
/// it in from the incident before the event is stored: the stored event is what was meant, and
/// `omitted` says which of its values the sender did not give.
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
    /// Where it came from: `api`, `cli`, `alertmanager`, `grafana`, `pagerduty`, `console`.
    public var source: String?
    /// Who sent it: the sending token's name, or the operator who acknowledged or resolved it.
    public var actor: String?
    /// The fields the sender left out; their values came from the incident.
    public var omitted: Set<Field>

    /// The fields an event may leave out.
    public enum Field: String, Codable, Sendable, CaseIterable, Comparable {
        case severity, title, components, labels, link
        public static func < (a: Field, b: Field) -> Bool { a.rawValue < b.rawValue }
    }

    public init(
        id: String, incident: String, status: EventStatus, severity: Severity, title: String,
        message: String? = nil, components: [String] = [], labels: [String: String] = [:],
        link: String? = nil, occurredAt: Date, receivedAt: Date, source: String? = nil, actor: String? = nil,
        omitted: Set<Field> = []
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
        self.source = source
        self.actor = actor
        self.omitted = omitted
    }

    enum CodingKeys: String, CodingKey {
        case id, incident, status, severity, title, message, components, labels, link, source, actor, omitted
        case occurredAt = "occurred_at"
        case receivedAt = "received_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        incident = try c.decode(String.self, forKey: .incident)
        status = try c.decode(EventStatus.self, forKey: .status)
        severity = try c.decode(Severity.self, forKey: .severity)
        title = try c.decode(String.self, forKey: .title)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        components = try c.decodeIfPresent([String].self, forKey: .components) ?? []
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        link = try c.decodeIfPresent(String.self, forKey: .link)
        occurredAt = try c.decode(Date.self, forKey: .occurredAt)
        receivedAt = try c.decode(Date.self, forKey: .receivedAt)
        source = try c.decodeIfPresent(String.self, forKey: .source)
        actor = try c.decodeIfPresent(String.self, forKey: .actor)
        omitted = Set(try c.decodeIfPresent([Field].self, forKey: .omitted) ?? [])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(incident, forKey: .incident)
        try c.encode(status, forKey: .status)
        try c.encode(severity, forKey: .severity)
        try c.encode(title, forKey: .title)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encode(components, forKey: .components)
        try c.encode(labels, forKey: .labels)
        try c.encodeIfPresent(link, forKey: .link)
        try c.encode(occurredAt, forKey: .occurredAt)
        try c.encode(receivedAt, forKey: .receivedAt)
        try c.encodeIfPresent(source, forKey: .source)
        try c.encodeIfPresent(actor, forKey: .actor)
        if !omitted.isEmpty { try c.encode(omitted.sorted(), forKey: .omitted) }
    }
}

extension Event {
    /// Roughly what the event holds in memory, for caches bounded in bytes: its text, plus a
    /// little per string and per label for the containers.
    public var approximateBytes: Int {
        var bytes = 256 + id.utf8.count + incident.utf8.count + title.utf8.count + (message?.utf8.count ?? 0)
            + (link?.utf8.count ?? 0) + (source?.utf8.count ?? 0) + (actor?.utf8.count ?? 0)
        for c in components { bytes += 32 + c.utf8.count }
        for (k, v) in labels { bytes += 64 + k.utf8.count + v.utf8.count }
        return bytes
    }
}
