import Foundation
import HeraldCore

/// Herald's public "website posting": what the statuspage channel published, as an HTML page, an
/// Atom feed and JSON. Everything that came from events is escaped; no script is needed.
struct StatusPage {
    struct Entry {
        var incident: String
        var title: String
        var severity: Severity
        var components: [String]
        var openedAt: Date
        var resolvedAt: Date?
        var link: String?
        /// Oldest first.
        var updates: [StatusPost]
        var isResolved: Bool { resolvedAt != nil || updates.last?.status == .resolved }
        /// An event of it was labelled `breakthrough=true`: it shows over a maintenance window.
        var breakthrough: Bool { updates.contains { $0.breakthrough == true } }
    }

    /// The incidents' posts (a maintenance's own events, if a route sent them here, show as the
    /// maintenance instead).
    let posts: [StatusPost]
    let entries: [Entry]
    /// Scheduled maintenance windows: upcoming, in progress, and recently over.
    let maintenance: [Silence]
    let generatedAt: Date
    /// The page's name, home link, logo and declared components.
    let settings: StatusPageConfig

    init(posts: [StatusPost], maintenance: [Silence] = [], settings: StatusPageConfig = .init(), now: Date = Date()) {
        let posts = posts.filter { $0.maintenance != true }
        self.posts = posts
        self.maintenance = maintenance.filter(\.isMaintenance)
        self.settings = settings
        generatedAt = now
        var byCycle: [String: Entry] = [:]
        var order: [String] = []
        for post in posts.sorted(by: { $0.postedAt < $1.postedAt }) {
            let key = "\(post.incident)\u{0}\(post.openedAt.timeIntervalSince1970)"
            if byCycle[key] == nil {
                order.append(key)
                byCycle[key] = Entry(incident: post.incident, title: post.title, severity: post.severity, components: [],
                                     openedAt: post.openedAt, resolvedAt: nil, link: nil, updates: [])
            }
            byCycle[key]!.updates.append(post)
            byCycle[key]!.title = post.title
            if post.kind == .notice { byCycle[key]!.severity = max(byCycle[key]!.severity, post.severity) }
            for c in post.components where !byCycle[key]!.components.contains(c) { byCycle[key]!.components.append(c) }
            if let link = post.link { byCycle[key]!.link = link }
            if post.status == .resolved { byCycle[key]!.resolvedAt = post.resolvedAt ?? post.postedAt }
        }
        entries = order.reversed().compactMap { byCycle[$0] }
    }

    var open: [Entry] { entries.filter { !$0.isResolved } }
    /// The open incidents that say how things are: not one whose every component is under
    /// maintenance (unless it breaks through).
    var outages: [Entry] {
        let maintained = self.maintained
        return open.filter { $0.breakthrough || $0.components.isEmpty || !$0.components.allSatisfy(maintained.contains) }
    }
    var resolved: [Entry] { Array(entries.filter(\.isResolved).prefix(20)) }

    /// Maintenance in progress now, then upcoming (soonest first), then the recently over (latest first).
    var inProgress: [Silence] { maintenance.filter { $0.maintenanceStatus(at: generatedAt) == "in_progress" } }
    var upcoming: [Silence] { maintenance.filter { $0.maintenanceStatus(at: generatedAt) == "scheduled" } }
    var recentMaintenance: [Silence] {
        maintenance.filter { $0.endsAt <= generatedAt }.sorted { $0.endsAt > $1.endsAt }
    }

    /// Components under maintenance now.
    var maintained: Set<String> { Set(inProgress.flatMap { $0.maintenance?.components ?? [] }) }

    static func componentStatus(_ severity: Severity) -> String {
        switch severity {
        case .critical: return "major_outage"
        case .major: return "partial_outage"
        case .minor, .info: return "degraded_performance"
        }
    }

    static func label(_ status: String) -> String {
        switch status {
        case "major_outage": return "Major outage"
        case "partial_outage": return "Partial outage"
        case "degraded_performance": return "Degraded performance"
        case "under_maintenance": return "Under maintenance"
        default: return "Operational"
        }
    }

    struct ComponentRow {
        var name: String
        var group: String?
        var description: String?
        var status: String
    }

    /// The declared components in their configured order, operational unless an open incident
    /// names them; then every other component an incident named (under "Other" when some are
    /// declared), so nothing an incident says is affected is hidden.
    var components: [ComponentRow] {
        let declared = settings.components
        var mentioned: [String] = []
        for e in entries.reversed() { for c in e.components where !mentioned.contains(c) { mentioned.append(c) } }
        for w in inProgress + upcoming { for c in w.maintenance?.components ?? [] where !mentioned.contains(c) { mentioned.append(c) } }
        let maintained = self.maintained
        // Under maintenance, a component shows that instead of an incident, unless one breaks through.
        func status(_ name: String) -> String {
            let touching = open.filter { $0.components.contains(name) && (!maintained.contains(name) || $0.breakthrough) }
            return touching.map(\.severity).max().map(Self.componentStatus)
                ?? (maintained.contains(name) ? "under_maintenance" : "operational")
        }
        let known = Set(declared.map(\.name))
        return declared.map { ComponentRow(name: $0.name, group: $0.group, description: $0.description, status: status($0.name)) }
            + mentioned.filter { !known.contains($0) }.sorted().map {
                ComponentRow(name: $0, group: declared.isEmpty ? nil : "Other", description: nil, status: status($0))
            }
    }

