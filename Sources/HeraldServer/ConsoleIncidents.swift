import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// The console's incidents: the list (open first, then recent), one incident's timeline and
/// per-recipient report (what `herald incidents show` prints), and acknowledging or resolving it
/// as the signed-in operator.
extension HeraldApplication {
    func incidentsPage(_ session: ConsoleSession) async throws -> Response {
        let all = try await store.incidents(limit: 200)
        let open = all.filter { $0.status == .open }.sorted { $0.openedAt > $1.openedAt }
        let recent = all.filter { $0.status != .open }
        func rows(_ list: [Incident]) -> [[String]] {
            list.map { i in
                [ConsoleLayout.badge(i.acknowledgedAt != nil && i.status == .open ? "acknowledged" : i.status.rawValue),
                 ConsoleLayout.badge(i.severity.rawValue),
                 ConsoleLayout.link("/console/incidents/", i.key, text: i.title) + "<div class=\"meta\">\(ConsoleLayout.escape(i.key))</div>",
                 ConsoleLayout.time(i.openedAt), ConsoleLayout.time(i.resolvedAt ?? i.updatedAt)]
            }
        }
        let body = """
            <h2 id="open">Open (\(open.count))</h2>
            \(ConsoleLayout.table(["Status", "Severity", "Incident", "Opened", "Last change"], rows(open), empty: "No open incident."))
            <h2 id="recent">Recent</h2>
            \(ConsoleLayout.table(["Status", "Severity", "Incident", "Opened", "Resolved"], rows(recent), empty: "Nothing resolved recently."))
            <p class="meta">This page refreshes itself every 10 seconds.</p>
            """
        return ConsoleLayout.response(.ok, ConsoleLayout.page("Incidents", user: session.principal, csrf: session.csrf, refresh: 10,
                                                              body: body))
    }

