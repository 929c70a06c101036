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
        "incident", "status", "severity", "title", "message", "components", "labels", "link", "occurred_at", "actor",
    ]

    /// Herald's own event. A field left out (severity, components, labels, link) keeps the
    /// incident's value; `actor` defaults to the sender's token name, set by the caller.
    public static func parse(fields: [String: Any], id: String, receivedAt: Date) throws(InputError) -> Event {
        for key in fields.keys.sorted() where !knownFields.contains(key) {
            throw InputError(field: key, "unknown field (expected one of: \(knownFields.sorted().joined(separator: ", ")))")
        }
        var omitted: Set<Event.Field> = []
        let incident = try requiredString(fields, "incident", max: maxIncidentLength, multiline: false)
        guard !incident.hasPrefix(Maintenance.incidentPrefix) else {
            throw InputError(field: "incident", "keys starting \"\(Maintenance.incidentPrefix)\" are Herald's scheduled maintenance")
        }
        let statusText = try requiredString(fields, "status", max: 64, multiline: false)
        guard let status = EventStatus(alias: statusText) else {
            throw InputError(field: "status", "unknown status \"\(statusText)\" (expected \(EventStatus.expected))")
        }
        let title = try requiredString(fields, "title", max: maxTitleLength, multiline: true)
        var severity = Severity.major
        if let text = try optionalString(fields, "severity", max: 64, multiline: false) {
            guard let s = Severity(alias: text) else {
                throw InputError(field: "severity", "unknown severity \"\(text)\" (expected critical, major, minor or info)")
            }
            severity = s
        } else {
            omitted.insert(.severity)
        }
        let message = try optionalString(fields, "message", max: maxMessageLength, multiline: true)
        let actor = try optionalString(fields, "actor", max: 256, multiline: false)
        var components: [String] = []
        if let value = fields["components"], !(value is NSNull) {
            guard let list = value as? [Any] else { throw InputError(field: "components", "must be an array of strings") }
            for (i, item) in list.enumerated() {
                guard let s = item as? String, !isNumberOrBool(item) else {
                    throw InputError(field: "components[\(i)]", "must be a string")
                }
                guard !s.isEmpty, s.count <= 256 else { throw InputError(field: "components[\(i)]", "must be 1 to 256 characters") }
                let (checked, problem) = TextRules.check(s, multiline: false)
                if let problem { throw InputError(field: "components[\(i)]", problem) }
                if !components.contains(checked) { components.append(checked) }
            }
        } else {
            omitted.insert(.components)
        }
        var labels: [String: String] = [:]
        if let value = fields["labels"], !(value is NSNull) {
            guard let map = value as? [String: Any] else { throw InputError(field: "labels", "must be an object of strings") }
            for (k, v) in map.sorted(by: { $0.key < $1.key }) {
                guard let s = v as? String, !isNumberOrBool(v) else { throw InputError(field: "labels.\(k)", "must be a string") }
                if let problem = TextRules.check(k, multiline: false).problem { throw InputError(field: "labels", "a key \(problem)") }
                let (checked, problem) = TextRules.check(s, multiline: true)
                if let problem { throw InputError(field: "labels.\(k)", problem) }
                labels[k] = checked
            }
        } else {
            omitted.insert(.labels)
        }
        var link: String?
        if let text = try optionalString(fields, "link", max: 2048, multiline: false) {
            guard Self.isSafeLink(text) else {
                throw InputError(field: "link", "must be an http or https URL with a host and no user name or password")
            }
            link = text
        } else {
            omitted.insert(.link)
        }
        var occurredAt = receivedAt
        if let text = try optionalString(fields, "occurred_at", max: 64, multiline: false) {
            guard let date = RFC3339.parse(text) else {
                throw InputError(field: "occurred_at", "must be an RFC 3339 timestamp like 2026-11-25T10:02:00Z")
            }
            occurredAt = date
        }
        return Event(id: id, incident: incident, status: status, severity: severity, title: title, message: message,
                     components: components, labels: labels, link: link, occurredAt: occurredAt, receivedAt: receivedAt,
                     actor: actor, omitted: omitted)
    }

    /// An http(s) URL with a host and no `user:password@` part (which can make a link read as one
    /// site and go to another), and no space or control character.
    public static func isSafeLink(_ text: String) -> Bool {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host?.isEmpty == false,
              url.user == nil, url.password == nil else { return false }
        return !text.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control }
    }

    private static func isNumberOrBool(_ value: Any) -> Bool {
        value is NSNumber
    }

    private static func requiredString(_ fields: [String: Any], _ key: String, max: Int, multiline: Bool) throws(InputError) -> String {
        guard let value = try optionalString(fields, key, max: max, multiline: multiline) else {
            throw InputError(field: key, "is required")
        }
        return value
    }

    private static func optionalString(_ fields: [String: Any], _ key: String, max: Int, multiline: Bool) throws(InputError) -> String? {
        guard let value = fields[key], !(value is NSNull) else { return nil }
        guard let s = value as? String, !isNumberOrBool(value) else { throw InputError(field: key, "must be a string") }
        let (checked, problem) = TextRules.check(s.trimmingWhitespace(), multiline: multiline)
        if let problem { throw InputError(field: key, problem) }
        guard !checked.isEmpty else { throw InputError(field: key, "must not be empty") }
        guard checked.count <= max else { throw InputError(field: key, "is longer than \(max) characters") }
        return checked
    }
}

/// RFC 3339 timestamps, with or without fractional seconds.
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        let whole = Date.ISO8601FormatStyle(includingFractionalSeconds: false)
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        let normalised = text.replacingOccurrences(of: " ", with: "T")
        guard let date = (try? fractional.parse(normalised)) ?? (try? whole.parse(normalised)) else { return nil }
        // RFC 3339 has four-digit years; an offset can carry 0000-01-01 into year -1.
        return range.contains(date.timeIntervalSinceReferenceDate) ? date : nil
    }

    /// Foundation's 0001-01-01T00:00:00Z (`Date.distantPast`) up to the last millisecond of 9999,
    /// as seconds since 2001.
    static let range = -63_114_076_800.0...252_423_993_599.999

    /// `2026-11-25T10:02:00.123Z` (UTC, milliseconds, truncated like ISO8601FormatStyle). Written by
    /// hand: every webhook payload carries three timestamps, and the format style was a visible
    /// cost per delivery. A date outside years 1–9999 (none is parsed, but a `Date` can hold one)
    /// is written as the nearest end of that range rather than trapping.
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSinceReferenceDate
        let reference = seconds.isNaN ? 0 : min(max(seconds, range.lowerBound), range.upperBound)
        return format(reference: reference)
    }

    private static func format(reference: TimeInterval) -> String {
        // From the reference-date interval Date stores, as Foundation does: converting to 1970 first
        // would round some milliseconds up.
        let whole = reference.rounded(.down)
        let millis = min(999, Int(((reference - whole) * 1000).rounded(.down)))
        let seconds = Int64(whole) + 978_307_200
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        var out = [UInt8]()
        out.reserveCapacity(24)
        func digits(_ value: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        digits(year, 4); out.append(UInt8(ascii: "-"))
        digits(month, 2); out.append(UInt8(ascii: "-"))
        digits(day, 2); out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 3600 / 60, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2); out.append(UInt8(ascii: "."))
        digits(Int64(millis), 3); out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}
