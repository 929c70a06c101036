import Foundation
import HeraldCore
import HeraldServer
import HeraldSQLite
import HeraldStore
import HeraldTransport
import Logging
import Testing
import TestSupport

/// The HTTP API in process, on a real loopback port, driven by the libcurl client.
@Suite(.serialized) struct ServerTests {
    static let ingestToken = "ingest-token-0123456789abcdef"
    static let adminToken = "admin-token-9876543210fedcba"
    static let webhookSecret = "whsec_" + Data("server-test-key".utf8).base64EncodedString()

    final class Running: Sendable {
        let app: HeraldApplication
        let task: Task<Void, any Error>
        /// /metrics is the whole test process's registry (every test's channels, a histogram each):
        /// past the transport's default 64 KiB cap, which would cut it at a random family.
        let client = CurlTransport(maxResponseBytes: 16 << 20)
        let base: String
        init(app: HeraldApplication, task: Task<Void, any Error>, port: Int) {
            self.app = app
            self.task = task
            base = "http://127.0.0.1:\(port)"
        }

        func call(_ method: String, _ path: String, token: String? = ServerTests.ingestToken, body: String? = nil,
                  headers: [(String, String)] = [("Content-Type", "application/json")]) async throws -> (Int, [String: Any], HTTPResponse) {
            var request = HTTPRequest(method: method, url: base + path, timeout: .seconds(10))
            if let token { request.headers.append((name: "Authorization", value: "Bearer \(token)")) }
            for (k, v) in headers { request.headers.append((name: k, value: v)) }
            if let body { request.body = Array(body.utf8) }
            let response = try await client.send(request)
            let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
            return (response.status, json, response)
        }

        func stop() async {
            task.cancel()
            _ = try? await task.value
            client.shutdown()
        }
    }

    func start(sinkURL: String, maxBody: Int = 4096, extraChannels: String = "") async throws -> Running {
        let dir = try temporaryDirectory()
        let yaml = """
            server:
              listen: 127.0.0.1:0
              max_body_bytes: \(maxBody)
              tokens:
                - {name: monitoring, token: "\(Self.ingestToken)", scopes: [ingest]}
                - {name: ops, token: "\(Self.adminToken)", scopes: [admin]}
            store: {path: \(dir.path)/herald.sqlite}
            retry: {initial: 50ms, max: 100ms, max_attempts: 2, max_age: 1h}
            channels:
              hook:
                type: webhook
                url: \(sinkURL)
                secret: "\(Self.webhookSecret)"
              quiet:
                type: console
            \(extraChannels)
            routes:
              - match: {severity: [critical, major]}
                channels: [hook]
              - channels: [quiet]
            """
        return try await Self.launch(yaml)
    }

    /// A server in this process on `yaml`, listening (on the port its config names, or any).
    /// `restarting`: on the store file of a server stopped in this process, whose lock on the file
    /// lasts as long as its objects do (its last connection lets go of them a moment after it
    /// stops): the new one does not take the lock.
    static func launch(_ yaml: String, file: String = "test.yaml", restarting: Bool = false) async throws -> Running {
        let config = try ConfigLoader.load(yaml: yaml, file: file)
        var logger = Logger(label: "server-test")
        logger.logLevel = .critical
        let app = try HeraldApplication(config: config, store: SQLiteStore(path: config.store.path, exclusive: !restarting),
                                        logger: logger, console: { _ in })
        let task = Task { try await app.run() }
        #expect(await eventually(timeout: .seconds(60)) { app.isReady }, "the server did not start listening")
        return Running(app: app, task: task, port: app.port)
    }

