import Foundation

/// A client's mistake in an event, naming the field. Becomes `400 {"error", "field"}`.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String?
    public var message: String
    public init(field: String?, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { field.map { "\($0): \(message)" } ?? message }
}

/// Validates and normalises an incoming event (Herald's own JSON shape, `POST /v1/events`).
public enum EventInput {
    public static let maxIncidentLength = 256
    public static let maxTitleLength = 1024
    public static let maxMessageLength = 65_536

    /// Parses a JSON body. Only `incident`, `status` and `title` are required.
    public static func parse(json data: some Collection<UInt8>, id: String, receivedAt: Date) throws(InputError) -> Event {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(data), options: [])
        } catch {
            throw InputError(field: nil, "body is not valid JSON")
        }
        guard let fields = object as? [String: Any] else {
            throw InputError(field: nil, "body must be a JSON object")
        }
        return try parse(fields: fields, id: id, receivedAt: receivedAt)
    }

    static let knownFields: Set<String> = [
        "incident", "status", "severity", "title", "message", "components", "labels", "link", "occurred_at",
    ]

    public static func parse(fields: [String: Any], id: String, receivedAt: Date) throws(InputError) -> Event {
        for key in fields.keys.sorted() where !knownFields.contains(key) {
            throw InputError(field: key, "unknown field (expected one of: \(knownFields.sorted().joined(separator: ", ")))")
        }
        let incident = try requiredString(fields, "incident", max: maxIncidentLength)
        let statusText = try requiredString(fields, "status", max: 64)
        guard let status = EventStatus(alias: statusText) else {
            throw InputError(field: "status", "unknown status \"\(statusText)\" (expected triggered, updated or resolved)")
        }
        let title = try requiredString(fields, "title", max: maxTitleLength)
        var severity = Severity.major
        if let text = try optionalString(fields, "severity", max: 64) {
            guard let s = Severity(alias: text) else {
                throw InputError(field: "severity", "unknown severity \"\(text)\" (expected critical, major, minor or info)")
            }
            severity = s
        }
        let message = try optionalString(fields, "message", max: maxMessageLength)
        var components: [String] = []
        if let value = fields["components"], !(value is NSNull) {
            guard let list = value as? [Any] else { throw InputError(field: "components", "must be an array of strings") }
            for (i, item) in list.enumerated() {
                guard let s = item as? String, !isNumberOrBool(item) else {
                    throw InputError(field: "components[\(i)]", "must be a string")
                }
                guard !s.isEmpty, s.count <= 256 else { throw InputError(field: "components[\(i)]", "must be 1 to 256 characters") }
                if !components.contains(s) { components.append(s) }
            }
        }
        var labels: [String: String] = [:]
        if let value = fields["labels"], !(value is NSNull) {
            guard let map = value as? [String: Any] else { throw InputError(field: "labels", "must be an object of strings") }
            for (k, v) in map {
                guard let s = v as? String, !isNumberOrBool(v) else { throw InputError(field: "labels.\(k)", "must be a string") }
                labels[k] = s
            }
        }
        var link: String?
        if let text = try optionalString(fields, "link", max: 2048) {
            guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
                  scheme == "http" || scheme == "https", url.host?.isEmpty == false else {
                throw InputError(field: "link", "must be an http or https URL")
            }
            link = text
        }
        var occurredAt = receivedAt
        if let text = try optionalString(fields, "occurred_at", max: 64) {
            guard let date = RFC3339.parse(text) else {
                throw InputError(field: "occurred_at", "must be an RFC 3339 timestamp like 2026-11-25T10:02:00Z")
            }
            occurredAt = date
        }
        return Event(id: id, incident: incident, status: status, severity: severity, title: title, message: message,
                     components: components, labels: labels, link: link, occurredAt: occurredAt, receivedAt: receivedAt)
    }

    private static func isNumberOrBool(_ value: Any) -> Bool {
        value is NSNumber
    }

    private static func requiredString(_ fields: [String: Any], _ key: String, max: Int) throws(InputError) -> String {
        guard let value = try optionalString(fields, key, max: max) else {
            throw InputError(field: key, "is required")
        }
        return value
    }

    private static func optionalString(_ fields: [String: Any], _ key: String, max: Int) throws(InputError) -> String? {
        guard let value = fields[key], !(value is NSNull) else { return nil }
        guard let s = value as? String, !isNumberOrBool(value) else { throw InputError(field: key, "must be a string") }
        let trimmed = s.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw InputError(field: key, "must not be empty") }
        guard trimmed.count <= max else { throw InputError(field: key, "is longer than \(max) characters") }
        return trimmed
    }
}

/// RFC 3339 timestamps, with or without fractional seconds.
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        let whole = Date.ISO8601FormatStyle(includingFractionalSeconds: false)
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        let normalised = text.replacingOccurrences(of: " ", with: "T")
        return (try? fractional.parse(normalised)) ?? (try? whole.parse(normalised))
    }

    /// `2026-11-25T10:02:00.123Z` (UTC, milliseconds).
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
