import Crypto
import Foundation
import HeraldCore
import HeraldServer
import HeraldTransport
import Logging
import Testing
import TestSupport

/// The public status page, feed and JSON, read the way customers read them: a real feed parser
/// (Python feedparser) and a real headless browser (Debian's chromium).
@Suite(.serialized) struct StatusPageTests {
    func start(server extra: String = "") async throws -> ServerTests.Running {
        let dir = try temporaryDirectory()
        let yaml = """
            server:
              listen: 127.0.0.1:0
              \(extra)
              status_title: Example Cloud status
              tokens:
                - {name: monitoring, token: "\(ServerTests.ingestToken)", scopes: [ingest]}
                - {name: ops, token: "\(ServerTests.adminToken)", scopes: [admin]}
            store: {path: \(dir.path)/herald.sqlite}
            channels:
              public:
                type: statuspage
            routes:
              - match: {severity: [critical, major]}
                channels: [public]
            """
        return try await ServerTests.launch(yaml, file: "status.yaml")
    }

    func send(_ s: ServerTests.Running, _ body: String) async throws {
        let r = try await s.call("POST", "/v1/events", body: body)
        #expect(r.0 == 202)
    }

    func page(_ s: ServerTests.Running, _ path: String) async throws -> String {
        let r = try await s.call("GET", path, token: nil)
        #expect(r.0 == 200)
        return r.2.bodyText
    }

