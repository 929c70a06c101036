/// How bad an incident is. Ordered: `info` < `minor` < `major` < `critical`.
public enum Severity: String, Codable, Sendable, CaseIterable, Comparable {
    case info, minor, major, critical

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Accepts the canonical names and the spellings monitoring tools use.
    public init?(alias: String) {
        switch alias.lowercased() {
        case "critical", "crit", "fatal", "page", "disaster", "high": self = .critical
        case "major", "error", "err", "warning-high": self = .major
        case "minor", "warning", "warn", "average", "low": self = .minor
        case "info", "information", "informational", "ok", "none", "debug": self = .info
        default: return nil
        }
    }
}
