import Foundation
import HeraldCore
import HeraldStore
import HTTPTypes
import Hummingbird

/// The console's silences and maintenance windows: the ones in force or pending, a form to add a
/// silence (the rules of `POST /v1/silences`), and expiring one (for a maintenance window:
/// cancelling it, which posts its last step).
extension HeraldApplication {
    struct SilenceForm {
        var matchers = ""
        var channels: [String] = []
        var duration = "2h"
        var comment = ""
    }

    func silencesPage(_ session: ConsoleSession, status: HTTPResponse.Status = .ok, error: String? = nil,
                      form: SilenceForm = SilenceForm(), notice: String? = nil) async throws -> Response {
        let e = ConsoleLayout.escape
        let now = Date()
        let all = try await store.silences(includeExpired: false, now: now, limit: 500)
        let channelNames = live.withLock { $0.config.channels.map(\.name) }
        var body = ""
        if let notice { body += "<p class=\"notice\" role=\"status\">\(e(notice))</p>" }
        func row(_ s: Silence) -> [String] {
            let what = s.maintenance.map { "<strong>\(e($0.title))</strong><div class=\"meta\">\(e($0.components.joined(separator: ", ")))</div>" }
                ?? e((s.matchers.map(\.description) + s.channels.map { "channel \($0)" }).joined(separator: ", "))
            return [what, ConsoleLayout.badge(s.state(at: now)), ConsoleLayout.time(s.startsAt), ConsoleLayout.time(s.endsAt),
                    e(s.createdBy), ConsoleLayout.shorten(s.comment, 300),
                    ConsoleLayout.button("/console/silences/\(e(s.id))/expire", csrf: session.csrf,
                                         label: s.isMaintenance ? "Cancel" : "Expire", danger: true)]
        }
        let headings = ["What", "State", "Starts", "Ends", "By", "Comment", ""]
        body += "<h2>Silences</h2>" + ConsoleLayout.table(headings, all.filter { !$0.isMaintenance }.map(row),
                                                          empty: "No silence is in force or pending.")
        body += "<h2>Scheduled maintenance</h2>" + ConsoleLayout.table(headings, all.filter(\.isMaintenance).map(row),
                                                                       empty: "No maintenance is in progress or planned.")
        body += "<p class=\"meta\">Maintenance is planned with <code>herald maintenance add</code> or <code>POST /v1/maintenance</code>.</p>"
        body += "<h2 id=\"new\">Add a silence</h2>"
        if let error { body += "<p class=\"error\" role=\"alert\">\(e(error))</p>" }
        body += """
            <form class="stack" method="post" action="/console/silences">
            <input type="hidden" name="csrf" value="\(e(session.csrf))">
            <p><label for="matchers">Matchers, one per line</label><br>
            <textarea id="matchers" name="matchers" placeholder="service=web&#10;severity=~&quot;minor|info&quot;">\(e(form.matchers))</textarea></p>
            <fieldset><legend>Channels (none ticked: every channel)</legend>
            \(channelNames.enumerated().map { i, name in
                "<label><input type=\"checkbox\" name=\"channels\" value=\"\(e(name))\"\(form.channels.contains(name) ? " checked" : "")> \(e(name))</label> "
            }.joined())
            </fieldset>
            <p><label for="duration">For</label><br><input type="text" id="duration" name="duration" value="\(e(form.duration))" required></p>
            <p><label for="comment">Why</label><br><input type="text" id="comment" name="comment" value="\(e(form.comment))" required maxlength="4096"></p>
            <p><button type="submit">Add silence</button></p>
            </form>
            """
        return ConsoleLayout.response(status, ConsoleLayout.page("Silences and maintenance", user: session.principal, csrf: session.csrf,
                                                                 body: body))
    }

    func createSilence(_ session: ConsoleSession, _ fields: [(String, String)]) async throws -> Response {
        var form = SilenceForm()
        form.matchers = fields.first { $0.0 == "matchers" }?.1 ?? ""
        form.channels = fields.filter { $0.0 == "channels" }.map(\.1)
        form.duration = fields.first { $0.0 == "duration" }?.1.trimmingWhitespace() ?? ""
        form.comment = fields.first { $0.0 == "comment" }?.1 ?? ""
        let matchers = form.matchers.split(whereSeparator: \.isNewline).map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        let object: [String: Any] = ["matchers": matchers, "channels": form.channels, "duration": form.duration, "comment": form.comment]
        let now = Date()
        let silence: Silence
        do {
            silence = try parseSilence(object, author: session.principal, now: now)
        } catch let error as APIError {
            return try await silencesPage(session, status: error.status, error: (error.field.map { "\($0): " } ?? "") + error.message, form: form)
        }
        try await add(silence)
        return ConsoleLayout.redirect("/console/silences")
    }

    func expireSilence(_ session: ConsoleSession, id: String) async throws -> Response {
        _ = try await expire(silence: id, by: session.principal, now: Date())
        return ConsoleLayout.redirect("/console/silences")
    }
}
