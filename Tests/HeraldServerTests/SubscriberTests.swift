import Foundation
import HeraldCore
import HeraldServer
import HeraldTransport
import Testing
import TestSupport

/// Status page subscribers end to end, against a real SMTP server (aiosmtpd): the sign-up form with
/// its CSRF token, the confirmation mail and its link, the notice of a public incident to those who
/// chose its component, the all-clear threaded onto it, and RFC 8058's one-click unsubscribe.
@Suite(.serialized) struct SubscriberTests {
    static let publicURL = "https://status.acme.example"

    static func yaml(smtp: String, store: String) -> String {
        """
        server:
          listen: 127.0.0.1:0
          tokens:
            - {name: monitoring, token: "\(ServerTests.ingestToken)", scopes: [ingest]}
            - {name: ops, token: "\(ServerTests.adminToken)", scopes: [admin]}
        store: {path: \(store)}
        retry: {initial: 50ms, max: 100ms, max_attempts: 2, max_age: 1h}
        status_page:
          title: Acme status
          components: [web, api, {name: db, group: Data}]
        channels:
          public: {type: statuspage}
          customers:
            type: subscribers
            url: \(smtp)
            from: "Acme Status <status@acme.example>"
            starttls: "off"
            public_url: \(publicURL)/
        routes:
          - channels: [public]
        """
    }

    struct Site {
        let server: ServerTests.Running
        let smtp: SMTPPeer

        func stop() async {
            await server.stop()
            smtp.stop()
        }

        func page(_ method: String, _ path: String, form: String? = nil, cookie: String? = nil) async throws -> (Int, String, HTTPResponse) {
            var headers: [(String, String)] = [("Content-Type", "application/x-www-form-urlencoded")]
            if let cookie { headers.append(("Cookie", cookie)) }
            let (status, _, response) = try await server.call(method, path, token: nil, body: form, headers: headers)
            return (status, String(decoding: response.body, as: UTF8.self), response)
        }

        /// A link from a mail, on this server.
        func local(_ link: String) -> String { String(link.dropFirst(SubscriberTests.publicURL.count)) }

        func mails(_ address: String) throws -> [SMTPPeer.Received] { try smtp.received(for: address) }

        func waitForMails(_ address: String, _ count: Int) async throws -> [SMTPPeer.Received] {
            #expect(try await eventually(timeout: .seconds(20)) { try mails(address).count >= count },
                    "\(address) did not receive \(count) message(s)")
            return try mails(address)
        }

        /// The form's CSRF token and the cookie that goes with it.
        func form() async throws -> (csrf: String, cookie: String) {
            let (status, html, response) = try await page("GET", "/status/subscribe")
            #expect(status == 200)
            let setCookie = try #require(response.header("Set-Cookie"))
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
            let cookie = String(setCookie.prefix { $0 != ";" })
            let csrf = try #require(SubscriberTests.value(of: "csrf", in: html))
            #expect(cookie == "herald_csrf=\(csrf)")
            return (csrf, cookie)
        }

        func signUp(_ address: String, components: [String] = []) async throws -> (Int, String) {
            let (csrf, cookie) = try await form()
            let fields = ["csrf=\(csrf)", "email=\(address.replacingOccurrences(of: "@", with: "%40"))"]
                + components.map { "components=\($0)" }
            let (status, html, _) = try await page("POST", "/status/subscribe", form: fields.joined(separator: "&"), cookie: cookie)
            return (status, html)
        }

        /// Signs up and follows the link of the confirmation mail (GET shows a button; its POST confirms).
        func subscribe(_ address: String, components: [String] = []) async throws {
            let before = try mails(address).count
            #expect(try await signUp(address, components: components).0 == 200)
            let mail = try #require(try await waitForMails(address, before + 1).last)
            #expect(mail.header("Subject") == "Confirm your subscription to Acme status")
            let link = try #require(SubscriberTests.link(in: mail, containing: "/status/confirm?token="))
            let (shown, html, _) = try await page("GET", local(link))
            #expect(shown == 200 && html.contains("Confirm subscription"))
            let token = try #require(SubscriberTests.value(of: "token", in: html))
            let (confirmed, done, _) = try await page("POST", "/status/confirm", form: "token=\(token)")
            #expect(confirmed == 200 && done.contains("You are subscribed"))
            // The link works once.
            let (again, reused, _) = try await page("POST", "/status/confirm", form: "token=\(token)")
            #expect(again == 404 && reused.contains("no longer works"))
        }