    /// The components by group, groups in the order first named (ungrouped first).
    var componentGroups: [(group: String?, rows: [ComponentRow])] {
        var out: [(group: String?, rows: [ComponentRow])] = []
        for row in components {
            if let i = out.firstIndex(where: { $0.group == row.group }) { out[i].rows.append(row) } else { out.append((row.group, [row])) }
        }
        return out.sorted { ($0.group == nil ? 0 : 1) < ($1.group == nil ? 0 : 1) }
    }

    var overall: String {
        guard let worst = outages.map(\.severity).max() else { return inProgress.isEmpty ? "operational" : "under_maintenance" }
        return Self.componentStatus(worst)
    }

    // MARK: JSON

    func json() -> [String: Any] {
        func update(_ p: StatusPost) -> [String: Any] {
            var u: [String: Any] = ["id": p.id, "kind": p.kind.rawValue, "status": p.status.rawValue,
                                    "posted_at": RFC3339.format(p.postedAt)]
            if let m = p.message { u["message"] = m }
            return u
        }
        func incident(_ e: Entry) -> [String: Any] {
            var i: [String: Any] = ["key": e.incident, "title": e.title, "severity": e.severity.rawValue,
                                    "status": e.isResolved ? "resolved" : "open", "components": e.components,
                                    "opened_at": RFC3339.format(e.openedAt), "updates": e.updates.map(update)]
            if let r = e.resolvedAt { i["resolved_at"] = RFC3339.format(r) }
            if let l = e.link { i["link"] = l }
            return i
        }
        func component(_ c: ComponentRow) -> [String: Any] {
            var out: [String: Any] = ["name": c.name, "status": c.status]
            if let g = c.group { out["group"] = g }
            if let d = c.description { out["description"] = d }
            return out
        }
        func window(_ w: Silence) -> [String: Any] {
            let m = w.maintenance ?? Maintenance(title: "", components: [])
            var out: [String: Any] = ["id": w.id, "title": m.title, "components": m.components,
                                      "status": w.maintenanceStatus(at: generatedAt),
                                      "scheduled_for": RFC3339.format(w.shownWindow.start),
                                      "scheduled_until": RFC3339.format(w.shownWindow.end),
                                      "updates": m.steps.sorted { $0.value < $1.value }.map { ["step": $0.key, "posted_at": RFC3339.format($0.value)] }]
            if let message = m.message { out["message"] = message }
            return out
        }
        var page: [String: Any] = [:]
        if let url = settings.url { page["url"] = url }
        if settings.logo != nil { page["logo"] = "/status/logo" }
        return [
            "page": page,
            "status": overall,
            "updated_at": RFC3339.format(posts.map(\.postedAt).max() ?? generatedAt),
            "components": components.map(component),
            "open_incidents": open.map(incident),
            "resolved_incidents": resolved.map(incident),
            "scheduled_maintenances": (inProgress + upcoming + recentMaintenance).map(window),
        ]
    }

    // MARK: HTML

    static func escape(_ s: String) -> String { s.htmlEscaped }

    static func time(_ d: Date) -> String {
        "<time datetime=\"\(RFC3339.format(d))\">\(escape(MessageRenderer.humanTime(d)))</time>"
    }

    func updateHTML(_ p: StatusPost) -> String {
        let what: String
        switch (p.kind, p.status) {
        case (.notice, _): what = "Investigating"
        case (.update, .acknowledged): what = "Identified"
        case (.update, _): what = "Update"
        default: what = "Resolved"
        }
        var s = "<li><strong>\(what)</strong> · \(Self.time(p.postedAt))"
        if p.kind.isResolution, let resolved = p.resolvedAt {
            s += "<p>Service is restored. Down from \(Self.time(p.openedAt)) to \(Self.time(resolved)) (\(Self.escape(MessageRenderer.humanDuration(resolved.timeIntervalSince(p.openedAt))))).</p>"
        }
        if let m = p.message { s += "<p>\(Self.escape(m))</p>" }
        return s + "</li>"
    }

