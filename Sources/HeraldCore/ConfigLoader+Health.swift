import Foundation

extension LoadContext {
    /// `health:` at the top (every channel's default) or under a channel (over the default, key by
    /// key): `pause_after` (a duration or `off`), `probe_every`, `notify` (channel names).
    func loadHealth(_ node: YNode, path: String, base: HealthPolicy, channels: Set<String>) -> HealthPolicy {
        var policy = base
        guard let m = MapReader(self, node, path) else { return policy }
        m.checkKeys(["pause_after", "probe_every", "notify"])
        if case let (v, p)? = m.entry("pause_after") {
            if case .scalar(let s) = v.kind, s.trimmingCharacters(in: .whitespaces).lowercased() == "off" {
                policy.pauseAfter = nil
            } else if let d = get({ try reader.duration(v, p) }) {
                if d > .zero { policy.pauseAfter = d } else { report(v, p, "must be greater than 0 (or off)") }
            }
        }
        if case let (v, p)? = m.entry("probe_every"), let d = get({ try reader.duration(v, p) }) {
            // More often than ten times a second is hammering an endpoint that is down.
            if d >= .milliseconds(100) { policy.probeEvery = d } else { report(v, p, "must be at least 100ms") }
        }
        if case let (v, p)? = m.entry("notify"), let list = get({ try reader.listItems(v, p) }) {
            policy.notify = []
            for item in list {
                if channels.contains(item.value) {
                    if !policy.notify.contains(item.value) { policy.notify.append(item.value) }
                } else {
                    report(item.node, item.path, "unknown channel \"\(item.value)\"")
                }
            }
        }
        return policy
    }
}