    @Test func outageThenAllClearOnThePageTheFeedAndJSON() async throws {
        let s = try await start()
        try await send(s, #"{"incident":"dns","status":"triggered","severity":"critical","title":"DNS <b>resolution</b> failing","message":"Resolvers time out & retry","components":["api","web"],"link":"https://example.com/dns"}"#)
        try await send(s, #"{"incident":"minor","status":"triggered","severity":"minor","title":"Not public","components":["internal"]}"#)
        #expect(try await eventually { try await self.page(s, "/status.json").contains("\"major_outage\"") })
        var html = try await page(s, "/status")
        #expect(html.contains("Major outage"))
        #expect(html.contains("DNS &lt;b&gt;resolution&lt;/b&gt; failing"))
        #expect(!html.contains("<b>resolution</b>"))
        #expect(!html.contains("Not public"), "only events routed to the statuspage channel are public")
        try await send(s, #"{"incident":"dns","status":"resolved","title":"DNS resolution failing"}"#)
        #expect(try await eventually { try await self.page(s, "/status.json").contains("\"status\":\"operational\"") })
        html = try await page(s, "/status")
        #expect(html.contains("All systems operational"))
        #expect(html.contains("Service is restored."))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try await page(s, "/status.json").utf8)) as? [String: Any])
        let resolved = try #require((json["resolved_incidents"] as? [[String: Any]])?.first)
        #expect(resolved["key"] as? String == "dns")
        #expect((resolved["updates"] as? [[String: Any]])?.map { $0["kind"] as? String } == ["notice", "all_clear"])
        #expect(((json["components"] as? [[String: String]]) ?? []).allSatisfy { $0["status"] == "operational" })
        // The admin API stays closed.
        #expect(try await s.call("GET", "/v1/deliveries", token: nil).0 == 401)

        try await checkFeedWithFeedparser(try await page(s, "/status/feed.atom"))
        try await checkPageInChromium(s.base + "/status")
        await s.stop()
    }

    /// A crowd reloading the page is served from memory: every document has an ETag, a conditional
    /// GET with it is a 304 without a body, HEAD answers the headers, and a new post shows at once
    /// (a new ETag, the new words) rather than after the cache's lifetime.
    @Test func conditionalGetHeadAndANewPostShowsAtOnce() async throws {
        let s = try await start()
        for path in ["/status", "/status.json", "/status/feed.atom"] {
            let first = try await s.call("GET", path, token: nil).2
            let etag = try #require(first.header("ETag"), "\(path) has no ETag")
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""))
            let again = try await s.call("GET", path, token: nil, headers: [("If-None-Match", "W/\"other\", \(etag)")]).2
            #expect(again.status == 304 && again.body.isEmpty, "\(path): \(again.status)")
            #expect(again.header("ETag") == etag && again.header("Cache-Control") == "public, max-age=15")
            let other = try await s.call("GET", path, token: nil, headers: [("If-None-Match", "\"stale\"")]).2
            #expect(other.status == 200 && other.body == first.body)
            let head = try await s.call("HEAD", path, token: nil, headers: []).2
            #expect(head.status == 200 && head.body.isEmpty && head.header("ETag") == etag, "\(path): HEAD \(head.status)")
            #expect(head.header("Content-Length") == "\(first.body.count)")
        }
        let before = try await s.call("GET", "/status", token: nil).2
        try await send(s, #"{"incident":"db","status":"triggered","severity":"major","title":"Database failover in progress"}"#)
        // The post is published by the dispatcher; the page shows it as soon as it is, not 5 s later.
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try await eventually(timeout: .seconds(3)) { try await self.page(s, "/status").contains("Database failover in progress") })
        #expect(clock.now - start < .seconds(3))
        let after = try await s.call("GET", "/status", token: nil, headers: [("If-None-Match", before.header("ETag") ?? "")]).2
        #expect(after.status == 200 && after.header("ETag") != before.header("ETag"))
        let modified = try #require(after.header("Last-Modified"))
        #expect(modified.hasSuffix(" GMT"), "\(modified)")
        let notModified = try await s.call("GET", "/status", token: nil, headers: [("If-Modified-Since", modified)]).2
        #expect(notModified.status == 304)
        // The 405 for other methods names HEAD too.
        let post = try await s.call("POST", "/status", token: nil).2
        #expect(post.status == 405 && post.header("Allow") == "GET, HEAD", "\(post.status) \(post.header("Allow") ?? "")")
        await s.stop()
    }

    /// `server.public_listen`: the pages on a listener of their own, which serves nothing else —
    /// no API, even with a valid token — while the API's listener still serves them too.
    @Test func thePublicListenerServesThePagesAndNothingElse() async throws {
        let s = try await start(server: "public_listen: 127.0.0.1:0")
        #expect(s.app.publicPort != 0 && s.app.publicPort != s.app.port)
        let pages = ServerTests.Running(app: s.app, task: s.task, port: s.app.publicPort)
        try await send(s, #"{"incident":"dns","status":"triggered","severity":"critical","title":"DNS resolution failing"}"#)
        #expect(try await eventually { try await self.page(pages, "/status.json").contains("\"major_outage\"") })
        let onPublic = try await pages.call("GET", "/status", token: nil).2
        let onAPI = try await s.call("GET", "/status", token: nil).2
        #expect(onPublic.bodyText.contains("DNS resolution failing"))
        #expect(onPublic.header("ETag") != nil && onPublic.header("ETag") == onAPI.header("ETag"), "one document, whichever listener serves it")
        #expect(onPublic.header("Content-Security-Policy") == onAPI.header("Content-Security-Policy"))
        for path in ["/status/feed.atom", "/healthz"] {
            #expect(try await pages.call("GET", path, token: nil).0 == 200, "\(path)")
        }
        let head = try await pages.call("HEAD", "/status", token: nil, headers: []).2
        #expect(head.status == 200 && head.body.isEmpty && head.header("ETag") == onPublic.header("ETag"))
        // Nothing that takes a token, even with one: events, the admin API, metrics, the console.
        let post = try await pages.call("POST", "/v1/events", body: #"{"incident":"x","status":"triggered","severity":"critical","title":"x"}"#)
        #expect(post.0 == 404, "\(post.2.bodyText) \(post.2.header("Allow") ?? "")")
        for path in ["/v1/deliveries", "/v1/incidents", "/metrics", "/readyz", "/console"] {
            let r = try await pages.call("GET", path, token: ServerTests.adminToken)
            #expect(r.0 == 404, "\(path): \(r.0) \(r.2.bodyText)")
        }
        #expect(try await s.app.store.incident(key: "x") == nil)
        // Its own paths still say which methods they allow.
        let wrongMethod = try await pages.call("DELETE", "/status", token: nil).2
        #expect(wrongMethod.status == 405 && wrongMethod.header("Allow") == "GET, HEAD")
        pages.client.shutdown()
        await s.stop()
    }

    /// A listener cannot be opened or closed by a reload: the answer says it waits for the next start.
    @Test func aPublicListenerAddedByAReloadWaitsForTheNextStart() async throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("herald.yaml").path
        func write(_ extra: String) throws {
            try """
                server:
                  listen: 127.0.0.1:0
                  \(extra)
                store: {path: \(dir.path)/herald.sqlite}
                channels:
                  public: {type: statuspage}
                routes:
                  - channels: [public]
                """.write(toFile: file, atomically: true, encoding: .utf8)
        }
        try write("")
        var logger = Logger(label: "reload-test")
        logger.logLevel = .critical
        let app = try HeraldApplication(config: try ConfigLoader.load(file: file), logger: logger, console: { _ in })
        let s = ServerTests.Running(app: app, task: Task { try await app.run() }, port: 0)
        #expect(await eventually(timeout: .seconds(60)) { app.isReady })
        try write("public_listen: 127.0.0.1:0")
        let report = try await app.reload()
        #expect(report.notes == ["server.public_listen changed to 127.0.0.1:0: it takes effect at the next start"])
        #expect(app.publicPort == 0)
        await s.stop()
    }

    /// Event text reaches the public pages: nothing on them may run script, be framed, be sniffed
    /// into another type, or tell the next site where its reader came from.
    @Test func publicPagesSendAStrictPolicy() async throws {
        let s = try await start()
        for (path, type) in [("/status", "text/html"), ("/status.json", "application/json"), ("/status/feed.atom", "application/atom+xml")] {
            let r = try await s.call("GET", path, token: nil).2
            #expect(r.status == 200 && r.header("Content-Type")?.hasPrefix(type) == true, "\(path)")
            let policy = try #require(r.header("Content-Security-Policy"), "\(path) has no Content-Security-Policy")
            #expect(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"), "\(path): \(policy)")
            #expect(!policy.contains("script-src") && !policy.contains("unsafe-inline"), "\(path): \(policy)")
            #expect(r.header("X-Content-Type-Options") == "nosniff", "\(path)")
            #expect(r.header("Referrer-Policy") == "no-referrer", "\(path)")
            #expect(r.header("X-Frame-Options") == "DENY", "\(path)")
        }
        // The page's one stylesheet is allowed by its hash, which must be the hash of what it sends.
        let page = try await s.call("GET", "/status", token: nil).2
        let style = try #require(page.bodyText.range(of: "<style>").flatMap { start in
            page.bodyText.range(of: "</style>", range: start.upperBound..<page.bodyText.endIndex).map { page.bodyText[start.upperBound..<$0.lowerBound] }
        })
        let hash = "sha256-" + Data(SHA256.hash(data: Data(style.utf8))).base64EncodedString()
        #expect(page.header("Content-Security-Policy")?.contains("style-src '\(hash)'") == true)
        await s.stop()
    }

