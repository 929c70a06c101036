import Foundation
import HeraldCore
import HeraldServer
import HeraldSQLite
import HeraldStore
import Logging
import Testing
import TestSupport

/// Scheduled maintenance over the admin API, against a real receiver: each step arrives once, on
/// time, threaded (the completion is the all-clear); the window silences its components on the
/// channels it names and lets a breakthrough through; the status page shows it; a restart neither
/// loses nor repeats a step.
@Suite(.serialized) struct MaintenanceAPITests {
    let admin = ServerTests.adminToken

    static func yaml(sink: String, store: String) -> String {
        """
        server:
          listen: 127.0.0.1:0
          tokens:
            - {name: monitoring, token: "\(ServerTests.ingestToken)", scopes: [ingest]}
            - {name: ops, token: "\(ServerTests.adminToken)", scopes: [admin]}
        store: {path: \(store)}
        retry: {initial: 50ms, max: 100ms, max_attempts: 2, max_age: 1h}
        channels:
          news: {type: webhook, url: "\(sink)/news"}
          pager: {type: webhook, url: "\(sink)/pager"}
          public: {type: statuspage}
        routes:
          - match: {labels: {kind: maintenance}}
            channels: [news]
          - match: {severity: [critical]}
            channels: [pager]
          - channels: [public]
        """
    }

    func start(_ sink: TestSink, store: String? = nil) async throws -> ServerTests.Running {
        let path = try store ?? temporaryDirectory().path + "/herald.sqlite"
        return try await ServerTests.launch(Self.yaml(sink: sink.url, store: path))
    }

    /// Another server on the store file of one that was stopped in this process.
    func restart(_ sink: TestSink, store path: String) async throws -> ServerTests.Running {
        try await ServerTests.launch(Self.yaml(sink: sink.url, store: path), restarting: true)
    }

    /// What arrived on `path`: each message's `step` label (or incident) and delivery kind.
    func arrived(_ sink: TestSink, _ path: String) -> [String] {
        sink.received.filter { $0.path == path }.compactMap { r in
            guard let json = r.json, let event = json["event"] as? [String: Any], let kind = json["kind"] as? String else { return nil }
            let labels = event["labels"] as? [String: String] ?? [:]
            return "\(labels["step"] ?? event["incident"] as? String ?? "?"):\(kind)"
        }
    }

    func waitFor(_ sink: TestSink, _ path: String, _ count: Int, timeout: Duration = .seconds(20)) async -> Bool {
        await eventually(timeout: timeout) { arrived(sink, path).count >= count }
    }

    func json(_ s: ServerTests.Running, _ path: String) async throws -> [String: Any] {
        try await s.call("GET", path, token: nil).1
    }

    func at(_ seconds: TimeInterval) -> String { RFC3339.format(Date().addingTimeInterval(seconds)) }

