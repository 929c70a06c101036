import Foundation

extension LoadContext {
    /// `retention:` — each period a duration or `forever`; `interval`, `batch` and `pause` pace
    /// the background pruner. Defaults in `RetentionConfig`.
    func loadRetention(_ node: YNode, into retention: inout RetentionConfig) {
        guard let m = MapReader(self, node, "retention") else { return }
        m.checkKeys(["deliveries", "idempotency", "status_posts", "incidents", "interval", "batch", "pause"])
        func period(_ key: String, _ field: WritableKeyPath<RetentionConfig, Duration?>) {
            guard case let (v, p)? = m.entry(key) else { return }
            if case .scalar(let s) = v.kind, s.trimmingCharacters(in: .whitespaces).lowercased() == "forever" {
                retention[keyPath: field] = nil
                return
            }
            guard let d = get({ try reader.duration(v, p) }) else { return }
            // Under a minute would prune what an operator is still looking at (and a retry's
            // history) while it happens: surely a typo for a longer unit.
            if d < .seconds(60) {
                report(v, p, "must be at least 1m (or forever)")
            } else {
                retention[keyPath: field] = d
            }
        }
        period("deliveries", \.deliveries)
        period("idempotency", \.idempotency)
        period("status_posts", \.statusPosts)
        period("incidents", \.incidents)
        if case let (v, p)? = m.entry("interval"), let d = get({ try reader.duration(v, p) }) {
            if d >= .seconds(1) { retention.interval = d } else { report(v, p, "must be at least 1s") }
        }
        if case let (v, p)? = m.entry("batch"), let n = get({ try reader.int(v, p) }) {
            if (1...100_000).contains(n) { retention.batch = n } else { report(v, p, "must be from 1 to 100000") }
        }
        if case let (v, p)? = m.entry("pause"), let d = get({ try reader.duration(v, p) }) {
            if d <= .seconds(60) { retention.pause = d } else { report(v, p, "must be at most 60s") }
        }
    }
}