    func checkFeedWithFeedparser(_ feed: String) async throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("feed.atom")
        try feed.write(to: file, atomically: true, encoding: .utf8)
        let script = """
            import feedparser, json, sys
            d = feedparser.parse(sys.argv[1])
            print(json.dumps({"bozo": int(d.bozo), "version": d.version, "title": d.feed.get("title"),
                              "entries": [{"id": e.id, "title": e.title, "updated": e.updated, "summary": e.get("summary", "")} for e in d.entries]}))
            """
        let python = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "python3"
        let (status, out) = try await run(python, ["-c", script, file.path])
        #expect(status == 0, "feedparser: \(out)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "feedparser said: \(out)")
        #expect(parsed["bozo"] as? Int == 0)
        #expect(parsed["version"] as? String == "atom10")
        #expect(parsed["title"] as? String == "Example Cloud status")
        let entries = try #require(parsed["entries"] as? [[String: String]])
        #expect(entries.count == 2)
        // The incident keeps its first title; markup in it is text, never HTML.
        #expect(entries[0]["title"] == "Resolved: DNS <b>resolution</b> failing")
        #expect(entries[0]["summary"]?.contains("service is restored") == true)
        #expect(entries.allSatisfy { $0["id"]?.hasPrefix("urn:herald:status:dlv_") == true && !($0["updated"] ?? "").isEmpty })
    }

    func checkPageInChromium(_ url: String) async throws {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let binary = try #require(chromium, "chromium is needed (apt-get install chromium; scripts/test installs it)")
        let profile = try temporaryDirectory("chromium-profile")
        let (status, dom) = try await run(binary, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                             "--user-data-dir=\(profile.path)", "--dump-dom", url])
        #expect(status == 0)
        #expect(dom.contains("All systems operational"), "chromium rendered: \(dom.prefix(400))")
        #expect(dom.contains("Service is restored."))
        #expect(dom.contains("Resolved"))
    }

    /// Runs a program to completion with output to a file (no pipe readers).
    func run(_ program: String, _ args: [String]) async throws -> (Int32, String) {
        try await offPool { try Self.runBlocking(program, args) }
    }

    static func runBlocking(_ program: String, _ args: [String]) throws -> (Int32, String) {
        let out = try temporaryDirectory("run").appendingPathComponent("out")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        p.arguments = program.hasPrefix("/") ? args : [program] + args
        p.standardOutput = FileHandle(forWritingAtPath: out.path)
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