    @Test func acceptsAnEventOnlyAfterCommitAndDeliversIt() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await start(sinkURL: sink.url + "/in")
        let (status, json, _) = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"firing","severity":"critical","title":"DNS down"}"#)
        #expect(status == 202)
        #expect(json["incident"] as? String == "dns")
        #expect(json["deliveries"] as? Int == 2)
        let eventId = try #require(json["event_id"] as? String)
        // Committed before the answer: the store already has it.
        let detail = try #require(try await s.app.store.incident(key: "dns"))
        #expect(detail.events.map(\.id) == [eventId])
        #expect(await sink.waitFor(count: 1))
        #expect((sink.received[0].json?["event"] as? [String: Any])?["id"] as? String == eventId)
        await s.stop()
    }

    @Test func badInputGetsTheExactStatusAndNamesTheField() async throws {
        let s = try await start(sinkURL: "http://127.0.0.1:\(closedPort())/")
        var r = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"triggered"}"#)
        #expect(r.0 == 400)
        #expect(r.1["field"] as? String == "title")
        #expect(r.1["error"] as? String == "is required")
        r = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"bogus","title":"t"}"#)
        #expect(r.0 == 400 && r.1["field"] as? String == "status")
        r = try await s.call("POST", "/v1/events", body: "{not json")
        #expect(r.0 == 400 && r.1["error"] as? String == "body is not valid JSON")
        r = try await s.call("POST", "/v1/events", body: "incident=dns", headers: [("Content-Type", "application/x-www-form-urlencoded")])
        #expect(r.0 == 415 && r.1["field"] as? String == "Content-Type")
        r = try await s.call("POST", "/v1/events", body: "{\"incident\":\"" + String(repeating: "x", count: 5000) + "\"}")
        #expect(r.0 == 413)
        r = try await s.call("POST", "/v1/events", token: nil, body: #"{"incident":"a","status":"triggered","title":"t"}"#)
        #expect(r.0 == 401 && r.2.header("WWW-Authenticate") != nil)
        r = try await s.call("POST", "/v1/events", token: "wrong-token", body: #"{"incident":"a","status":"triggered","title":"t"}"#)
        #expect(r.0 == 401 && r.1["error"] as? String == "invalid token")
        r = try await s.call("POST", "/v1/events", token: Self.adminToken, body: #"{"incident":"a","status":"triggered","title":"t"}"#)
        #expect(r.0 == 403)
        r = try await s.call("GET", "/v1/deliveries", token: Self.ingestToken)
        #expect(r.0 == 403)
        r = try await s.call("GET", "/v1/deliveries?state=lost", token: Self.adminToken)
        #expect(r.0 == 400 && r.1["field"] as? String == "state")
        r = try await s.call("GET", "/v1/nowhere", token: Self.adminToken)
        #expect(r.0 == 404 && r.1["error"] != nil)
        // Nothing was stored by any of these.
        #expect(try await s.app.store.incidents(limit: 10).isEmpty)
        await s.stop()
    }

    @Test func idempotencyKeyReturnsTheFirstAnswerAndRejectsAnotherBody() async throws {
        let s = try await start(sinkURL: "http://127.0.0.1:\(closedPort())/")
        let body = #"{"incident":"dns","status":"triggered","title":"DNS down","severity":"minor"}"#
        let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "nagios-42")]
        let first = try await s.call("POST", "/v1/events", body: body, headers: headers)
        let again = try await s.call("POST", "/v1/events", body: body, headers: headers)
        #expect(first.0 == 202 && again.0 == 202)
        #expect(first.1["event_id"] as? String == again.1["event_id"] as? String)
        let other = try await s.call("POST", "/v1/events", body: body.replacingOccurrences(of: "minor", with: "info"), headers: headers)
        #expect(other.0 == 409 && other.1["field"] as? String == "Idempotency-Key")
        #expect(try await s.app.store.incident(key: "dns")?.events.count == 1)
        await s.stop()
    }

    @Test func adminListsFailuresAndReplaysThem() async throws {
        let sink = TestSink { r, _ in .init(status: 410, body: "gone: endpoint retired") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await start(sinkURL: sink.url + "/hook")
        _ = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"triggered","title":"DNS down","severity":"critical"}"#)
        #expect(try await eventually { try await s.app.store.countsByState()[.failed] == 1 })
        var r = try await s.call("GET", "/v1/deliveries?state=failed", token: Self.adminToken)
        let list = try #require(r.1["deliveries"] as? [[String: Any]])
        #expect(list.count == 1)
        let id = try #require(list[0]["id"] as? String)
        #expect(list[0]["last_error"] as? String == "clientError 410: HTTP 410: gone: endpoint retired")
        r = try await s.call("GET", "/v1/deliveries/\(id)", token: Self.adminToken)
        #expect((r.1["attempts"] as? [[String: Any]])?.count == 1)
        r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: #"{"state":"failed","dry_run":true}"#)
        #expect(r.0 == 200 && r.1["replayed"] as? Int == 1 && r.1["dry_run"] as? Bool == true)
        #expect(try await s.app.store.countsByState()[.failed] == 1)
        sink.setScript { _, _ in .ok }
        r = try await s.call("POST", "/v1/deliveries/\(id)/replay", token: Self.adminToken)
        #expect(r.0 == 202)
        #expect(try await eventually { try await s.app.store.delivery(id: id)?.delivery.state == .delivered })
        r = try await s.call("POST", "/v1/deliveries/\(id)/replay", token: Self.adminToken)
        #expect(r.0 == 409)
        r = try await s.call("POST", "/v1/deliveries/dlv_nope/replay", token: Self.adminToken)
        #expect(r.0 == 404)
        r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: #"{"state":"delivered"}"#)
        #expect(r.0 == 400 && r.1["field"] as? String == "state")
        r = try await s.call("GET", "/v1/incidents/dns", token: Self.adminToken)
        #expect(r.0 == 200 && (r.1["deliveries"] as? [[String: Any]])?.count == 2)
        // Neither the webhook path nor any token appears in any admin answer.
        let all = try await s.call("GET", "/v1/deliveries/\(id)", token: Self.adminToken).2.bodyText
        #expect(!all.contains(Self.ingestToken) && !all.contains(Self.webhookSecret))
        await s.stop()
    }

    /// `POST /v1/replay {"channel": C, "to": D}`: a dead (or removed) channel's failed notice goes to
    /// another channel, which then holds the incident's thread; mistakes name their field.
    @Test func aDeadChannelsNoticesGoToAnotherChannel() async throws {
        let sink = TestSink { _, _ in .init(status: 410, body: "gone") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await start(sinkURL: sink.url + "/hook", extraChannels: "  spare: {type: console}")
        _ = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"triggered","title":"DNS down","severity":"critical"}"#)
        #expect(try await eventually { try await s.app.store.countsByState()[.failed] == 1 })
        for (body, field) in [(#"{"to":"spare"}"#, "channel"), (#"{"channel":"hook","to":"nope"}"#, "to"),
                              (#"{"channel":"hook","to":"hook"}"#, "to"), (#"{"channel":"hook","to":"spare","state":"failed"}"#, "state"),
                              (#"{"channel":"hook","to":7}"#, "to")] {
            let r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: body)
            #expect(r.0 == 400 && r.1["field"] as? String == field, "\(body): \(r.0) \(r.1)")
        }
        var r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: #"{"channel":"hook","to":"spare","dry_run":true}"#)
        #expect(r.0 == 200 && r.1["replayed"] as? Int == 1 && r.1["dry_run"] as? Bool == true, "\(r.1)")
        #expect(try await s.app.store.deliveries(DeliveryFilter(channel: "spare")).isEmpty)
        r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: #"{"channel":"hook","to":"spare"}"#)
        #expect(r.0 == 200 && r.1["replayed"] as? Int == 1)
        #expect(try await eventually {
            try await s.app.store.deliveries(DeliveryFilter(channel: "spare")).map { "\($0.kind.rawValue):\($0.state.rawValue)" } == ["notice:delivered"]
        })
        #expect(try await s.app.store.deliveries(DeliveryFilter(channel: "hook")).map(\.lastError) == ["sent to spare instead by an operator"])
        // The resolve's all-clear goes where the notice went.
        _ = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"resolved","title":"DNS down"}"#)
        #expect(try await eventually {
            try await s.app.store.deliveries(DeliveryFilter(channel: "spare")).contains { $0.kind == .allClear && $0.state == .delivered }
        })
        // Delivered before the all-clear was: the quiet channel's own notice and all-clear, both through.
        #expect(try await eventually { try await s.app.store.countsByState()[.queued, default: 0] == 0 })
        #expect(sink.received.count == 1, "the dead endpoint was tried once, by the notice, and got no summary")
        await s.stop()
    }

    /// `since` is a duration back from now, refused above 100 years: before, 99999999999999999999d
    /// stopped the server converting it to milliseconds (one admin request took Herald down).
    @Test func aSinceBeyondOneHundredYearsIsA400NamingTheField() async throws {
        let sink = TestSink { _, _ in .init(status: 410, body: "gone") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await start(sinkURL: sink.url + "/hook")
        _ = try await s.call("POST", "/v1/events", body: #"{"incident":"dns","status":"triggered","title":"DNS down","severity":"critical"}"#)
        #expect(try await eventually { try await s.app.store.countsByState()[.failed] == 1 })
        for since in ["99999999999999999999d", "36501d", "876001h", "9223372036854775808ms", String(repeating: "9", count: 400) + "s"] {
            var r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: #"{"state":"failed","since":"\#(since)","dry_run":true}"#)
            #expect(r.0 == 400 && r.1["field"] as? String == "since", "\(since): \(r.0) \(r.1)")
            #expect((r.1["error"] as? String)?.contains("at most 36500d") == true, "\(r.1)")
            r = try await s.call("GET", "/v1/deliveries?state=failed&since=\(since)", token: Self.adminToken)
            #expect(r.0 == 400 && r.1["field"] as? String == "since", "\(since): \(r.0) \(r.1)")
        }
        // The cap itself is accepted, and the failure from a minute ago is within it.
        let r = try await s.call("POST", "/v1/replay", token: Self.adminToken, body: #"{"state":"failed","since":"36500d","dry_run":true}"#)
        #expect(r.0 == 200 && r.1["replayed"] as? Int == 1, "\(r.1)")
        #expect(try await s.call("GET", "/healthz", token: nil).0 == 200)
        await s.stop()
    }

    @Test func healthReadinessAndMetrics() async throws {
        let s = try await start(sinkURL: "http://127.0.0.1:\(closedPort())/")
        #expect(try await s.call("GET", "/healthz", token: nil).0 == 200)
        #expect(try await s.call("GET", "/readyz", token: nil).0 == 200)
        _ = try await s.call("POST", "/v1/events", body: #"{"incident":"m","status":"triggered","title":"t","severity":"info"}"#)
        let metrics = try await s.call("GET", "/metrics", token: nil).2.bodyText
        #expect(metrics.contains("herald_events_received_total"))
        #expect(metrics.contains("herald_queue_depth{state=\"queued\"}") || metrics.contains("herald_queue_depth{state=\"delivered\"}"))
        #expect(try await eventually { try await s.call("GET", "/metrics", token: nil).2.bodyText.contains("herald_deliveries_total") })
        await s.stop()
    }
}