    func incidentPage(_ session: ConsoleSession, key: String) async throws -> Response {
        let subscribers = routing.subscriberChannel
        guard let detail = try await store.incident(key: key, deliveries: true, excluding: subscribers) else {
            throw APIError.notFound("no incident \(key)")
        }
        let i = detail.incident
        let e = ConsoleLayout.escape
        let silenceEnds = try await silenceEnds(detail.deliveries)
        var body = "<dl class=\"facts\">"
        body += "<dt>Key</dt><dd>\(e(i.key))</dd>"
        body += "<dt>Status</dt><dd>\(ConsoleLayout.badge(i.status.rawValue)) cycle \(i.cycle)</dd>"
        body += "<dt>Severity</dt><dd>\(ConsoleLayout.badge(i.severity.rawValue))</dd>"
        body += "<dt>Opened</dt><dd>\(ConsoleLayout.time(i.openedAt))</dd>"
        if let at = i.acknowledgedAt {
            body += "<dt>Acknowledged</dt><dd>\(ConsoleLayout.time(at)) by \(e(i.acknowledgedBy ?? "?"))</dd>"
        }
        if let at = i.resolvedAt { body += "<dt>Resolved</dt><dd>\(ConsoleLayout.time(at))</dd>" }
        if !i.components.isEmpty { body += "<dt>Components</dt><dd>\(e(i.components.joined(separator: ", ")))</dd>" }
        if let link = i.link { body += "<dt>Link</dt><dd>\(ConsoleLayout.outside(link))</dd>" }
        body += "</dl>"
        let path = "/console/incidents/" + (key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)
        if i.status == .open {
            func form(_ action: String, _ label: String, danger: Bool) -> String {
                """
                <form class="stack" method="post" action="\(e(path + "/" + action))">
                <input type="hidden" name="csrf" value="\(e(session.csrf))">
                <p><label for="\(action)-message">\(e(label)): message (optional)</label><br>
                <textarea id="\(action)-message" name="message" maxlength="4096"></textarea></p>
                <p><button type="submit"\(danger ? " class=\"danger\"" : "")>\(e(label))</button></p>
                </form>
                """
            }
            body += "<div class=\"actions\">"
            if i.acknowledgedAt == nil { body += form("acknowledge", "Acknowledge", danger: false) }
            body += form("resolve", "Resolve", danger: true) + "</div>"
        }
        body += "<h2>Timeline</h2>"
        body += ConsoleLayout.table(["Received", "Event", "Source", "By", "Title and message"], detail.events.map { ev in
            [ConsoleLayout.time(ev.receivedAt), ConsoleLayout.badge(ev.status.rawValue), e(ev.source ?? "api"), e(ev.actor ?? ""),
             "<strong>\(e(ev.title))</strong>" + (ev.message.map { "<div>\(ConsoleLayout.shorten($0, 2000))</div>" } ?? "")]
        }, empty: "No event of this cycle is kept.")
        body += "<h2>Who was told</h2>"
        let report = IncidentReport(events: detail.events, deliveries: detail.deliveries, silenceEnds: silenceEnds)
        func leg(_ l: IncidentReport.Leg?) -> String {
            guard let l else { return "" }
            var s = ConsoleLayout.link("/console/deliveries/", l.deliveryId, text: l.state.rawValue.replacingOccurrences(of: "_", with: " "))
            if let at = l.deliveredAt { s += " " + ConsoleLayout.time(at) }
            if let error = l.error { s += "<div class=\"meta\">\(ConsoleLayout.shorten(error))</div>" }
            if let silence = l.silencedBy {
                s += "<div class=\"meta\">silenced by \(e(silence))\(l.silencedUntil.map { " until " + ConsoleLayout.time($0) } ?? "")</div>"
            }
            return s
        }
        body += ConsoleLayout.table(["Channel", "Recipient", "Notice", "Updates", "All-clear", "Delay"], report.rows.map { r in
            [e(r.channel), e(r.recipient ?? ""), leg(r.notice), "\(r.updates)", leg(r.allClear),
             r.allClearDelayMs.map { String(format: "%.0f ms", $0) } ?? ""]
        }, empty: "Nobody was routed this incident.")
        if let subscribers {
            let counts = try await store.deliveryCounts(incident: key, cycle: i.cycle, channel: subscribers)
            if !counts.isEmpty {
                body += "<h2>Subscribers (\(e(subscribers)))</h2><ul>"
                    + counts.sorted { $0.key < $1.key }.map { "<li>\(e($0.key.replacingOccurrences(of: ":", with: " "))): \($0.value)</li>" }.joined()
                    + "</ul>"
            }
        }
        body += "<p><a href=\"/console/deliveries?incident=\(e(key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key))\">"
            + "All deliveries of this incident</a></p>"
        return ConsoleLayout.response(.ok, ConsoleLayout.page(i.title, user: session.principal, csrf: session.csrf, body: body))
    }

    /// Acknowledge or resolve from the incident's page: an event from the console, by the operator.
    func postOperatorEvent(_ session: ConsoleSession, key: String, action: String, fields: [(String, String)]) async throws -> Response {
        let status: EventStatus
        switch action {
        case "acknowledge": status = .acknowledged
        case "resolve": status = .resolved
        default: throw APIError.notFound("no action \(action)")
        }
        guard let incident = try await store.incident(key: key, deliveries: false, excluding: nil)?.incident else {
            throw APIError.notFound("no incident \(key)")
        }
        var message = fields.first { $0.0 == "message" }?.1.trimmingWhitespace() ?? ""
        if !message.isEmpty {
            let (checked, problem) = TextRules.check(message, multiline: true)
            if let problem { throw APIError.badRequest(problem, field: "message") }
            guard checked.utf8.count <= 4096 else { throw APIError.badRequest("at most 4096 bytes", field: "message") }
            message = checked
        }
        let now = Date()
        let event = Event(id: Identifier.make(prefix: "evt", at: now), incident: key, status: status, severity: incident.severity,
                          title: incident.title, message: message.isEmpty ? nil : message, occurredAt: now, receivedAt: now,
                          source: "console", actor: session.principal, omitted: [.severity, .components, .labels, .link])
        _ = try await commit([event])
        logger.info("incident \(status.rawValue) from the console", metadata: ["incident": "\(key)", "by": "\(session.principal)"])
        return ConsoleLayout.redirect("/console/incidents/" + (key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key))
    }
}
