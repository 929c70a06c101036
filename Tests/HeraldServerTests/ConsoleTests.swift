import Crypto
import Foundation
import HeraldCore
import HeraldServer
import HeraldStore
import HeraldTransport
import Synchronization
import Testing
import TestSupport

/// The operator console over HTTP, as a browser speaks to it: sign-in and its cookie, the guards
/// on every page and action (session, CSRF), hostile event text shown as text, no secret on any
/// page, sessions that end at sign-out and survive a restart. The whole flow in a real browser is
/// `StatusPageLayoutTests.anOperatorReplaysAFailedDeliveryAndResolvesAnIncidentInTheConsole`.
@Suite(.serialized) struct ConsoleTests {
    static let slackPath = "/services/T000/B000/slack-path-secret-0123456789"

    /// A server whose `hook` webhook fails while the sink answers 500 (two attempts), with a
    /// Slack channel whose webhook path is a secret too.
    static func start(sinkURL: String, dir: URL? = nil, restarting: Bool = false) async throws -> ServerTests.Running {
        let dir = try dir ?? temporaryDirectory()
        let yaml = """
            server:
              listen: 127.0.0.1:0
              tokens:
                - {name: monitoring, token: "\(ServerTests.ingestToken)", scopes: [ingest]}
                - {name: ops, token: "\(ServerTests.adminToken)", scopes: [admin]}
            store: {path: \(dir.path)/herald.sqlite}
            retry: {initial: 50ms, max: 100ms, max_attempts: 2, max_age: 1h}
            channels:
              hook:
                type: webhook
                url: \(sinkURL)/in
                secret: "\(ServerTests.webhookSecret)"
              chat:
                type: slack
                webhook_url: \(sinkURL)\(slackPath)
            routes:
              - channels: [hook, chat]
            """
        return try await ServerTests.launch(yaml, file: "console.yaml", restarting: restarting)
    }

    /// A browser's view of the console: its cookies, and pages as text.
    final class Browser: @unchecked Sendable {
        let server: ServerTests.Running
        var cookies: [String: String] = [:]
        init(_ server: ServerTests.Running) { self.server = server }

        func send(_ method: String, _ path: String, form: [(String, String)]? = nil) async throws -> (Int, String, HTTPResponse) {
            var headers: [(String, String)] = [("Content-Type", "application/x-www-form-urlencoded")]
            if !cookies.isEmpty { headers.append(("Cookie", cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))) }
            let body = form.map { $0.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&") }
            let (status, _, response) = try await server.call(method, path, token: nil, body: body, headers: headers)
            for (name, value) in response.headers where name.lowercased() == "set-cookie" {
                let pair = value.prefix { $0 != ";" }.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if value.contains("Max-Age=0") { cookies[String(pair[0])] = nil } else { cookies[String(pair[0])] = String(pair[1]) }
            }
            return (status, String(decoding: response.body, as: UTF8.self), response)
        }

        static func encode(_ s: String) -> String {
            s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
        }

        /// The value of a hidden field named `name` on a page.
        static func hidden(_ name: String, in page: String) -> String? {
            guard let r = page.range(of: "name=\"\(name)\" value=\"") else { return nil }
            return String(page[r.upperBound...].prefix { $0 != "\"" })
        }

        func signIn(_ token: String = ServerTests.adminToken) async throws -> (Int, String, HTTPResponse) {
            let (_, form, _) = try await send("GET", "/console/signin")
            let csrf = try #require(Self.hidden("csrf", in: form))
            return try await send("POST", "/console/signin", form: [("csrf", csrf), ("next", "/console/incidents"), ("token", token)])
        }

        /// The session's CSRF token, as every signed-in page carries it in its sign-out form.
        func csrf() async throws -> String {
            let (_, page, _) = try await send("GET", "/console/incidents")
            return try #require(Self.hidden("csrf", in: page), "no CSRF token on: \(page.prefix(300))")
        }
    }

    func post(_ s: ServerTests.Running, _ body: String) async throws {
        let (status, said, _) = try await s.call("POST", "/v1/events", body: body)
        #expect(status == 202, "\(said)")
    }