        func count() async throws -> (confirmed: Int, pending: Int) {
            let (_, json, _) = try await server.call("GET", "/v1/subscribers/count", token: ServerTests.adminToken)
            return (json["confirmed"] as? Int ?? -1, json["pending"] as? Int ?? -1)
        }

        func post(_ incident: String, _ status: String, components: [String]) async throws {
            let list = components.map { "\"\($0)\"" }.joined(separator: ",")
            let (code, _, _) = try await server.call("POST", "/v1/events", body: """
                {"incident":"\(incident)","status":"\(status)","severity":"critical","title":"\(incident) is failing","components":[\(list)]}
                """)
            #expect(code == 202)
        }
    }

    func start() async throws -> Site {
        let smtp = try await SMTPPeer.start(.plain)
        let store = try temporaryDirectory().path + "/herald.sqlite"
        return Site(server: try await ServerTests.launch(Self.yaml(smtp: smtp.url, store: store)), smtp: smtp)
    }

    /// `name="NAME" value="VALUE"` in a page.
    static func value(of name: String, in html: String) -> String? {
        guard let r = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }

    /// The first link in the mail's text that contains `fragment`.
    static func link(in mail: SMTPPeer.Received, containing fragment: String) -> String? {
        let text = mail.parts.first { $0.type == "text/plain" }?.text ?? ""
        return text.split(whereSeparator: \.isWhitespace).map(String.init).first { $0.contains(fragment) && $0.hasPrefix("http") }
    }

    @Test func aSubscriberHearsTheirComponentsIncidentThenItsAllClearThreadedAndUnsubscribesInOneClick() async throws {
        let site = try await start()
        defer { Task { await site.stop() } }
        let (_, statusPage, _) = try await site.page("GET", "/status")
        #expect(statusPage.contains("href=\"/status/subscribe\""))

        try await site.subscribe("ann@example.com", components: ["web"])
        try await site.subscribe("bob@example.com", components: ["db"])
        #expect(try await site.count().confirmed == 2)

        try await site.post("web-down", "triggered", components: ["web"])
        let notice = try #require(try await site.waitForMails("ann@example.com", 2).last)
        #expect(notice.header("Subject")?.contains("web-down is failing") == true)
        let unsubscribe = try #require(notice.header("List-Unsubscribe"))
        #expect(unsubscribe.hasPrefix("<\(Self.publicURL)/status/unsubscribe?token=") && unsubscribe.hasSuffix(">"))
        #expect(notice.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        let manage = try #require(Self.link(in: notice, containing: "/status/manage?token="))
        let (_, managePage, _) = try await site.page("GET", site.local(manage))
        #expect(managePage.contains("ann@example.com") && managePage.contains("value=\"web\" checked"))

        try await site.post("web-down", "resolved", components: [])
        let clear = try #require(try await site.waitForMails("ann@example.com", 3).last)
        #expect(clear.header("In-Reply-To") == notice.header("Message-ID"))
        #expect(clear.header("Subject")?.hasPrefix("Re: ") == true)
        // The incident's report counts the subscribers' deliveries instead of listing each (the
        // all-clear's receipt is recorded just after the SMTP server accepted it: wait for it).
        var report: [String: Any] = [:]
        _ = try await eventually {
            report = try await site.server.call("GET", "/v1/incidents/web-down", token: ServerTests.adminToken).1
            return (report["subscribers"] as? [String: Any])?["deliveries"] as? [String: Int] == ["notice:delivered": 1, "all_clear:delivered": 1]
        }
        let counted = report["subscribers"] as? [String: Any]
        #expect(counted?["channel"] as? String == "customers")
        #expect(counted?["deliveries"] as? [String: Int] == ["notice:delivered": 1, "all_clear:delivered": 1])
        #expect((report["deliveries"] as? [[String: Any]] ?? []).allSatisfy { $0["channel"] as? String == "public" })

        // Bob chose db: the web incident never reached him. His db notice is the later message.
        try await site.post("db-down", "triggered", components: ["db"])
        let bobs = try await site.waitForMails("bob@example.com", 2)
        #expect(bobs.count == 2 && bobs.last?.header("Subject")?.contains("db-down") == true)

        // RFC 8058: one POST to the header's URL, no session, no page.
        let target = String(unsubscribe.dropFirst().dropLast())
        let (gone, _, _) = try await site.page("POST", site.local(target), form: "List-Unsubscribe=One-Click")
        #expect(gone == 200)
        #expect(try await site.count().confirmed == 1)
        // An incident about everything: Bob hears of it; Ann, unsubscribed, does not.
        let annHad = try site.mails("ann@example.com").count
        try await site.post("all-down", "triggered", components: [])
        _ = try await site.waitForMails("bob@example.com", 3)
        #expect(try site.mails("ann@example.com").count == annHad)
        let (_, stale, _) = try await site.page("GET", site.local(manage))
        #expect(stale.contains("No such subscription"))
    }

    @Test func signUpsNeedTheFormsTokenNeverTellWhoIsSubscribedAndAreRateLimited() async throws {
        let site = try await start()
        defer { Task { await site.stop() } }
        // No cookie, or a token that is not the cookie's: refused, nothing stored, no mail.
        let (noCookie, _, _) = try await site.page("POST", "/status/subscribe", form: "csrf=abc&email=eve%40example.com")
        #expect(noCookie == 403)
        let (_, cookie) = try await site.form()
        let (wrong, _, _) = try await site.page("POST", "/status/subscribe", form: "csrf=forged&email=eve%40example.com", cookie: cookie)
        #expect(wrong == 403)
        let nothing = try await site.count()
        #expect(nothing.confirmed == 0 && nothing.pending == 0)
        // Bad fields are named.
        let (badAddress, badPage) = try await site.signUp("not-an-address")
        #expect(badAddress == 400 && badPage.contains("email:"))
        let (badComponent, componentPage) = try await site.signUp("eve@example.com", components: ["nope"])
        #expect(badComponent == 400 && componentPage.contains("components:"))

        // The answer is the same for a new address and a confirmed one; only the new one gets mail.
        try await site.subscribe("carl@example.com")
        let (first, firstPage) = try await site.signUp("dave@example.com")
        let (again, againPage) = try await site.signUp("carl@example.com")
        #expect(first == 200 && again == 200 && firstPage == againPage)
        _ = try await site.waitForMails("dave@example.com", 1)
        // Dave's confirmation went after Carl's repeat was answered: nothing more for Carl.
        #expect(try site.mails("carl@example.com").count == 1)

        // The admin API lists them without the secret of their links, and removes them.
        let (_, list, listResponse) = try await site.server.call("GET", "/v1/subscribers", token: ServerTests.adminToken)
        let subscribers = try #require(list["subscribers"] as? [[String: Any]])
        #expect(subscribers.map { $0["address"] as? String } == ["carl@example.com"])
        #expect(!String(decoding: listResponse.body, as: UTF8.self).contains("token"))
        let (_, pendingList, _) = try await site.server.call("GET", "/v1/subscribers?pending=true", token: ServerTests.adminToken)
        #expect((pendingList["subscribers"] as? [[String: Any]])?.count == 1)
        let carl = try #require(subscribers.first?["id"] as? String)
        #expect(try await site.server.call("DELETE", "/v1/subscribers/\(carl)", token: ServerTests.adminToken).0 == 200)
        #expect(try await site.server.call("DELETE", "/v1/subscribers/\(carl)", token: ServerTests.adminToken).0 == 404)
        #expect(try await site.server.call("GET", "/v1/subscribers", token: nil).0 == 401)

        // Five sign-ups from one address in a burst (carl, dave, carl, and these two); the next waits.
        #expect(try await site.signUp("erin@example.com").0 == 200)
        #expect(try await site.signUp("finn@example.com").0 == 200)
        let f = try await site.form()
        let (throttled, _, response) = try await site.page("POST", "/status/subscribe", form: "csrf=\(f.csrf)&email=gail%40example.com",
                                                           cookie: f.cookie)
        #expect(throttled == 429)
        #expect(Int(response.header("Retry-After") ?? "") ?? 0 > 0)
    }

    /// Scheduled maintenance reaches the subscribers of its components, as any public event: the
    /// announcement, then its steps threaded onto it, the completion as the all-clear.
    @Test func maintenanceReachesTheSubscribersOfItsComponents() async throws {
        let site = try await start()
        defer { Task { await site.stop() } }
        try await site.subscribe("ann@example.com", components: ["web"])
        try await site.subscribe("bob@example.com", components: ["db"])
        let start = RFC3339.format(Date().addingTimeInterval(2))
        let (created, window, _) = try await site.server.call("POST", "/v1/maintenance", token: ServerTests.adminToken, body: """
            {"title":"Web server upgrade","components":["web"],"starts_at":"\(start)","duration":"3s"}
            """)
        #expect(created == 201, "\(window)")
        let id = try #require(window["id"] as? String)
        // Announced, started, completed: the completion is the all-clear, in the announcement's thread.
        let ann = try await site.waitForMails("ann@example.com", 4).dropFirst()
        let announcement = try #require(ann.first)
        #expect(announcement.header("Subject")?.hasPrefix("[MAINTENANCE] Web server upgrade") == true)
        #expect(announcement.header("List-Unsubscribe") != nil)
        let announcementID = try #require(announcement.header("Message-ID"))
        #expect(ann.dropFirst().allSatisfy { $0.header("References")?.contains(announcementID) == true })
        let (_, sent, _) = try await site.server.call("GET", "/v1/deliveries?channel=customers&incident=maintenance:\(id)",
                                                      token: ServerTests.adminToken)
        let kinds = (sent["deliveries"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
        #expect(Set(kinds) == ["notice", "update", "all_clear"] && kinds.count == 3, "\(kinds)")
        // Bob chose db: his next mail is the db incident's notice, nothing of the web maintenance.
        try await site.post("db-down", "triggered", components: ["db"])
        let bobs = try await site.waitForMails("bob@example.com", 2)
        #expect(bobs.count == 2 && bobs.last?.header("Subject")?.contains("db-down") == true)
    }
}

/// In the layout suite: one browser at a time (the suites run in parallel, and two chromium
/// start-ups at once on a busy two-core machine are what made this test flaky).
extension StatusPageLayoutTests {
    /// In a real browser (chromium): the page's link, the form at a phone's and a desktop's width
    /// (nothing scrolls sideways), a sign-up sent with the form's own CSRF cookie, the confirmation
    /// mail's link followed and its button pressed; then the notice of a public incident, its
    /// all-clear threaded, the one-click unsubscribe, and nothing more.
    @Test func aCustomerSignsUpInABrowserHearsTheIncidentAndItsAllClearAndLeavesInOneClick() async throws {
        let site = try await SubscriberTests().start()
        defer { Task { await site.stop() } }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser/subscribe_form.py").path
        let python = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "python3"
        let (status, out) = try await StatusPageTests().run(python, [script, site.server.base, "browser@example.com"])
        #expect(status == 0, "subscribe_form.py: \(out)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "said: \(out)")
        for width in ["phone", "desktop"] {
            let page = try #require(seen[width] as? [String: Any], "no \(width) view: \(out)")
            #expect(page["link_text"] as? String == "by email")
            #expect(page["link_in_first_screen"] as? Bool == true)
            #expect(page["heading"] as? String == "Subscribe to updates")
            #expect(page["email_visible"] as? Bool == true)
            #expect(page["components"] as? [String] == ["web", "api", "db"])
            #expect((page["scroll_width"] as? Int ?? 0) <= (page["inner_width"] as? Int ?? -1), "\(width) scrolls sideways")
        }
        #expect(seen["after_sending"] as? String == "Check your inbox")
        let mail = try #require(try await site.waitForMails("browser@example.com", 1).first)
        #expect(mail.header("Subject") == "Confirm your subscription to Acme status")
        let pending = try await site.server.call("GET", "/v1/subscribers?pending=true", token: ServerTests.adminToken).1
        #expect((pending["subscribers"] as? [[String: Any]])?.first?["components"] as? [String] == ["web"])

        // The link, followed in the browser: its button confirms.
        let link = try #require(SubscriberTests.link(in: mail, containing: "/status/confirm?token="))
        let (confirmed, said) = try await StatusPageTests().run(python, [script, "--confirm", site.server.base + site.local(link)])
        #expect(confirmed == 0, "subscribe_form.py --confirm: \(said)")
        let page = try #require(try JSONSerialization.jsonObject(with: Data(said.utf8)) as? [String: Any], "said: \(said)")
        #expect(page["button"] as? String == "Confirm subscription" && page["after"] as? String == "You are subscribed")
        // A public incident on web: the notice, then the all-clear threaded onto it.
        try await site.post("web-down", "triggered", components: ["web"])
        let notice = try #require(try await site.waitForMails("browser@example.com", 2).last)
        try await site.post("web-down", "resolved", components: [])
        let clear = try #require(try await site.waitForMails("browser@example.com", 3).last)
        #expect(clear.header("In-Reply-To") == notice.header("Message-ID"))
        // One-click unsubscribe, as a mail client does it; then nothing more arrives: a second
        // subscriber's notice of the next incident is the later message it waits for.
        let target = try #require(notice.header("List-Unsubscribe")).dropFirst().dropLast()
        #expect(try await site.page("POST", site.local(String(target)), form: "List-Unsubscribe=One-Click").0 == 200)
        try await site.subscribe("later@example.com")
        try await site.post("web-down", "triggered", components: ["web"])
        _ = try await site.waitForMails("later@example.com", 2)
        #expect(try site.mails("browser@example.com").count == 3)
    }
}
