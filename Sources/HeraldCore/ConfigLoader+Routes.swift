import Foundation

/// `routes:`.
extension LoadContext {
    func loadRoutes(_ node: YNode, channels: Set<String>, subscriberChannels: Set<String> = []) -> [Route] {
        guard case .sequence(let items) = node.kind else {
            report(node, "routes", "expected a list of routes")
            return []
        }
        var routes: [Route] = []
        for (index, item) in items.enumerated() {
            let path = "routes[\(index)]"
            guard let m = MapReader(self, item, path) else { continue }
            m.checkKeys(["match", "channels"])
            var route = Route(channels: [])
            if case let (v, p)? = m.entry("match"), let mm = MapReader(self, v, p) {
                mm.checkKeys(["severity", "labels", "components"])
                var match = Route.Match()
                if case let (sv, sp)? = mm.entry("severity"), let list = get({ try reader.listItems(sv, sp) }) {
                    if list.isEmpty { report(sv, sp, "must list at least one severity") }
                    var severities: Set<Severity> = []
                    for item in list {
                        if let severity = Severity(rawValue: item.value) {
                            severities.insert(severity)
                        } else {
                            report(item.node, item.path, "unknown severity \"\(item.value)\"; expected info, minor, major or critical")
                        }
                    }
                    match.severity = severities
                }
                if case let (lv, lp)? = mm.entry("labels"), let labels = get({ try reader.stringMap(lv, lp) }) {
                    match.labels = labels
                }
                if case let (cv, cp)? = mm.entry("components"), let list = get({ try reader.stringList(cv, cp) }) {
                    if list.isEmpty { report(cv, cp, "must list at least one component") }
                    match.components = Set(list)
                }
                route.match = match
            }
            if case let (v, p)? = m.entry("channels") {
                if let list = get({ try reader.listItems(v, p) }) {
                    if list.isEmpty { report(v, p, "must list at least one channel") }
                    for item in list {
                        if subscriberChannels.contains(item.value) {
                            report(item.node, item.path, """
                                "\(item.value)" is the subscribers channel: it hears what the statuspage channels hear, \
                                so route public incidents to a statuspage channel instead
                                """)
                        } else if channels.contains(item.value) {
                            route.channels.append(item.value)
                        } else {
                            report(item.node, item.path, "unknown channel \"\(item.value)\"")
                        }
                    }
                }
            } else {
                m.missing("channels")
            }
            routes.append(route)
        }
        return routes
    }
}