    @Test func withoutASessionPagesGoToSignInAndActionsAreRefused() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await Self.start(sinkURL: sink.url)
        try await post(s, #"{"incident":"db","status":"triggered","severity":"critical","title":"DB down"}"#)
        #expect(await sink.waitFor(count: 2))
        let b = Browser(s)
        for path in ["/console/incidents", "/console/incidents/db", "/console/deliveries?state=failed", "/console/channels", "/console/silences"] {
            let (status, _, response) = try await b.send("GET", path)
            #expect(status == 303, "\(path)")
            #expect(response.header("Location") == "/console/signin?next=" + Browser.encode(path).replacingOccurrences(of: "~", with: "%7E"),
                    "\(path): \(response.header("Location") ?? "-")")
        }
        for path in ["/console/incidents/db/resolve", "/console/replay", "/console/channels/hook/test", "/console/silences", "/console/signout"] {
            let (status, page, _) = try await b.send("POST", path, form: [("csrf", "guess"), ("confirm", "yes"), ("comment", "x")])
            #expect(status == 401, "\(path)")
            #expect(page.contains("Nothing was changed"))
        }
        // Nothing changed: the incident is open, no silence was added, no test message went out.
        #expect(try await s.app.store.incident(key: "db")?.incident.status == .open)
        #expect(try await s.app.store.silences(includeExpired: true, now: Date(), limit: 10).isEmpty)
        #expect(sink.received.count == 2)
        await s.stop()
        await sink.stop()
    }

    @Test func signingInTakesAnAdminTokenAndTheFormsOwnCookie() async throws {
        let s = try await Self.start(sinkURL: "http://127.0.0.1:\(closedPort())")
        let b = Browser(s)
        // The ingest token is valid but not an admin's.
        var (status, page, _) = try await b.signIn(ServerTests.ingestToken)
        #expect(status == 403 && page.contains("lacks the admin scope"))
        (status, page, _) = try await b.signIn("not-a-token")
        #expect(status == 401 && page.contains("not a valid token"))
        // A sign-in form posted from elsewhere has no cookie to match.
        let (_, form, _) = try await b.send("GET", "/console/signin")
        let csrf = try #require(Browser.hidden("csrf", in: form))
        b.cookies = [:]
        (status, page, _) = try await b.send("POST", "/console/signin", form: [("csrf", csrf), ("token", ServerTests.adminToken)])
        #expect(status == 403 && b.cookies["herald_session"] == nil)
        // The real thing: a strict, script-proof cookie on /console, and back where it was going.
        let (ok, _, response) = try await b.signIn()
        #expect(ok == 303 && response.header("Location") == "/console/incidents")
        let cookie = try #require(response.headers.first { $0.0.lowercased() == "set-cookie" && $0.1.hasPrefix("herald_session=") }?.1)
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] { #expect(cookie.contains(attribute), "\(cookie)") }
        let secret = try #require(b.cookies["herald_session"])
        // The store holds the digest, not the cookie.
        #expect(try await s.app.store.consoleSession(idHash: secret, now: Date()) == nil)
        #expect(try await s.app.store.consoleSession(idHash: sha256Hex(secret), now: Date())?.principal == "ops")
        let (home, incidents, headers) = try await b.send("GET", "/console/incidents")
        #expect(home == 200 && incidents.contains("<h1>Incidents</h1>") && incidents.contains(">ops<"))
        let policy = try #require(headers.header("Content-Security-Policy"))
        #expect(policy.contains("default-src 'none'") && !policy.contains("script-src") && !policy.contains("unsafe-inline"))
        #expect(headers.header("Cache-Control") == "no-store")
        await s.stop()
    }

    @Test func aFormWithoutTheSessionsTokenChangesNothingAndWithItResolvesForTheOperator() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await Self.start(sinkURL: sink.url)
        try await post(s, #"{"incident":"api/eu:1","status":"triggered","severity":"critical","title":"API errors"}"#)
        #expect(await sink.waitFor(count: 2))
        let b = Browser(s)
        #expect(try await b.signIn().0 == 303)
        // The key has a slash and a colon (as Nagios and Alertmanager keys do): links encode them.
        #expect(try await b.send("GET", "/console/incidents").1.contains("href=\"/console/incidents/api%2Feu%3A1\""))
        for form in [[("message", "fixed")], [("csrf", "wrong-token"), ("message", "fixed")]] {
            let (status, page, _) = try await b.send("POST", "/console/incidents/api%2Feu%3A1/resolve", form: form)
            #expect(status == 403 && page.contains("nothing was changed"))
        }
        #expect(try await s.app.store.incident(key: "api/eu:1")?.incident.status == .open)
        let csrf = try await b.csrf()
        let (acked, _, ackedAt) = try await b.send("POST", "/console/incidents/api%2Feu%3A1/acknowledge", form: [("csrf", csrf), ("message", "looking")])
        #expect(acked == 303 && ackedAt.header("Location") == "/console/incidents/api%2Feu%3A1")
        // The refused forms sent nothing: after the two notices come the acknowledgement on both
        // channels (waited for: a resolve supersedes an update still queued)…
        func said() -> String {
            "\(sink.received.map { "\($0.path.prefix(4)) \(($0.json?["event"] as? [String: Any])?["status"] ?? $0.bodyText.prefix(120))" })"
        }
        #expect(await sink.waitFor(count: 4), "\(said())")
        let (resolved, _, _) = try await b.send("POST", "/console/incidents/api%2Feu%3A1/resolve", form: [("csrf", csrf), ("message", "rolled back")])
        #expect(resolved == 303)
        // … then the all-clear on both, each from the operator.
        #expect(await sink.waitFor(count: 6), "\(said())")
        let hook = sink.received.filter { $0.path == "/in" }.compactMap { $0.json?["event"] as? [String: Any] }
        #expect(hook.map { $0["status"] as? String } == ["triggered", "acknowledged", "resolved"])
        #expect(hook.dropFirst().allSatisfy { $0["actor"] as? String == "ops" }, "\(hook)")
        #expect(hook.last?["message"] as? String == "rolled back")
        let (_, page, _) = try await b.send("GET", "/console/incidents/api%2Feu%3A1")
        #expect(page.contains("by ops") && page.contains(">console<"))
        await s.stop()
        await sink.stop()
    }

    @Test func hostileEventTextIsShownAsTextAndNoSecretReachesAnyPage() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await Self.start(sinkURL: sink.url)
        let title = #"<script>alert(1)</script>"#
        let message = #""><img src=x onerror=alert(1)>"#
        let event: [String: Any] = ["incident": "xss", "status": "triggered", "severity": "critical", "title": title,
                                    "message": message, "labels": ["k": "<b>v</b>"]]
        let body = String(decoding: try JSONSerialization.data(withJSONObject: event), as: UTF8.self)
        try await post(s, body)
        #expect(await sink.waitFor(count: 2))
        let b = Browser(s)
        #expect(try await b.signIn().0 == 303)
        let deliveries = try await s.app.store.deliveries(DeliveryFilter(incident: "xss"))
        var pages = ["/console/incidents", "/console/incidents/xss", "/console/deliveries", "/console/deliveries?incident=xss",
                     "/console/channels", "/console/silences"]
        pages += deliveries.map { "/console/deliveries/\($0.id)" }
        let secrets = [ServerTests.adminToken, ServerTests.ingestToken, ServerTests.webhookSecret, Self.slackPath,
                       String(Self.slackPath.split(separator: "/").last!)]
        for path in pages {
            let (status, page, _) = try await b.send("GET", path)
            #expect(status == 200, "\(path)")
            #expect(!page.contains("<script"), "\(path) carries a script element")
            #expect(!page.contains("<img src=x"), "\(path) carries the event's markup")
            #expect(!page.contains("href=\"javascript:"), "\(path) links to script")
            #expect(!page.contains("<b>v</b>"))
            for secret in secrets { #expect(!page.contains(secret), "\(path) shows a configured secret") }
        }
        let (_, incident, _) = try await b.send("GET", "/console/incidents/xss")
        #expect(incident.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(incident.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
        // The delivery page shows the request as the channel makes it, masked.
        let chat = try #require(deliveries.first { $0.channel == "chat" })
        let (_, request, _) = try await b.send("GET", "/console/deliveries/\(chat.id)")
        #expect(request.contains("request: POST http://127.0.0.1:\(sink.port)/"), "\(request)")
        #expect(request.contains("&lt;script&gt;"))
        // The test message's result page too.
        let csrf = try await b.csrf()
        let (tested, result, _) = try await b.send("POST", "/console/channels/chat/test", form: [("csrf", csrf)])
        #expect(tested == 200 && result.contains("Delivered"))
        for secret in secrets { #expect(!result.contains(secret)) }
        await s.stop()
        await sink.stop()
    }

    @Test func aFailedDeliveryIsReplayedAfterAPreviewOfWhichAndHowMany() async throws {
        let failing = Mutex(true)
        let sink = TestSink { request, _ in
            failing.withLock { $0 } && request.path == "/in" ? TestSink.Reply(status: 500, body: "{\"error\":\"disk full\"}") : .ok
        }
        try await sink.start()
        let s = try await Self.start(sinkURL: sink.url)
        try await post(s, #"{"incident":"disk","status":"triggered","severity":"critical","title":"Disk full"}"#)
        #expect(try await eventually(timeout: .seconds(20)) {
            try await s.app.store.deliveries(DeliveryFilter(state: .failed)).count == 1
        })
        let b = Browser(s)
        #expect(try await b.signIn().0 == 303)
        let (_, list, _) = try await b.send("GET", "/console/deliveries?state=failed")
        #expect(list.contains("HTTP 500") || list.contains("500"), "\(list)")
        let id = try #require(try await s.app.store.deliveries(DeliveryFilter(state: .failed)).first?.id)
        let (_, detail, _) = try await b.send("GET", "/console/deliveries/\(id)")
        #expect(detail.contains("Attempts") && detail.components(separatedBy: "badge retry").count == 2
                && detail.contains("badge failed"), "\(detail)")
        let csrf = try await b.csrf()
        // The preview changes nothing.
        let (previewed, preview, _) = try await b.send("POST", "/console/replay", form: [("csrf", csrf), ("channel", "hook")])
        #expect(previewed == 200 && preview.contains("1 failed delivery") && preview.contains(id))
        #expect(try await s.app.store.delivery(id: id)?.delivery.state == .failed)
        failing.withLock { $0 = false }
        let (confirmed, _, location) = try await b.send("POST", "/console/replay",
                                                       form: [("csrf", csrf), ("channel", "hook"), ("confirm", "yes")])
        #expect(confirmed == 303 && location.header("Location") == "/console/deliveries?channel=hook&replayed=1")
        #expect(try await eventually(timeout: .seconds(20)) { try await s.app.store.delivery(id: id)?.delivery.state == .delivered })
        // The channels page counts the hour's attempts: two failures of hook (a retry, then the
        // last), its delivery after the replay, and the error it last saw.
        let (_, channels, _) = try await b.send("GET", "/console/channels")
        let hookRow = try #require(channels.components(separatedBy: "<tr>").first { $0.contains("<strong>hook</strong>") })
        let cells = hookRow.components(separatedBy: "<td>").dropFirst().map { $0.components(separatedBy: "</td>")[0] }
        #expect(Array(cells[2...4]) == ["1", "1", "1"], "delivered, retried, failed: \(cells)")
        #expect(cells[7].contains("disk full"), "\(cells)")
        // One replay of one delivery: a replay of something not failed is refused and says why.
        let (again, said, _) = try await b.send("POST", "/console/deliveries/\(id)/replay", form: [("csrf", csrf)])
        #expect(again == 409 && said.contains("only failed deliveries can be replayed"))
        await s.stop()
        await sink.stop()
    }

    @Test func aSessionSurvivesARestartAndEndsAtSignOut() async throws {
        let dir = try temporaryDirectory()
        let url = "http://127.0.0.1:\(closedPort())"
        // The first server, stopped before the second opens its store.
        func firstSignIn() async throws -> [String: String] {
            let first = try await Self.start(sinkURL: url, dir: dir)
            let b = Browser(first)
            #expect(try await b.signIn().0 == 303)
            await first.stop()
            return b.cookies
        }
        let before = try await firstSignIn()
        let s = try await Self.start(sinkURL: url, dir: dir, restarting: true)
        let after = Browser(s)
        after.cookies = before
        #expect(try await after.send("GET", "/console/channels").0 == 200)
        // Signing out revokes the session: the same cookie, kept by someone, opens nothing.
        let csrf = try await after.csrf()
        let (out, _, response) = try await after.send("POST", "/console/signout", form: [("csrf", csrf)])
        #expect(out == 303 && response.header("Location") == "/console/signin?signed_out=1")
        #expect(after.cookies["herald_session"] == nil)
        let stolen = Browser(s)
        stolen.cookies = before
        #expect(try await stolen.send("GET", "/console/channels").0 == 303)
        #expect(try await stolen.send("POST", "/console/silences", form: [("csrf", csrf), ("matchers", "a=b"), ("comment", "x")]).0 == 401)
        #expect(try await s.app.store.silences(includeExpired: true, now: Date(), limit: 10).isEmpty)
        await s.stop()
    }

    @Test func aTokenRemovedFromTheConfigurationEndsItsSessions() async throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("herald.yaml").path
        func yaml(_ admins: [String]) -> String {
            """
            server:
              listen: 127.0.0.1:0
              tokens:
            \(admins.map { "    - {name: \($0), token: \"\($0)-token-0123456789abcdef\", scopes: [admin]}" }.joined(separator: "\n"))
            store: {path: \(dir.path)/herald.sqlite}
            channels:
              quiet: {type: console}
            routes:
              - channels: [quiet]
            """
        }
        try yaml(["ops", "lead"]).write(toFile: file, atomically: true, encoding: .utf8)
        let s = try await ServerTests.launch(yaml(["ops", "lead"]), file: file)
        let ops = Browser(s), lead = Browser(s)
        #expect(try await ops.signIn("ops-token-0123456789abcdef").0 == 303)
        #expect(try await lead.signIn("lead-token-0123456789abcdef").0 == 303)
        try yaml(["lead"]).write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await s.call("POST", "/v1/reload", token: "lead-token-0123456789abcdef").0 == 200)
        // ops's session ended with its token; lead's goes on.
        #expect(try await ops.send("GET", "/console/incidents").0 == 303)
        #expect(try await lead.send("GET", "/console/incidents").0 == 200)
        await s.stop()
    }

    @Test func aSilenceIsAddedAndExpiredFromItsPageAndABadOneNamesTheField() async throws {
        let s = try await Self.start(sinkURL: "http://127.0.0.1:\(closedPort())")
        let b = Browser(s)
        #expect(try await b.signIn().0 == 303)
        let csrf = try await b.csrf()
        let (bad, page, _) = try await b.send("POST", "/console/silences",
                                              form: [("csrf", csrf), ("matchers", "service=~\"(\""), ("duration", "1h"), ("comment", "deploy")])
        #expect(bad == 400 && page.contains("matchers[0]"), "\(page)")
        #expect(page.contains("deploy"), "the form keeps what was typed")
        let (added, _, _) = try await b.send("POST", "/console/silences",
                                             form: [("csrf", csrf), ("matchers", "service=web"), ("channels", "hook"),
                                                    ("duration", "2h"), ("comment", "deploy of web 4.2")])
        #expect(added == 303)
        let silence = try #require(try await s.app.store.silences(includeExpired: false, now: Date(), limit: 10).first)
        #expect(silence.createdBy == "ops" && silence.channels == ["hook"] && silence.comment == "deploy of web 4.2")
        let (_, list, _) = try await b.send("GET", "/console/silences")
        #expect(list.contains("service=web") && list.contains("badge active"))
        #expect(try await b.send("POST", "/console/silences/\(silence.id)/expire", form: [("csrf", csrf)]).0 == 303)
        #expect(try await s.app.store.silence(id: silence.id)?.state(at: Date()) == "expired")
        await s.stop()
    }
}

