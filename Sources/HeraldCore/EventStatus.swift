/// The state change an event reports.
public enum EventStatus: String, Codable, Sendable, CaseIterable {
    /// Something broke (or is still broken: a repeat of an open incident pages nobody again).
    case triggered
    /// More is known: goes, threaded, to those already told.
    case updated
    /// Someone is on it: recorded with who and when, and goes to those told as an update. It never
    /// changes the incident's title or severity.
    case acknowledged
    /// It is fixed: the all-clear goes to exactly those who were told.
    case resolved

    /// Accepts the canonical names and the words monitoring tools pass: Alertmanager's `firing`,
    /// PagerDuty's `trigger`/`acknowledge`/`resolve`, and every Nagios/Icinga `$NOTIFICATIONTYPE$`
    /// (`PROBLEM`, `RECOVERY`, `ACKNOWLEDGEMENT`, `FLAPPINGSTART`, `FLAPPINGSTOP`,
    /// `FLAPPINGDISABLED`, `DOWNTIMESTART`, `DOWNTIMEEND`, `DOWNTIMECANCELLED`, `CUSTOM`). Flapping,
    /// downtime and custom notifications are updates: they reach those already told, threaded, and
    /// page nobody new.
    public init?(alias: String) {
        switch alias.lowercased() {
        case "triggered", "trigger", "firing", "problem", "down", "open", "critical", "alerting": self = .triggered
        case "updated", "update", "flappingstart", "flappingstop", "flappingdisabled", "downtimestart", "downtimeend",
             "downtimecancelled", "downtimecanceled", "custom":
            self = .updated
        case "acknowledged", "acknowledge", "acknowledgement", "acknowledgment", "ack": self = .acknowledged
        case "resolved", "resolve", "ok", "recovery", "recovered", "up", "closed", "normal": self = .resolved
        default: return nil
        }
    }

    /// The words `init(alias:)` accepts, for error messages.
    public static let expected = "triggered, updated, acknowledged or resolved"
}
