import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import Hummingbird

/// The console's channels: each channel's health over the last hour on this node (from the
/// dispatcher's per-minute window, not a scan of the attempts table), its queue, its rate-limit
/// wait, and a button that sends a test message (what `herald test-channel` does).
extension HeraldApplication {
    func channelsPage(_ session: ConsoleSession) async throws -> Response {
        let e = ConsoleLayout.escape
        let reports = channelReports()
        let hour = dispatcher.health.lastHour()
        let waits = dispatcher.rateWaits()
        let depths = try await store.queueDepths()
        let now = Date()
        func ms(_ v: Double?) -> String {
            guard let v else { return "" }
            return v.isInfinite ? "&gt; 10 min" : v < 10 ? String(format: "≤ %.1f ms", v) : String(format: "≤ %.0f ms", v)
        }
        let rows: [[String]] = reports.map { r in
            let h = hour[r.name] ?? AttemptWindow.Summary()
            let wait = waits[r.name].map { String(format: "%.1f s", max(0, $0.timeIntervalSince(now))) } ?? ""
            var lastError = ""
            if let error = h.lastError ?? r.last_error {
                lastError = ConsoleLayout.shorten(redactor.redact(error), 200)
                if let at = h.lastErrorAt { lastError += "<div class=\"meta\">\(ConsoleLayout.time(at))</div>" }
            }
            return ["<strong>\(e(r.name))</strong><div class=\"meta\">\(e(r.type))</div>", ConsoleLayout.badge(r.state),
                    "\(h.delivered)", "\(h.retried)", "\(h.failed)", ms(h.p50Ms), ms(h.p99Ms), lastError,
                    "\(depths[r.name] ?? 0)", "\(r.in_flight)", wait,
                    ConsoleLayout.button("/console/channels/\(e(r.name))/test", csrf: session.csrf, label: "Send a test message")]
        }
        let body = ConsoleLayout.table(["Channel", "Health", "Delivered", "Retried", "Failed", "p50", "p99", "Last error", "Queued",
                                        "In flight", "Rate-limit wait", ""], rows, empty: "No channel is configured.")
            + "<p class=\"meta\">Attempts of the last hour on this node; the queue is the whole store's.</p>"
        return ConsoleLayout.response(.ok, ConsoleLayout.page("Channels", user: session.principal, csrf: session.csrf, body: body))
    }

    func testChannel(_ session: ConsoleSession, name: String) async throws -> Response {
        let (channel, config, redactor) = live.withLock { ($0.channels[name], $0.config, $0.redactor) }
        guard let channel, let channelConfig = config.channels.first(where: { $0.name == name }) else {
            throw APIError.notFound("no channel \(name)")
        }
        let renderer = try MessageRenderer(templates: channelConfig.templates ?? config.templates)
        let outcomes = await TestMessage.send(through: channel, name: name, renderer: renderer)
        logger.info("test message from the console", metadata: [
            "channel": "\(name)", "by": "\(session.principal)", "delivered": "\(outcomes.filter(\.delivered).count)/\(outcomes.count)",
        ])
        let e = ConsoleLayout.escape
        var body = ""
        for o in outcomes {
            let who = o.recipient.map { " to \(e($0))" } ?? ""
            if let error = o.error {
                body += "<p class=\"error\" role=\"alert\">Failed\(who) (\(error.isTransient ? "would be retried" : "permanent")): "
                    + "\(e(redactor.redact(error.description)))</p>"
            } else {
                body += "<p class=\"notice\" role=\"status\">Delivered\(who): reference \(e(redactor.redact(o.reference ?? "(none)")))"
                    + "\(o.status.map { ", status \($0)" } ?? "")</p>"
            }
        }
        body += "<p class=\"meta\">Nothing was stored and no route was consulted.</p><p><a href=\"/console/channels\">Back to channels</a></p>"
        return ConsoleLayout.response(.ok, ConsoleLayout.page("Test message via \(name)", user: session.principal, csrf: session.csrf,
                                                                 body: body))
    }
}