    func entryHTML(_ e: Entry) -> String {
        var s = "<article class=\"incident \(e.isResolved ? "resolved" : "open")\"><h3>\(Self.escape(e.title))</h3>"
        s += "<p class=\"meta\">\(e.isResolved ? "Resolved" : Self.escape(Self.label(Self.componentStatus(e.severity))))"
        if !e.components.isEmpty { s += " · Affected: \(Self.escape(e.components.joined(separator: ", ")))" }
        s += " · Since \(Self.time(e.openedAt))</p>"
        if let link = e.link { s += "<p><a href=\"\(Self.escape(link))\" rel=\"nofollow noopener\">More information</a></p>" }
        s += "<ol class=\"updates\" reversed>" + e.updates.reversed().map(updateHTML).joined() + "</ol></article>"
        return s
    }

    /// The page's only style, inline so the page needs no other request; the Content-Security-
    /// Policy allows exactly this text by its hash, and no script at all.
    static let stylesheet = """
        body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#1d1d1f;background:#fff;overflow-wrap:anywhere}
        .brand{display:flex;align-items:center;gap:.75rem;flex-wrap:wrap}.brand a{color:inherit;text-decoration:none}
        .brand img{max-height:2.5rem;max-width:12rem}h1{margin:.5rem 0;font-size:1.6rem}
        .follow{margin:.25rem 0 1rem;font-size:.95rem}.desc{display:block;color:#555;font-size:.85rem}
        h3.group{margin:1rem 0 .25rem;font-size:1rem;color:#333}
        .banner{padding:1rem;border-radius:.5rem;font-weight:600;font-size:1.15rem}
        .operational{background:#e3f5e8;color:#0b5e26}.degraded_performance{background:#fff4d6;color:#6b4e00}
        .partial_outage{background:#ffe6cc;color:#7a3500}.major_outage{background:#fde2e2;color:#8b0000}
        .under_maintenance{background:#e3ecfd;color:#0b3d8b}article.maintenance{border-left:4px solid #36c;padding:.25rem 1rem;margin:1rem 0}
        ul.components{list-style:none;padding:0;margin:0}ul.components li{display:flex;flex-wrap:wrap;gap:.25rem 1rem;justify-content:space-between;padding:.4rem 0;border-bottom:1px solid #eee}
        article.incident{border-left:4px solid #c00;padding:.25rem 1rem;margin:1rem 0}article.resolved{border-color:#2a7}
        .meta{color:#555;font-size:.9rem}ol.updates{padding-left:1.2rem}a{color:#0645ad}
        fieldset{border:1px solid #ccc;border-radius:.5rem;min-width:0}input[type=email]{box-sizing:border-box;width:100%;max-width:24rem;font:inherit;padding:.4rem}
        button{font:inherit;padding:.4rem 1rem}.error{color:#8b0000;font-weight:600}.choice{margin:.25rem 0}
        """

