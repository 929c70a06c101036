import Foundation
import HeraldCore

/// The fields of an admin request's JSON object, read with the one set of rules every admin
/// endpoint answers by: an unknown key, a value of the wrong type or a malformed time or
/// duration is a 400 naming the field (`matchers[1]`, `ends_at`).
struct JSONFields {
    let fields: [String: Any]

    /// Refuses keys outside `known`.
    init(_ fields: [String: Any], known: Set<String>) throws {
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError.badRequest("unknown field (expected one of: \(known.sorted().joined(separator: ", ")))", field: unknown)
        }
        self.fields = fields
    }

    /// A string without control characters other than newline and tab; nil when absent or null.
    func string(_ key: String) throws -> String? {
        guard let v = fields[key], !(v is NSNull) else { return nil }
        guard let s = v as? String, !(v is NSNumber) else { throw APIError.badRequest("must be a string", field: key) }
        guard !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" }) else {
            throw APIError.badRequest("must not contain control characters", field: key)
        }
        return s
    }

    /// An array of at most 64 non-empty strings; empty when absent or null.
    func strings(_ key: String) throws -> [String] {
        guard let v = fields[key], !(v is NSNull) else { return [] }
        guard let list = v as? [Any] else { throw APIError.badRequest("must be an array of strings", field: key) }
        guard list.count <= 64 else { throw APIError.badRequest("at most 64 entries", field: key) }
        return try list.enumerated().map { i, item in
            guard let s = item as? String, !(item is NSNumber), !s.isEmpty,
                  !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw APIError.badRequest("must be a non-empty string without control characters", field: "\(key)[\(i)]")
            }
            return s
        }
    }

    /// An RFC 3339 time; nil when absent or null.
    func time(_ key: String) throws -> Date? {
        guard let text = try string(key) else { return nil }
        guard let date = RFC3339.parse(text) else { throw APIError.badRequest("must be an RFC 3339 time", field: key) }
        return date
    }

    /// A duration such as `30m` or `2h` (`zero`: whether `0s` is allowed); nil when absent or null.
    func duration(_ key: String, zero: Bool = false) throws -> TimeInterval? {
        guard let text = try string(key) else { return nil }
        guard let d = Duration(parsing: text), zero ? d >= .zero : d > .zero else {
            throw APIError.badRequest("must be a duration like 30m or 2h", field: key)
        }
        return d.seconds
    }

    /// Channel names, each configured (`channels[1]` names the first that is not).
    func channels(_ key: String, configured: [String: some Any]) throws -> [String] {
        let names = try strings(key).uniqued()
        if let i = names.firstIndex(where: { configured[$0] == nil }) {
            throw APIError.badRequest("unknown channel \"\(names[i])\"", field: "\(key)[\(i)]")
        }
        return names
    }

    /// The end of a span: `ends_at`, or `duration` from `from`; exactly one of them.
    func end(from: Date) throws -> Date {
        switch (try time("ends_at"), try string("duration")) {
        case (let end?, nil):
            return end
        case (nil, .some):
            return from.addingTimeInterval(try duration("duration") ?? 0)
        case (nil, nil):
            throw APIError.badRequest("required: when it ends (or give \"duration\")", field: "ends_at")
        case (.some, .some):
            throw APIError.badRequest("give either \"ends_at\" or \"duration\", not both", field: "duration")
        }
    }
}