    @Test func eachStepArrivesOnceInTurnAndTheWindowSilencesItsComponents() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await start(sink)
        let (created, window, _) = try await s.call("POST", "/v1/maintenance", token: admin, body: """
            {"title":"Database upgrade","message":"Writes pause for a minute.","components":["web","api"],
             "starts_at":"\(at(6))","duration":"1h","reminder":"3s","silence":["pager"]}
            """)
        #expect(created == 201, "\(window)")
        let id = try #require(window["id"] as? String)
        #expect(id.hasPrefix("mnt_") && window["status"] as? String == "scheduled" && window["created_by"] as? String == "ops")
        // Announced at once; the page lists it as upcoming.
        #expect(await waitFor(sink, "/news", 1))
        var page = try await json(s, "/status.json")
        var planned = page["scheduled_maintenances"] as? [[String: Any]] ?? []
        #expect(planned.map { $0["id"] as? String } == [id] && planned.first?["status"] as? String == "scheduled")
        // The reminder, then the start.
        #expect(await waitFor(sink, "/news", 3))
        #expect(arrived(sink, "/news") == ["announced:notice", "reminder:update", "started:update"])
        // In progress: an incident on web pages nobody on the silenced channel; one that breaks
        // through does; the page shows web under maintenance, api's breakthrough as an outage.
        #expect(try await s.call("POST", "/v1/events", body: """
            {"incident":"web-slow","status":"firing","severity":"critical","title":"web slow","components":["web"]}
            """).0 == 202)
        #expect(try await s.call("POST", "/v1/events", body: """
            {"incident":"api-down","status":"firing","severity":"critical","title":"api down","components":["api"],
             "labels":{"breakthrough":"true"}}
            """).0 == 202)
        #expect(await waitFor(sink, "/pager", 1))
        #expect(arrived(sink, "/pager") == ["api-down:notice"])
        let report = try #require(try await s.app.store.incident(key: "web-slow"))
        #expect(report.deliveries.first { $0.channel == "pager" }?.silencedBy == id)
        #expect(await eventually {
            let p = (try? await json(s, "/status.json")) ?? [:]
            let rows = p["components"] as? [[String: Any]] ?? []
            return rows.contains { $0["name"] as? String == "web" && $0["status"] as? String == "under_maintenance" }
                && rows.contains { $0["name"] as? String == "api" && $0["status"] as? String == "major_outage" }
        })
        let html = String(decoding: try await s.call("GET", "/status", token: nil).2.body, as: UTF8.self)
        #expect(html.contains("Scheduled maintenance") && html.contains("Database upgrade") && html.contains("Under maintenance"))
        // Ended early by the operator: completed now, threaded onto the announcement; then the
        // held notice goes out.
        let (ended, early, _) = try await s.call("DELETE", "/v1/maintenance/\(id)", token: admin)
        #expect(ended == 200 && early["status"] as? String == "completed")
        #expect(await waitFor(sink, "/news", 4))
        #expect(arrived(sink, "/news") == ["announced:notice", "reminder:update", "started:update", "completed:all_clear"])
        let news = sink.received.filter { $0.path == "/news" }.compactMap(\.json)
        #expect(news.dropFirst().allSatisfy { $0["thread"] as? String == news.first?["delivery_id"] as? String })
        #expect(await waitFor(sink, "/pager", 2))
        #expect(arrived(sink, "/pager") == ["api-down:notice", "web-slow:notice"])
        page = try await json(s, "/status.json")
        planned = page["scheduled_maintenances"] as? [[String: Any]] ?? []
        #expect(planned.first?["status"] as? String == "completed")
        let feed = String(decoding: try await s.call("GET", "/status/feed.atom", token: nil).2.body, as: UTF8.self)
        #expect(feed.contains("Maintenance completed: Database upgrade"))
        // A later maintenance's announcement must arrive after anything more of the first: nothing did.
        #expect(try await s.call("POST", "/v1/maintenance", token: admin, body: """
            {"title":"Later","components":["db"],"starts_at":"\(at(3600))","duration":"1h"}
            """).0 == 201)
        #expect(await waitFor(sink, "/news", 5))
        #expect(arrived(sink, "/news") == ["announced:notice", "reminder:update", "started:update", "completed:all_clear", "announced:notice"])
        await s.stop()
        await sink.stop()
    }

    @Test func aRestartNeitherLosesNorRepeatsAStep() async throws {
        let sink = TestSink()
        try await sink.start()
        let store = try temporaryDirectory().path + "/herald.sqlite"
        var s = try await start(sink, store: store)
        #expect(try await s.call("POST", "/v1/maintenance", token: admin, body: """
            {"title":"Kernel update","components":["web"],"starts_at":"\(at(3))","duration":"1h","reminder":"0s"}
            """).0 == 201)
        #expect(await waitFor(sink, "/news", 1))
        await s.stop()
        // Down across the start: the new process posts "started" late, once, and the completion.
        try await Task.sleep(for: .seconds(4))
        s = try await restart(sink, store: store)
        #expect(await waitFor(sink, "/news", 2))
        let id = try #require((try await s.call("GET", "/v1/maintenance", token: admin).1["maintenance"] as? [[String: Any]])?.first?["id"] as? String)
        #expect(try await s.call("DELETE", "/v1/maintenance/\(id)", token: admin).0 == 200)
        #expect(await waitFor(sink, "/news", 3))
        #expect(arrived(sink, "/news") == ["announced:notice", "started:update", "completed:all_clear"])
        // Restarted again after it is over: nothing is posted again. A later announcement must
        // arrive after any repeat would have.
        await s.stop()
        s = try await restart(sink, store: store)
        #expect(try await s.call("POST", "/v1/maintenance", token: admin, body: """
            {"title":"Later","components":["db"],"starts_at":"\(at(3600))","duration":"1h"}
            """).0 == 201)
        #expect(await waitFor(sink, "/news", 4))
        #expect(arrived(sink, "/news") == ["announced:notice", "started:update", "completed:all_clear", "announced:notice"])
        await s.stop()
        await sink.stop()
    }

    @Test func aWindowEndsOnTimeWithNoOneToEndIt() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await start(sink)
        let (_, window, _) = try await s.call("POST", "/v1/maintenance", token: admin, body: """
            {"title":"Short","components":["web"],"starts_at":"\(at(2))","duration":"2s","reminder":"0s"}
            """)
        let end = try #require((window["ends_at"] as? String).flatMap(RFC3339.parse))
        #expect(await eventually(timeout: .seconds(30)) { arrived(sink, "/news").last == "completed:all_clear" })
        // A timer to the end, not a poll: not before it. "started" is there unless the machine was
        // so slow that the end had come before it could be posted (then it is skipped, not late).
        #expect(Date() >= end)
        let steps = arrived(sink, "/news")
        #expect(steps == ["announced:notice", "started:update", "completed:all_clear"]
                || steps == ["announced:notice", "completed:all_clear"])
        await s.stop()
        await sink.stop()
    }

    @Test func cancellingBeforeTheStartTellsWhoeverWasToldAndSilencesNothing() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await start(sink)
        let (_, window, _) = try await s.call("POST", "/v1/maintenance", token: admin, body: """
            {"title":"Network work","components":["web"],"starts_at":"\(at(3600))","ends_at":"\(at(7200))","silence":["pager"]}
            """)
        let id = try #require(window["id"] as? String)
        #expect(await waitFor(sink, "/news", 1))
        #expect((try await s.call("GET", "/v1/maintenance", token: admin).1["maintenance"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        // It shows among the silences; cancelling it is expiring it.
        #expect((try await s.call("GET", "/v1/silences", token: admin).1["silences"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true)
        let (status, cancelled, _) = try await s.call("DELETE", "/v1/maintenance/\(id)", token: admin)
        #expect(status == 200 && cancelled["status"] as? String == "cancelled")
        #expect(await waitFor(sink, "/news", 2))
        #expect(arrived(sink, "/news") == ["announced:notice", "cancelled:all_clear"])
        // The cancellation names the window as planned; cancelling again is a conflict.
        let news = sink.received.filter { $0.path == "/news" }.compactMap(\.json)
        let words = ((news.last?["event"] as? [String: Any])?["message"] as? String) ?? ""
        #expect(words.contains(Silence.human(try #require((window["starts_at"] as? String).flatMap(RFC3339.parse)))), "\(words)")
        let planned = try #require((window["starts_at"] as? String).flatMap(RFC3339.parse))
        let named = try #require((cancelled["starts_at"] as? String).flatMap(RFC3339.parse))
        #expect(abs(named.timeIntervalSince(planned)) < 0.01, "cancelled at once, yet the window still says it starts at \(named)")
        #expect(try await s.call("DELETE", "/v1/maintenance/\(id)", token: admin).0 == 409)
        #expect((try await s.call("GET", "/v1/maintenance", token: admin).1["maintenance"] as? [[String: Any]])?.isEmpty == true)
        let all = try await s.call("GET", "/v1/maintenance?all=true", token: admin).1["maintenance"] as? [[String: Any]] ?? []
        #expect(all.first?["status"] as? String == "cancelled")
        #expect((all.first?["steps"] as? [String: String])?.keys.sorted() == ["announced", "cancelled"])
        let (got, one, _) = try await s.call("GET", "/v1/maintenance/\(id)", token: admin)
        #expect(got == 200 && one["title"] as? String == "Network work")
        // A silence is not a maintenance window.
        let (_, silence, _) = try await s.call("POST", "/v1/silences", token: admin, body: #"{"channels":["pager"],"duration":"1h","comment":"x"}"#)
        let sid = try #require(silence["id"] as? String)
        #expect(try await s.call("GET", "/v1/maintenance/\(sid)", token: admin).0 == 404)
        #expect(try await s.call("DELETE", "/v1/maintenance/\(sid)", token: admin).0 == 404)
        #expect(try await s.app.store.silence(id: sid).map { $0.endsAt > Date() } == true)
        await s.stop()
        await sink.stop()
    }

    @Test func aMalformedMaintenanceGetsA400NamingTheField() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await start(sink)
        let start = at(3600)
        let cases: [(String, String)] = [
            (#"{"components":["web"],"starts_at":"\#(start)","duration":"1h"}"#, "title"),
            (#"{"title":" ","components":["web"],"starts_at":"\#(start)","duration":"1h"}"#, "title"),
            (#"{"title":"x","starts_at":"\#(start)","duration":"1h"}"#, "components"),
            (#"{"title":"x","components":["web",""],"starts_at":"\#(start)","duration":"1h"}"#, "components[1]"),
            (#"{"title":"x","components":"web","starts_at":"\#(start)","duration":"1h"}"#, "components"),
            (#"{"title":"x","components":["web"],"duration":"1h"}"#, "starts_at"),
            (#"{"title":"x","components":["web"],"starts_at":"tomorrow","duration":"1h"}"#, "starts_at"),
            (#"{"title":"x","components":["web"],"starts_at":"\#(start)"}"#, "ends_at"),
            (#"{"title":"x","components":["web"],"starts_at":"\#(start)","duration":"1h","ends_at":"\#(start)"}"#, "duration"),
            (#"{"title":"x","components":["web"],"starts_at":"\#(start)","ends_at":"\#(start)"}"#, "ends_at"),
            (#"{"title":"x","components":["web"],"starts_at":"2001-01-01T00:00:00Z","ends_at":"2001-01-01T01:00:00Z"}"#, "ends_at"),
            (#"{"title":"x","components":["web"],"starts_at":"2099-01-01T00:00:00Z","duration":"1h"}"#, "starts_at"),
            (#"{"title":"x","components":["web"," "],"starts_at":"\#(start)","duration":"1h"}"#, "components[1]"),
            (#"{"title":"x","components":["web"],"starts_at":"\#(start)","duration":"1h","reminder":"soon"}"#, "reminder"),
            (#"{"title":"x","components":["web"],"starts_at":"\#(start)","duration":"1h","silence":["nope"]}"#, "silence[0]"),
            (#"{"title":"x","components":["web"],"starts_at":"\#(start)","duration":"1h","colour":"red"}"#, "colour"),
        ]
        for (body, field) in cases {
            let (status, json, _) = try await s.call("POST", "/v1/maintenance", token: admin, body: body)
            #expect(status == 400, "\(body)")
            #expect(json["field"] as? String == field, "\(body): \(json)")
        }
        #expect(try await s.call("POST", "/v1/maintenance", token: nil, body: "{}").0 == 401)
        // A sender cannot post to (or pose as) a maintenance's incident.
        let (refused, why, _) = try await s.call("POST", "/v1/events", body: #"{"incident":"maintenance:mnt_x","status":"resolved","title":"x"}"#)
        #expect(refused == 400 && why["field"] as? String == "incident")
        #expect(try await s.call("POST", "/v1/maintenance", body: "{}").0 == 403)
        #expect(try await s.call("GET", "/v1/maintenance?all=maybe", token: admin).1["field"] as? String == "all")
        let (wrongMethod, _, answer) = try await s.call("PUT", "/v1/maintenance/mnt_x", token: admin, body: "{}")
        #expect(wrongMethod == 405 && answer.headers.first { $0.name.lowercased() == "allow" }?.value == "GET, DELETE")
        // Nothing of the refused ones was stored (so nothing can be announced).
        #expect(try await s.app.store.maintenanceWindows(endingAfter: .distantPast, limit: 10).isEmpty)
        await s.stop()
        await sink.stop()
    }
}

extension MaintenanceAPITests {
    /// A step committed before a crash but never recorded on its window, its idempotency key
    /// pruned since: the next process finds the event in the store and does not post it again.
    @Test func aStepPostedButNotRecordedIsNotPostedAgain() async throws {
        let sink = TestSink()
        try await sink.start()
        let path = try temporaryDirectory().path + "/herald.sqlite"
        let now = Date()
        do {
            let store = try SQLiteStore(path: path)
            var window = try Silence.maintenance(Maintenance(title: "Disk swap", components: ["db"], reminder: 0), id: "mnt_crash",
                                                 channels: [], startsAt: now.addingTimeInterval(-60), endsAt: now.addingTimeInterval(3600),
                                                 createdBy: "ops", createdAt: now.addingTimeInterval(-120))
            _ = window.record(.announced, at: now.addingTimeInterval(-120))
            try await store.addSilence(window)
            // What the crashed process did: the announcement, sent; then "started" committed (its
            // key since pruned), its update not yet sent, and the process gone before recording it.
            let announced = try #require(window.maintenanceEvent(.announced, id: Identifier.make(prefix: "evt"), now: now))
            _ = try await store.enqueue([EnqueueRequest(event: announced, channels: ["news"])], now: now)
            let sent = try await store.claim(channel: "news", limit: 1, now: now, owner: "crashed", leaseUntil: now.addingTimeInterval(60))
            try await store.record([AttemptRecord(deliveryId: try #require(sent.first).delivery.id, lease: sent[0].lease, startedAt: now,
                                                  duration: .milliseconds(5), outcome: .delivered(reference: "r-1"), status: 200)], now: now)
            let started = try #require(window.maintenanceEvent(.started, id: Identifier.make(prefix: "evt"), now: now))
            _ = try await store.enqueue([EnqueueRequest(event: started, channels: ["news"])], now: now)
            window = try #require(try await store.silence(id: "mnt_crash"))
            #expect(window.maintenance?.posted(.started) == nil)
        }
        let s = try await restart(sink, store: path)
        // The committed update goes out once; "started" is recorded, not posted again.
        #expect(await waitFor(sink, "/news", 1))
        #expect(await eventually { (try? await s.app.store.silence(id: "mnt_crash"))??.maintenance?.posted(.started) != nil })
        // Ended now: the completion must arrive after any repeat of "started" would have.
        #expect(try await s.call("DELETE", "/v1/maintenance/mnt_crash", token: admin).0 == 200)
        #expect(await waitFor(sink, "/news", 2))
        #expect(arrived(sink, "/news") == ["started:update", "completed:all_clear"])
        await s.stop()
        await sink.stop()
    }
}
