import Foundation
import HeraldCore
import HeraldServer
import Logging
import Testing
import TestSupport

/// The status page as a customer first sees it: its own name, home link and logo, the components
/// declared up front (grouped, described, operational on a good day), the feed where one looks for
/// it — at a phone's and a desktop's width in a real browser.
@Suite(.serialized) struct StatusPageLayoutTests {
    static let logo = ##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle cx="20" cy="20" r="18" fill="#06c"/></svg>"##

    func start() async throws -> ServerTests.Running {
        let dir = try temporaryDirectory()
        try Self.logo.write(to: dir.appendingPathComponent("logo.svg"), atomically: true, encoding: .utf8)
        let yaml = """
            server:
              listen: 127.0.0.1:0
              tokens:
                - {name: monitoring, token: "\(ServerTests.ingestToken)", scopes: [ingest]}
                - {name: ops, token: "\(ServerTests.adminToken)", scopes: [admin]}
            store: {path: \(dir.path)/herald.sqlite}
            status_page:
              title: Example Cloud <status>
              url: https://example.com/
              logo: \(dir.path)/logo.svg
              components:
                - {name: api, group: Platform, description: Public REST API & webhooks}
                - {name: web, group: Platform}
                - {name: payments_gateway_eu_west_1_primary_and_standby_clusters, group: Payments}
                - {name: dns, group: Network, description: Authoritative DNS for example.com and every customer zone behind it}
                - billing
            channels:
              public:
                type: statuspage
            routes:
              - channels: [public]
            """
        return try await ServerTests.launch(yaml, file: "status.yaml")
    }

    /// What the browser saw, by width (see status_layout.py).
    func look(_ url: String) async throws -> [String: [String: Any]] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser/status_layout.py").path
        let python = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "python3"
        let (status, out) = try await StatusPageTests().run(python, [script, url])
        #expect(status == 0, "status_layout.py: \(out)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: [String: Any]], "said: \(out)")
    }

    func groups(_ seen: [String: Any]) -> [String] {
        (seen["groups"] as? [[String: Any]] ?? []).map { g in
            "\(g["group"] as? String ?? "-"): " + (g["components"] as? [[String: Any]] ?? [])
                .map { "\($0["name"] as? String ?? "?")=\($0["status"] as? String ?? "?")" }.joined(separator: ", ")
        }
    }

    @Test func aGoodDayShowsTheDeclaredComponentsAndAnOutageMarksOnlyThoseNamed() async throws {
        let s = try await start()
        // A good day: nothing has happened, and the page still says what it covers.
        var seen = try await look(s.base + "/status")
        for width in ["phone", "desktop"] {
            let page = try #require(seen[width])
            // No sideways scrolling: the content is no wider than the viewport (less its scrollbar).
            #expect((page["scroll_width"] as? Int ?? .max) <= (page["inner_width"] as? Int ?? 0), "\(width): the page scrolls sideways: \(page)")
            #expect(page["title"] as? String == "Example Cloud <status>")
            #expect(page["home"] as? String == "https://example.com/")
            #expect(page["logo_loaded"] as? Bool == true)
            #expect(page["feed_link_above_banner"] as? Bool == true && page["feed_link_in_first_screen"] as? Bool == true)
            #expect(page["banner"] as? String == "All systems operational")
            #expect(groups(page) == ["-: billing=Operational", "Platform: api=Operational, web=Operational",
                                    "Payments: payments_gateway_eu_west_1_primary_and_standby_clusters=Operational", "Network: dns=Operational"])
            let rows = (page["groups"] as? [[String: Any]] ?? []).flatMap { $0["components"] as? [[String: Any]] ?? [] }
            #expect(rows.allSatisfy { $0["visible"] as? Bool == true })
        }
        // An outage of api and of something not declared (shown too, under Other).
        let r = try await s.call("POST", "/v1/events", body: #"{"incident":"api-5xx","status":"triggered","severity":"critical","title":"API errors","components":["api","cache"]}"#)
        #expect(r.0 == 202)
        #expect(try await eventually { (try await s.call("GET", "/status.json", token: nil)).2.bodyText.contains("major_outage") })
        seen = try await look(s.base + "/status")
        #expect(groups(try #require(seen["phone"])) == ["-: billing=Operational", "Platform: api=Major outage, web=Operational",
                                                        "Payments: payments_gateway_eu_west_1_primary_and_standby_clusters=Operational",
                                                        "Network: dns=Operational", "Other: cache=Major outage"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data((try await s.call("GET", "/status.json", token: nil)).2.body))
                                as? [String: Any])
        #expect((json["page"] as? [String: String]) == ["url": "https://example.com/", "logo": "/status/logo"])
        let components = json["components"] as? [[String: String]] ?? []
        #expect(components.map { $0["name"] ?? "" } == ["api", "web", "payments_gateway_eu_west_1_primary_and_standby_clusters", "dns",
                                                         "billing", "cache"])
        #expect(components.first?["description"] == "Public REST API & webhooks" && components.first?["group"] == "Platform")
        #expect(components.last?["group"] == "Other" && components.last?["status"] == "major_outage")
        // Maintenance of dns under way, with a long title: shown above the incidents, dns under
        // maintenance, and still no sideways scrolling on a phone.
        let (scheduled, _, _) = try await s.call("POST", "/v1/maintenance", token: ServerTests.adminToken, body: """
            {"title":"Migration of every authoritative DNS zone to the new anycast provider, one region at a time",
             "message":"Resolution keeps working; changes to zones are paused.","components":["dns"],
             "starts_at":"\(RFC3339.format(Date()))","duration":"2h"}
            """)
        #expect(scheduled == 201)
        seen = try await look(s.base + "/status")
        for width in ["phone", "desktop"] {
            let page = try #require(seen[width])
            #expect((page["scroll_width"] as? Int ?? .max) <= (page["inner_width"] as? Int ?? 0), "\(width): the page scrolls sideways: \(page)")
            #expect(groups(page).contains("Network: dns=Under maintenance"), "\(width): \(groups(page))")
            let shown = page["maintenance"] as? [[String: Any]] ?? []
            #expect(shown.count == 1 && (shown.first?["title"] as? String)?.hasPrefix("Migration of every") == true
                    && shown.first?["visible"] as? Bool == true, "\(width): \(shown)")
        }
        // The logo is served with its type; the page's policy lets it load from here only.
        let (logoStatus, _, logo) = try await s.call("GET", "/status/logo", token: nil)
        #expect(logoStatus == 200 && logo.bodyText == Self.logo)
        #expect(logo.headers.first { $0.name.lowercased() == "content-type" }?.value == "image/svg+xml")
        await s.stop()
    }

    @Test func statusPageConfigErrorsNameTheKeyPath() {
        let yaml = """
            status_page:
              title: ""
              url: example.com
              logo: /nonexistent/logo.png
              components:
                - {name: api}
                - {name: api}
                - {group: Platform}
            """
        do {
            _ = try ConfigLoader.load(yaml: yaml, file: "s.yaml")
            Issue.record("loaded a broken configuration")
        } catch let errors as ConfigErrors {
            #expect(Set(errors.errors.map { "\($0.line):\($0.keyPath)" }) == [
                "2:status_page.title", "3:status_page.url", "4:status_page.logo", "7:status_page.components[1]",
                "8:status_page.components[2].name",
            ], "\(errors)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
