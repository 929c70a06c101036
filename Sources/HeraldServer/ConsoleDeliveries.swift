import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import Hummingbird

/// The console's deliveries: the filtered list, one delivery with every attempt and the request
/// it makes, replaying one, and replaying a filtered set after a preview (the rules of
/// `POST /v1/replay`: only failed deliveries; follow-ups of a cycle that is over are left alone).
extension HeraldApplication {
    func deliveriesPage(_ session: ConsoleSession, query: Hummingbird.Parameters) async throws -> Response {
        let e = ConsoleLayout.escape
        func value(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        var filter = try Self.filter(state: value("state"), channel: value("channel"), incident: value("incident"), since: value("since"))
        filter.limit = 200
        let deliveries = try await store.deliveries(filter)
        let channelNames = live.withLock { $0.config.channels.map(\.name) }
        var body = ""
        if let n = query.get("replayed").flatMap(Int.init) {
            body += "<p class=\"notice\" role=\"status\">\(n) deliveries replayed: they are queued again.</p>"
        }
        func option(_ v: String, _ selected: String?) -> String {
            "<option value=\"\(e(v))\"\(v == (selected ?? "") ? " selected" : "")>\(e(v.isEmpty ? "any" : v))</option>"
        }
        body += """
            <form class="filters" method="get" action="/console/deliveries" aria-label="Filter deliveries">
            <p><label for="state">State</label><br><select id="state" name="state">\
            \(([""] + DeliveryState.allCases.map(\.rawValue)).map { option($0, value("state")) }.joined())</select></p>
            <p><label for="channel">Channel</label><br><select id="channel" name="channel">\
            \(([""] + channelNames).map { option($0, value("channel")) }.joined())</select></p>
            <p><label for="incident">Incident</label><br><input type="text" id="incident" name="incident" value="\(e(value("incident") ?? ""))"></p>
            <p><label for="since">Since</label><br><input type="text" id="since" name="since" placeholder="2h or RFC 3339" value="\(e(value("since") ?? ""))"></p>
            <p><button type="submit">Filter</button></p>
            </form>
            """
        let failedHere = filter.state == nil || filter.state == .failed
        if failedHere && deliveries.contains(where: { $0.state == .failed }) {
            let fields = [("channel", value("channel") ?? ""), ("incident", value("incident") ?? ""), ("since", value("since") ?? "")]
            body += "<div class=\"actions\">" + ConsoleLayout.button("/console/replay", csrf: session.csrf,
                                                                     label: "Replay the failed deliveries of this filter…",
                                                                     fields: fields) + "</div>"
        }
        body += ConsoleLayout.table(["Delivery", "State", "Kind", "Channel", "Recipient", "Incident", "Attempts", "Last error", "Updated"],
                                    deliveries.map { d in
            [ConsoleLayout.link("/console/deliveries/", d.id), ConsoleLayout.badge(d.state.rawValue), e(d.kind.rawValue), e(d.channel),
             e(d.recipient ?? ""), ConsoleLayout.link("/console/incidents/", d.incident), "\(d.attempts)",
             ConsoleLayout.shorten(d.lastError, 120), ConsoleLayout.time(d.updatedAt)]
        }, caption: deliveries.count == filter.limit ? "The newest \(filter.limit); narrow the filter to see others." : nil,
           empty: "No delivery matches.")
        body += "<p class=\"meta\">This page refreshes itself every 10 seconds.</p>"
        return ConsoleLayout.response(.ok, ConsoleLayout.page("Deliveries", user: session.principal, csrf: session.csrf, refresh: 10,
                                                              body: body))
    }

    func deliveryPage(_ session: ConsoleSession, id: String) async throws -> Response {
        guard let detail = try await store.delivery(id: id) else { throw APIError.notFound("no delivery \(id)") }
        let d = detail.delivery
        let e = ConsoleLayout.escape
        let redactor = self.redactor
        var body = "<dl class=\"facts\">"
        body += "<dt>State</dt><dd>\(ConsoleLayout.badge(d.state.rawValue))</dd>"
        body += "<dt>Kind</dt><dd>\(e(d.kind.rawValue))</dd>"
        body += "<dt>Channel</dt><dd>\(e(d.channel))\(d.recipient.map { " → " + e($0) } ?? "")</dd>"
        body += "<dt>Incident</dt><dd>\(ConsoleLayout.link("/console/incidents/", d.incident)) (cycle \(d.cycle))</dd>"
        body += "<dt>Created</dt><dd>\(ConsoleLayout.time(d.createdAt))</dd>"
        if let due = d.dueAt, d.state == .queued || d.state == .retrying { body += "<dt>Next attempt</dt><dd>\(ConsoleLayout.time(due))</dd>" }
        if let at = d.deliveredAt { body += "<dt>Delivered</dt><dd>\(ConsoleLayout.time(at))</dd>" }
        if let receipt = d.receipt { body += "<dt>Receipt</dt><dd>\(e(redactor.redact(receipt)))</dd>" }
        if let error = d.lastError { body += "<dt>Last error</dt><dd>\(e(redactor.redact(error)))</dd>" }
        if d.replays > 0 { body += "<dt>Replayed</dt><dd>\(d.replays) times</dd>" }
        if let silence = d.silencedBy { body += "<dt>Silence</dt><dd>\(e(silence))</dd>" }
        body += "</dl>"
        if d.state == .failed {
            body += "<div class=\"actions\">" + ConsoleLayout.button("/console/deliveries/\(e(d.id))/replay", csrf: session.csrf,
                                                                     label: "Replay") + "</div>"
        }
        body += "<h2>Attempts</h2>"
        body += ConsoleLayout.table(["#", "Started", "Took", "Outcome", "Status", "Error"], detail.attempts.map { a in
            ["\(a.number)\(a.replay > 0 ? " (replay \(a.replay))" : "")", ConsoleLayout.time(a.startedAt),
             String(format: "%.1f ms", a.durationMs), ConsoleLayout.badge(a.outcome.rawValue) + (a.late ? " late" : ""),
             a.status.map(String.init) ?? "", e(redactor.redact(a.error ?? a.reason ?? ""))]
        }, empty: "No attempt yet.")
        body += "<h2>The request</h2>"
        body += "<p class=\"meta\">What this channel sends for this delivery, rendered from the stored event with the current "
            + "templates; every configured secret is masked, and a follow-up's thread reference is a placeholder.</p>"
        body += "<pre>\(e(await renderedRequest(d)))</pre>"
        return ConsoleLayout.response(.ok, ConsoleLayout.page("Delivery \(d.id)", user: session.principal, csrf: session.csrf, body: body))
    }

    /// The request the delivery's channel makes for it, captured instead of sent, secrets masked.
    func renderedRequest(_ d: Delivery) async -> String {
        let (config, redactor) = live.withLock { ($0.config, $0.redactor) }
        guard let channelConfig = config.channels.first(where: { $0.name == d.channel }) else {
            return "(the channel \(d.channel) is no longer configured)"
        }
        do {
            guard let event = try await store.event(id: d.eventId),
                  let incident = try await store.incident(key: d.incident, deliveries: false, excluding: nil)?.incident else {
                return "(the event of this delivery is no longer kept)"
            }
            let capture = RequestCapture()
            let channels = try ChannelRegistry.build(config, transport: capture, console: { capture.console($0) })
            guard let channel = channels[d.channel] else { return "(the channel could not be built)" }
            let renderer = try MessageRenderer(templates: channelConfig.templates ?? config.templates)
            let plain = channel.fitted(renderer.render(kind: d.kind, event: event, incident: incident))
            let formatted = channel.fitted(renderer.render(kind: d.kind, event: event, incident: incident, markup: channel.markup))
            let message = OutboundMessage(
                deliveryId: d.id, kind: d.kind, recipient: d.recipient, event: event, incident: incident, title: plain.title,
                text: plain.text, thread: d.kind.isFollowUp ? "thread-reference" : nil,
                threadDeliveryId: d.kind.isFollowUp ? "notice-delivery" : nil, noticeTitle: d.kind.isFollowUp ? incident.title : nil,
                noticeDeliveryId: d.kind.isFollowUp ? "notice-delivery" : nil,
                references: d.kind.isFollowUp ? ["<notice-delivery@herald.invalid>"] : [],
                formattedTitle: formatted.title, formattedText: formatted.text)
            var out = ""
            do {
                _ = try await channel.deliver(message)
            } catch let error as DeliveryError where capture.sent.isEmpty {
                out = "(nothing to show: \(error.description))\n"
            } catch {
                // What was captured is what counts here.
            }
            out += capture.sent.joined()
            return redactor.redact(out.isEmpty ? "(this channel makes no outside request)" : out)
        } catch {
            return "(cannot render: \(redactor.redact("\(error)")))"
        }
    }

    func replayOne(_ id: String) async throws -> Response {
        _ = try await replayFailed(id)
        return ConsoleLayout.redirect("/console/deliveries/\(id)")
    }

    /// Without `confirm`, a preview (how many, which); with it, the replay.
    func replayFiltered(_ session: ConsoleSession, _ fields: [(String, String)]) async throws -> Response {
        func value(_ name: String) -> String? { fields.first { $0.0 == name }?.1.trimmingWhitespace().nilIfEmpty }
        let filter = try Self.filter(state: DeliveryState.failed.rawValue, channel: value("channel"), incident: value("incident"),
                                     since: value("since"))
        let confirmed = value("confirm") == "yes"
        let result = try await store.replay(ids: nil, filter: filter, dryRun: !confirmed, now: Date())
        let kept = [("channel", value("channel") ?? ""), ("incident", value("incident") ?? ""), ("since", value("since") ?? "")]
        if confirmed {
            dispatcher.wake(channels: result.channels)
            logger.info("deliveries replayed from the console", metadata: ["count": "\(result.count)", "by": "\(session.principal)"])
            let query = kept.filter { !$0.1.isEmpty }.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            return ConsoleLayout.redirect("/console/deliveries?" + (query + ["replayed=\(result.count)"]).joined(separator: "&"))
        }
        let e = ConsoleLayout.escape
        let scope = kept.filter { !$0.1.isEmpty }.map { "\($0.0) \(e($0.1))" }.joined(separator: ", ")
        var body = "<p>\(result.count) failed deliver\(result.count == 1 ? "y" : "ies")\(scope.isEmpty ? "" : " (" + scope + ")") "
            + "would be queued again.</p>"
        if !result.skipped.isEmpty {
            body += "<p class=\"meta\">\(result.skipped.count) others are left alone: follow-ups of incident cycles that are over "
                + "(their recipients got the summary).</p>"
        }
        body += "<ul>" + result.ids.prefix(200).map { "<li>" + ConsoleLayout.link("/console/deliveries/", $0) + "</li>" }.joined() + "</ul>"
        if result.ids.count > 200 { body += "<p class=\"meta\">and \(result.ids.count - 200) more.</p>" }
        if result.count > 0 {
            body += "<div class=\"actions\">" + ConsoleLayout.button("/console/replay", csrf: session.csrf,
                                                                     label: "Replay these \(result.count)", fields: kept + [("confirm", "yes")])
                + "<a href=\"/console/deliveries?state=failed\">Cancel</a></div>"
        }
        return ConsoleLayout.response(.ok, ConsoleLayout.page("Replay failed deliveries", user: session.principal, csrf: session.csrf,
                                                              body: body))
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
