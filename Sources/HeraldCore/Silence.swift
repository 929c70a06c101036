import Foundation

/// One condition of a silence, as Alertmanager writes them: `name=value`, `name!=value`,
/// `name=~regex`, `name!~regex`. The regex must match the whole value. `name` is a label, or one
/// of `severity`, `component` (any of the event's components), `incident` (its key) and `source`.
/// A label the event does not carry has the value "" (so `team!=db` matches an event without `team`).
public struct SilenceMatcher: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Op: String, Sendable, Codable, CaseIterable {
        case equal = "="
        case notEqual = "!="
        case regex = "=~"
        case notRegex = "!~"
    }

    public let name: String
    public let op: Op
    public let value: String
    /// The regex of `=~` and `!~`, compiled once: a matcher is checked for every notice created
    /// while its silence is in force, inside the store's transaction (compiling costs ~30 µs,
    /// matching ~0.4 µs).
    private let regex: CompiledRegex?

    public init(name: String, op: Op, value: String) throws(SilenceError) {
        self.name = name
        self.op = op
        self.value = value
        regex = try Self.validate(name: name, op: op, value: value)
    }

    public static func == (a: SilenceMatcher, b: SilenceMatcher) -> Bool {
        a.name == b.name && a.op == b.op && a.value == b.value
    }

    /// Parses `name<op>value`; the value may be double-quoted (`service=~"api|web"`).
    public init(parsing text: String) throws(SilenceError) {
        let s = text.trimmingCharacters(in: .whitespaces)
        // The first operator character ends the name: `!`, `=` or `~` cannot be in a name.
        guard let at = s.firstIndex(where: { $0 == "=" || $0 == "!" }) else {
            throw SilenceError("matcher \"\(text)\" has no operator (expected one of =, !=, =~, !~)")
        }
        let name = s[..<at].trimmingCharacters(in: .whitespaces)
        let rest = s[at...]
        guard let op = [Op.notEqual, .regex, .notRegex, .equal].first(where: { rest.hasPrefix($0.rawValue) }) else {
            throw SilenceError("matcher \"\(text)\" has no operator (expected one of =, !=, =~, !~)")
        }
        var value = rest.dropFirst(op.rawValue.count).trimmingCharacters(in: .whitespaces)
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            value = Self.unquote(value.dropFirst().dropLast())
        }
        try self.init(name: name, op: op, value: value)
    }

    /// Checks the parts; answers the compiled regex for `=~` and `!~`.
    static func validate(name: String, op: Op, value: String) throws(SilenceError) -> CompiledRegex? {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" || $0 == "/" }) else {
            throw SilenceError("matcher name \"\(name)\" must be a label name (letters, digits, _ . - /)")
        }
        guard name.utf8.count <= 256, value.utf8.count <= 1024 else {
            throw SilenceError("matcher \"\(name)\" is too long (name at most 256 bytes, value at most 1024)")
        }
        guard op == .regex || op == .notRegex else { return nil }
        do { return CompiledRegex(try Regex("(?:" + value + ")")) } catch {
            throw SilenceError("matcher \"\(name)\": \"\(value)\" is not a valid regular expression")
        }
    }

    /// The matcher as written, quoting the value unless it is plain (`\"` and `\\` inside quotes
    /// stand for `"` and `\`): parsing it gives the same matcher back.
    public var description: String {
        let plain = !value.isEmpty && value.allSatisfy { $0.isLetter || $0.isNumber || "_.-/:@".contains($0) }
        guard !plain else { return name + op.rawValue + value }
        let quoted = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return name + op.rawValue + "\"" + quoted + "\""
    }

    /// The inside of a quoted value: `\"` is `"` and `\\` is `\`; any other backslash stays (a
    /// regex's `\d`).
    static func unquote(_ inner: Substring) -> String {
        var out = ""
        var escaped = false
        for ch in inner {
            if escaped {
                if ch != "\"" && ch != "\\" { out.append("\\") }
                out.append(ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                out.append(ch)
            }
        }
        if escaped { out.append("\\") }
        return out
    }

    /// Whether the event satisfies this condition.
    public func matches(_ event: Event) -> Bool {
        switch name {
        case "component":
            // `component=web`: web is among the components; `component!=web`: it is not.
            let any = event.components.contains { test($0) }
            return op == .equal || op == .regex ? any : !event.components.contains { !test($0) }
        case "severity": return test(event.severity.rawValue)
        case "incident": return test(event.incident)
        case "source": return test(event.source ?? "")
        default: return test(event.labels[name] ?? "")
        }
    }

    /// The positive test for `=` and `=~`, the negated one for `!=` and `!~`.
    private func test(_ candidate: String) -> Bool {
        switch op {
        case .equal: return candidate == value
        case .notEqual: return candidate != value
        case .regex: return wholeMatch(candidate)
        case .notRegex: return !wholeMatch(candidate)
        }
    }

    private func wholeMatch(_ candidate: String) -> Bool {
        guard let regex else { return false }
        return (try? regex.regex.wholeMatch(in: candidate)) != nil
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A compiled regex, shared read-only (matching does not change it).
final class CompiledRegex: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
    init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
}

/// A silence the operator asked for was malformed.
public struct SilenceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Quiet for a while: notices of events that match every matcher go to the silence's channels
/// (every channel when it names none) in the `silenced` state instead of out, from `startsAt`
/// until `endsAt`. When it ends and the incident is still open, they go out then; a resolve during
/// it sends nothing to a target that was never told. It never holds back an update or an
/// all-clear to a target that was told.
public struct Silence: Sendable, Equatable, Codable {
    public var id: String
    public var matchers: [SilenceMatcher]
    /// The channels it quiets; empty: every channel.
    public var channels: [String]
    public var startsAt: Date
    public var endsAt: Date
    public var createdBy: String
    public var comment: String
    public var createdAt: Date
    /// Set when the silence is a scheduled maintenance window (id `mnt_…`).
    public var maintenance: Maintenance?

    public init(id: String, matchers: [SilenceMatcher], channels: [String] = [], startsAt: Date, endsAt: Date,
                createdBy: String, comment: String, createdAt: Date) {
        self.id = id
        self.matchers = matchers
        self.channels = channels
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.createdBy = createdBy
        self.comment = comment
        self.createdAt = createdAt
    }

    public func isActive(at now: Date) -> Bool { startsAt <= now && now < endsAt }

    /// Ends it at `now` (a silence that has not begun ends before it starts: it never held
    /// anything). Answers whether that changed it (false: it had already ended).
    public mutating func expire(at now: Date) -> Bool {
        guard endsAt > now else { return false }
        endsAt = now
        startsAt = min(startsAt, now)
        return true
    }

    /// Its state at `now`, as the API and CLI show it.
    public func state(at now: Date) -> String {
        now < startsAt ? "pending" : now < endsAt ? "active" : "expired"
    }

    /// Whether a notice of `event` to `channel` is held by this silence at `now`.
    /// A maintenance window that names no channel silences nothing.
    public func silences(_ event: Event, channel: String, at now: Date) -> Bool {
        isActive(at: now) && (channels.isEmpty ? maintenance == nil : channels.contains(channel)) && matchers.allSatisfy { $0.matches(event) }
    }

    enum CodingKeys: String, CodingKey {
        case id, matchers, channels, comment, maintenance
        case startsAt = "starts_at"
        case endsAt = "ends_at"
        case createdBy = "created_by"
        case createdAt = "created_at"
    }
}

extension Array where Element == Silence {
    /// The silence holding a notice of `event` to `channel` at `now` — the one that ends last, so
    /// the notice is looked at again only when nothing holds it any more.
    public func holding(_ event: Event, channel: String, at now: Date) -> Silence? {
        filter { $0.silences(event, channel: channel, at: now) }.max { $0.endsAt < $1.endsAt }
    }
}
