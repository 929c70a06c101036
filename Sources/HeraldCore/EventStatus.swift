/// The state change an event reports.
public enum EventStatus: String, Codable, Sendable, CaseIterable {
    case triggered, updated, resolved

    /// Accepts the canonical names and the common spellings of monitoring tools
    /// (`firing`, `trigger`, `problem`, `resolve`, `ok`, `recovery`, …).
    public init?(alias: String) {
        switch alias.lowercased() {
        case "triggered", "trigger", "firing", "problem", "down", "open", "critical", "alerting": self = .triggered
        case "updated", "update", "acknowledge", "acknowledged", "ack", "flappingstart": self = .updated
        case "resolved", "resolve", "ok", "recovery", "recovered", "up", "closed", "normal": self = .resolved
        default: return nil
        }
    }
}
