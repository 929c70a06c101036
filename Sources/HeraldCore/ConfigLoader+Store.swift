import Foundation

/// `store:` and retry policies.
extension LoadContext {
    func loadStore(_ node: YNode, into store: inout StoreConfig) {
        guard let m = MapReader(self, node, "store") else { return }
        m.checkKeys(["path", "url", "lease_margin"])
        if case let (v, p)? = m.entry("path"), let s = get({ try reader.string(v, p) }) {
            if s.isEmpty { report(v, p, "must not be empty") } else { store.path = s }
        }
        if case let (v, p)? = m.entry("url"), let s = get({ try reader.string(v, p) }) {
            if !StoreConfig.isPostgresURL(s) {
                report(v, p, "must be a postgres:// URL (for SQLite, use store.path)")
            } else if m.entry("path") != nil {
                report(v, p, "give store.path (SQLite) or store.url (PostgreSQL), not both")
            } else {
                store.url = Secret(s)
            }
        }
        if case let (v, p)? = m.entry("lease_margin"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { store.leaseMargin = d } else { report(v, p, "must be greater than 0") }
        }
    }

    /// Reads a `retry:` mapping over `base`. Only the fields given here are checked, so a bad
    /// top-level value is not reported again for every channel.
    func loadRetry(_ node: YNode, path: String, base: RetryPolicy) -> RetryPolicy {
        guard let m = MapReader(self, node, path) else { return base }
        m.checkKeys(["initial", "max", "max_attempts", "max_age"])
        var policy = base
        var initialAt: (YNode, String)?
        var maxAt: (YNode, String)?
        if case let (v, p)? = m.entry("initial"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { policy.initial = d; initialAt = (v, p) } else { report(v, p, "must be greater than 0") }
        }
        if case let (v, p)? = m.entry("max"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { policy.max = d; maxAt = (v, p) } else { report(v, p, "must be greater than 0") }
        }
        if case let (v, p)? = m.entry("max_attempts"), let n = get({ try reader.int(v, p) }) {
            if n >= 1 { policy.maxAttempts = n } else { report(v, p, "must be at least 1") }
        }
        if case let (v, p)? = m.entry("max_age"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { policy.maxAge = d } else { report(v, p, "must be greater than 0") }
        }
        if policy.max < policy.initial, case let (v, p)? = maxAt ?? initialAt {
            report(v, p, "max (\(policy.max.formatted)) must not be less than initial (\(policy.initial.formatted))")
            policy.max = policy.initial
        }
        return policy
    }
}