func sha256Hex(_ s: String) -> String {
    SHA256.hash(data: Data(s.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// In the layout suite: one browser at a time.
extension StatusPageLayoutTests {
    /// In a real browser (chromium): sign in, see the failed delivery with its error, open it,
    /// replay it, see it delivered; acknowledge and resolve its incident from its page and see the
    /// all-clear reach the receiver; sign out and be refused, the old cookie too. No page shows a
    /// configured secret; the hostile title is text. Screenshots go to .build/screenshots/console.
    @Test func anOperatorReplaysAFailedDeliveryAndResolvesAnIncidentInTheConsole() async throws {
        let failing = Mutex(true)
        let sink = TestSink { request, _ in
            failing.withLock { $0 } && request.path == "/in" ? TestSink.Reply(status: 500, body: "{\"error\":\"disk full\"}") : .ok
        }
        try await sink.start()
        let s = try await ConsoleTests.start(sinkURL: sink.url)
        let title = "<script>alert(1)</script> checkout down"
        let body = String(decoding: try JSONSerialization.data(withJSONObject: [
            "incident": "checkout", "status": "triggered", "severity": "critical", "title": title,
            "message": #""><img src=x onerror=alert(1)>"#,
        ]), as: UTF8.self)
        #expect(try await s.call("POST", "/v1/events", body: body).0 == 202)
        #expect(try await eventually(timeout: .seconds(20)) {
            try await s.app.store.deliveries(DeliveryFilter(state: .failed)).count == 1
        })
        failing.withLock { $0 = false }
        let before = sink.received.count

        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = package.appendingPathComponent("Tests/browser/console.py").path
        let shots = package.appendingPathComponent(".build/screenshots/console").path
        let secrets = [ServerTests.adminToken, ServerTests.ingestToken, ServerTests.webhookSecret, ConsoleTests.slackPath]
        let python = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "python3"
        let secretList = String(decoding: try JSONSerialization.data(withJSONObject: secrets), as: UTF8.self)
        let (status, out) = try await StatusPageTests().run(python, [script, s.base, ServerTests.adminToken, "checkout", shots, secretList])
        #expect(status == 0, "console.py: \(out)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "said: \(out)")
        #expect(seen["redirected_to"] as? String == "/console/signin")
        #expect(seen["after_sign_in"] as? String == "/console/deliveries?state=failed")
        #expect((seen["failed_row"] as? String)?.contains("HTTP 500") == true, "\(seen["failed_row"] ?? "-")")
        let delivery = try #require(seen["delivery"] as? [String: Any])
        #expect(delivery["state"] as? String == "failed" && delivery["attempts"] as? Int == 2)
        // The webhook's path is masked like any secret URL path.
        #expect((delivery["request"] as? String)?.contains("request: POST \(sink.url)/****") == true, "\(delivery)")
        #expect(seen["list_final_states"] as? [String] == ["delivered", "delivered"])
        #expect(seen["delivery_after"] as? String == "delivered")
        #expect(seen["incident_heading"] as? String == title)
        #expect(seen["timeline_rows"] as? Int == 1)
        #expect((seen["acknowledged"] as? String)?.hasSuffix("by ops") == true)
        #expect(seen["status_after_resolve"] as? String == "resolved")
        #expect(seen["cookie_http_only"] as? Bool == true)
        #expect(seen["after_sign_out"] as? String == "Signed out.")
        #expect(seen["signed_out_lands_on"] as? String == "/console/signin")
        #expect(seen["old_cookie_lands_on"] as? String == "/console/signin")
        #expect(seen["alerts"] as? Int == 0)
        #expect(seen["leaks"] as? [String] == [], "a configured secret shows on: \(seen["leaks"] ?? "-")")
        for page in ["delivery", "incident"] {
            #expect((seen["\(page)_sideways"] as? [String: Bool]) == ["phone": false, "desktop": false], "\(page) scrolls sideways: \(seen["too_wide"] ?? "-")")
        }
        for shot in ["delivery-failed", "delivery-delivered", "incident-open", "incident-resolved"] {
            for width in ["phone", "desktop"] {
                #expect(FileManager.default.fileExists(atPath: "\(shots)/\(shot)-\(width).png"))
            }
        }
        // The replayed notice, the acknowledgement and the all-clear from the operator reached the
        // webhook after the browser started.
        #expect(await sink.waitFor(count: before + 4))
        let hook = sink.received.dropFirst(before).filter { $0.path == "/in" }.compactMap { $0.json?["event"] as? [String: Any] }
        #expect(hook.map { $0["status"] as? String } == ["triggered", "acknowledged", "resolved"], "\(hook)")
        #expect(hook.last?["actor"] as? String == "ops" && hook.last?["message"] as? String == "fixed by rollback")
        await s.stop()
        await sink.stop()
    }
}