    /// `subscribe`: the page links to the email sign-up (a subscribers channel is configured).
    func html(title: String, subscribe: Bool = false) -> String {
        let banner = overall == "operational" ? "All systems operational" : Self.label(overall)
        var s = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Self.escape(title))</title>
            <link rel="alternate" type="application/atom+xml" title="\(Self.escape(title)) feed" href="/status/feed.atom">
            <style>\(Self.stylesheet)</style></head>
            <body><header>\(brandHTML(title: title))
            <p class="follow">Follow updates: \(subscribe ? "<a href=\"/status/subscribe\">by email</a> · " : "")<a href="/status/feed.atom">Atom feed</a> · <a href="/status.json">JSON</a></p>
            <p class="banner \(overall)" role="status">\(Self.escape(banner))</p></header><main>
            """
        let groups = componentGroups
        if !groups.isEmpty {
            s += "<section aria-labelledby=\"components\"><h2 id=\"components\">Components</h2>"
            for (group, rows) in groups {
                if let group { s += "<h3 class=\"group\">\(Self.escape(group))</h3>" }
                s += "<ul class=\"components\">" + rows.map { row in
                    "<li><span>\(Self.escape(row.name))"
                        + (row.description.map { "<span class=\"desc\">\(Self.escape($0))</span>" } ?? "")
                        + "</span><span class=\"\(row.status)\">\(Self.label(row.status))</span></li>"
                }.joined() + "</ul>"
            }
            s += "</section>"
        }
        let planned = inProgress + upcoming
        if !planned.isEmpty {
            s += "<section aria-labelledby=\"maintenance\"><h2 id=\"maintenance\">Scheduled maintenance</h2>"
                + planned.map(maintenanceHTML).joined() + "</section>"
        }
        s += "<section aria-labelledby=\"open\"><h2 id=\"open\">Current incidents</h2>"
        s += open.isEmpty ? "<p>No incidents right now.</p>" : open.map(entryHTML).joined()
        s += "</section><section aria-labelledby=\"recent\"><h2 id=\"recent\">Recently resolved</h2>"
        s += resolved.isEmpty ? "<p>Nothing recently.</p>" : resolved.map(entryHTML).joined()
        if !recentMaintenance.isEmpty {
            s += "</section><section aria-labelledby=\"done\"><h2 id=\"done\">Recent maintenance</h2>"
                + recentMaintenance.map(maintenanceHTML).joined()
        }
        s += "</section></main><footer><p class=\"meta\">Updated \(Self.time(generatedAt)) · <a href=\"/status/feed.atom\">Atom feed</a> · <a href=\"/status.json\">JSON</a></p></footer></body></html>\n"
        return s
    }

    static func maintenanceState(_ status: String) -> String {
        switch status {
        case "in_progress": return "In progress"
        case "completed": return "Completed"
        case "cancelled": return "Cancelled"
        default: return "Scheduled"
        }
    }

    func maintenanceHTML(_ w: Silence) -> String {
        let m = w.maintenance ?? Maintenance(title: "", components: [])
        let status = w.maintenanceStatus(at: generatedAt)
        var s = "<article class=\"maintenance \(status)\"><h3>\(Self.escape(m.title))</h3>"
        s += "<p class=\"meta\">\(Self.maintenanceState(status)) · Affects: \(Self.escape(m.components.joined(separator: ", ")))"
        s += status == "cancelled" ? "</p>" : " · \(Self.time(w.startsAt)) to \(Self.time(w.endsAt))</p>"
        if let message = m.message { s += "<p>\(Self.escape(message))</p>" }
        return s + "</article>"
    }

    /// The heading: the logo (if any) and the name, linked to the organisation's home page.
    func brandHTML(title: String) -> String {
        var inner = ""
        if settings.logo != nil { inner += "<img src=\"/status/logo\" alt=\"\">" }
        inner += "<h1>\(Self.escape(title))</h1>"
        if let url = settings.url {
            inner = "<a href=\"\(Self.escape(url))\" class=\"brand\">\(inner)</a>"
        }
        return "<div class=\"brand\">\(inner)</div>"
    }

    // MARK: Atom

    func atom(title: String) -> String {
        let updated = RFC3339.format((posts.map(\.postedAt) + maintenance.compactMap(\.lastChanged)).max() ?? generatedAt)
        var s = """
            <?xml version="1.0" encoding="utf-8"?>
            <feed xmlns="http://www.w3.org/2005/Atom">
            <id>urn:herald:status</id>
            <title>\(Self.escape(title))</title>
            <updated>\(updated)</updated>
            <author><name>\(Self.escape(title))</name></author>
            <link rel="alternate" type="text/html" href="/status"/>

            """
        for p in posts.sorted(by: { $0.postedAt > $1.postedAt }).prefix(100) {
            let prefix = p.kind == .notice ? "Investigating" : p.kind == .update ? "Update" : "Resolved"
            var text = "\(prefix): \(p.title)."
            if !p.components.isEmpty { text += " Affected: \(p.components.joined(separator: ", "))." }
            if p.kind.isResolution, let r = p.resolvedAt {
                text += " Down from \(MessageRenderer.humanTime(p.openedAt)) to \(MessageRenderer.humanTime(r)); service is restored."
            }
            if let m = p.message { text += " \(m)" }
            s += "<entry><id>urn:herald:status:\(Self.escape(p.id))</id>"
            s += "<title>\(Self.escape("\(prefix): \(p.title)"))</title>"
            s += "<updated>\(RFC3339.format(p.postedAt))</updated><published>\(RFC3339.format(p.postedAt))</published>"
            if let l = p.link { s += "<link rel=\"alternate\" href=\"\(Self.escape(l))\"/>" }
            s += "<content type=\"text\">\(Self.escape(text))</content></entry>\n"
        }
        // One entry per maintenance window, updated at each step.
        for w in maintenance {
            let m = w.maintenance ?? Maintenance(title: "", components: [])
            let status = w.maintenanceStatus(at: generatedAt)
            let heading = "\(status == "scheduled" ? "Scheduled maintenance" : "Maintenance \(Self.maintenanceState(status).lowercased())"): \(m.title)"
            var text = "\(heading). Affects: \(m.components.joined(separator: ", "))."
            if status != "cancelled" {
                text += " From \(MessageRenderer.humanTime(w.startsAt)) to \(MessageRenderer.humanTime(w.endsAt))."
            }
            if let message = m.message { text += " \(message)" }
            let changed = RFC3339.format(w.lastChanged ?? w.createdAt)
            s += "<entry><id>urn:herald:status:maintenance:\(Self.escape(w.id))</id>"
            s += "<title>\(Self.escape(heading))</title>"
            s += "<updated>\(changed)</updated><published>\(RFC3339.format(w.createdAt))</published>"
            s += "<content type=\"text\">\(Self.escape(text))</content></entry>\n"
        }
        return s + "</feed>\n"
    }
}
