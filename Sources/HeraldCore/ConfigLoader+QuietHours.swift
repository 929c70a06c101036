import Foundation

/// `quiet_hours:` — recurring silences (see `QuietHours`).
extension LoadContext {
    func loadQuietHours(_ node: YNode, channels: Set<String>) -> [QuietHours] {
        guard case .sequence(let items) = node.kind else {
            report(node, "quiet_hours", "expected a list of quiet hours")
            return []
        }
        var out: [QuietHours] = []
        var names: Set<String> = []
        for (index, item) in items.enumerated() {
            let path = "quiet_hours[\(index)]"
            guard let m = MapReader(self, item, path) else { continue }
            m.checkKeys(["name", "time_zone", "weekdays", "times", "matchers", "channels"])
            var quiet = QuietHours(name: "", times: [], timeZone: TimeZone(identifier: "UTC")!)
            if case let (v, p)? = m.entry("name"), let name = get({ try reader.string(v, p) }) {
                if name.isEmpty || name.count > 64 || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                    report(v, p, "must be 1 to 64 letters, digits, - or _")
                } else if !names.insert(name).inserted {
                    report(v, p, "another quiet_hours entry has this name")
                } else {
                    quiet.name = name
                }
            } else {
                m.missing("name")
            }
            if case let (v, p)? = m.entry("time_zone"), let zone = get({ try reader.string(v, p) }) {
                if let tz = TimeZone(identifier: zone) { quiet.timeZone = tz } else { report(v, p, "unknown time zone (expected an IANA name such as Europe/Berlin)") }
            }
            if case let (v, p)? = m.entry("weekdays"), let list = get({ try reader.listItems(v, p) }) {
                for day in list {
                    if let n = QuietHours.weekday(day.value) { quiet.weekdays.insert(n) } else {
                        report(day.node, day.path, "unknown weekday (expected mon, tue, wed, thu, fri, sat or sun)")
                    }
                }
            }
            if case let (v, p)? = m.entry("times"), let list = get({ try reader.listItems(v, p) }) {
                if list.isEmpty { report(v, p, "must list at least one span such as 22:00-24:00") }
                for span in list {
                    if let s = QuietHours.Span(parsing: span.value) { quiet.times.append(s) } else {
                        report(span.node, span.path, "expected HH:MM-HH:MM within one day (24:00 ends it; write two spans to cross midnight)")
                    }
                }
            } else {
                m.missing("times")
            }
            if case let (v, p)? = m.entry("matchers"), let list = get({ try reader.listItems(v, p) }) {
                for text in list {
                    do { quiet.matchers.append(try SilenceMatcher(parsing: text.value)) } catch {
                        report(text.node, text.path, error.description)
                    }
                }
            }
            if case let (v, p)? = m.entry("channels"), let list = get({ try reader.listItems(v, p) }) {
                for name in list {
                    if channels.contains(name.value) { quiet.channels.append(name.value) } else {
                        report(name.node, name.path, "unknown channel \"\(name.value)\"")
                    }
                }
            }
            func emptyList(_ key: String) -> Bool {
                guard let node = m.value(key) else { return true }
                if case .sequence(let items) = node.kind { return items.isEmpty }
                return false
            }
            if emptyList("matchers") && emptyList("channels") {
                report(item, path, "needs matchers or channels (quiet hours for everything would silence every notice)")
            }
            out.append(quiet)
        }
        return out
    }
}
