import Foundation
import HeraldTransport
import Synchronization
import Testing
import TestSupport

/// A receiver that is down for the pause window pauses its channel: the operator hears of it on
/// the `health.notify` channel, the channel sends only one probe per `probe_every` meanwhile, and
/// when the receiver is back the waiting work drains and the recovery arrives as the notice's
/// all-clear. Nothing waiting is lost.
@Suite(.serialized) struct ChannelHealthTests {
    static let ingest = "health-ingest-token-0123456789"
    static let admin = "health-admin-token-0123456789"

    /// One request the sink answered, with when and how.
    struct Seen: Sendable {
        var path: String
        var at: ContinuousClock.Instant
        var status: Int
        var key: String?
        var kind: String?
    }

    @Test func aDeadReceiverPausesItsChannelAndTheOperatorHearsOfThePauseAndTheRecovery() async throws {
        let dir = try temporaryDirectory("herald-health")
        let down = Mutex(true)
        let seen = Mutex<[Seen]>([])
        let sink = TestSink { request, _ in
            let failing = request.path == "/hook" && down.withLock { $0 }
            let json = request.json
            seen.withLock {
                $0.append(Seen(path: request.path, at: .now, status: failing ? 503 : 200,
                               key: (json?["incident"] as? [String: Any])?["key"] as? String, kind: json?["kind"] as? String))
            }
            return failing ? .init(status: 503, body: "upstream gone") : .ok
        }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let config = dir.appendingPathComponent("herald.yaml").path
        try """
            \(serverYAML(ingest: Self.ingest, admin: Self.admin))
            store: {path: "\(dir.path)/herald.sqlite"}
            retry: {initial: 100ms, max: 200ms, max_attempts: 1000, max_age: 1h}
            health: {pause_after: 1500ms, probe_every: 800ms, notify: [ops, hook]}
            channels:
              hook: {type: webhook, url: "\(sink.url)/hook", concurrency: 2}
              ops:
                type: webhook
                url: "\(sink.url)/ops"
                health: {pause_after: off}
            routes:
              - channels: [hook]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let herald = try HeraldProcess(["serve", "--config", config])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let server = "http://127.0.0.1:\(port)"
        let client = CurlTransport()
        defer { client.shutdown() }
        let healthKey = "herald:channel:hook"
        func ops() -> [Seen] { seen.withLock { $0.filter { $0.path == "/ops" && $0.key == healthKey } } }
        func hook() -> [Seen] { seen.withLock { $0.filter { $0.path == "/hook" } } }
        func channels() async throws -> [String: [String: Any]] {
            let answer = try await client.send(HTTPRequest(method: "GET", url: "\(server)/v1/channels",
                                                           headers: [("Authorization", "Bearer \(Self.admin)")]))
            let rows = (try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])?["channels"] as? [[String: Any]] ?? []
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as? String ?? "", $0) })
        }

        let keys = (0..<5).map { "down-\($0)" }
        for key in keys { #expect(try await postEvent(client, port: port, token: Self.ingest, incident: key) == 202) }

        // Every attempt fails for the pause window: the channel pauses and the operator is told,
        // on ops only (a channel is never told about itself).
        #expect(await eventually(timeout: .seconds(30)) { ops().count == 1 }, "no pause notice: \(herald.stderr.suffix(3000))")
        let notice = try #require(ops().first)
        #expect(notice.kind == "notice")
        let opsBody = try #require(sink.received.first { $0.path == "/ops" }?.json)
        let event = opsBody["event"] as? [String: Any]
        #expect((event?["title"] as? String)?.hasPrefix("Channel hook is paused") == true, "\(opsBody)")
        #expect((event?["message"] as? String)?.contains("503") == true, "the last error is in the notice: \(opsBody)")
        #expect(!hook().contains { $0.key == healthKey }, "the dead channel was told about itself")
        #expect(herald.stderr.contains("channel paused"))

        let listed = try await channels()
        #expect(listed["hook"]?["state"] as? String == "paused", "\(listed)")
        #expect((listed["hook"]?["failures"] as? Int ?? 0) >= 3)
        #expect(listed["hook"]?["next_probe_at"] is String)
        #expect(listed["ops"]?["state"] as? String == "healthy" && listed["ops"]?["pause_after"] as? String == "off")
        let cli = try await HeraldBinary.run(["channels", "--server", server, "--token", Self.admin])
        #expect(cli.0 == 0 && cli.1.contains("paused") && cli.1.contains("healthy"), "\(cli)")
        let metrics = try await client.send(HTTPRequest(method: "GET", url: "\(server)/metrics"))
        #expect(String(decoding: metrics.body, as: UTF8.self).contains(#"herald_channel_paused{channel="hook"} 1"#))

        // Paused, the channel sends one probe per probe_every (800 ms; its retries came every
        // 100–200 ms). Judged on the average gap over five requests at the sink: one request's
        // arrival can lag its claim under load, and an attempt started before the pause can land
        // after the notice, but neither moves the average of four gaps far.
        let pausedAt = notice.at
        #expect(await eventually(timeout: .seconds(30)) { hook().filter { $0.at > pausedAt }.count >= 5 })
        let probes = hook().filter { $0.at > pausedAt }.map(\.at).prefix(5)
        let span = probes.last! - probes.first!
        #expect(span / 4 >= .milliseconds(450), "5 requests in \(span) while paused; probe_every is 800ms")
        // New work while paused waits; none of it is lost.
        #expect(try await postEvent(client, port: port, token: Self.ingest, incident: "while-paused") == 202)

        // The receiver is back: the next probe succeeds, the waiting work drains, and the
        // recovery reaches ops as the all-clear of the pause notice.
        down.withLock { $0 = false }
        let all = keys + ["while-paused"]
        #expect(await eventually(timeout: .seconds(30)) {
            Set(hook().filter { $0.status == 200 }.compactMap(\.key)) == Set(all)
        }, "delivered: \(hook().filter { $0.status == 200 }.compactMap(\.key)); \(herald.stderr.suffix(2000))")
        #expect(await eventually(timeout: .seconds(30)) { ops().count == 2 }, "no recovery notice")
        #expect(ops().last?.kind == "all_clear", "\(ops().map(\.kind))")
        let recovery = try #require(sink.received.last { $0.path == "/ops" }?.json)
        #expect(recovery["thread"] as? String == opsBody["delivery_id"] as? String, "the recovery is not a reply to the pause notice")
        #expect(try await channels()["hook"]?["state"] as? String == "healthy")

        // Nothing more about the channel arrives: a later event goes through the hook, and by then
        // ops has still heard exactly the pause and the recovery.
        #expect(try await postEvent(client, port: port, token: Self.ingest, incident: "after") == 202)
        #expect(await eventually(timeout: .seconds(30)) { hook().contains { $0.key == "after" && $0.status == 200 } })
        #expect(ops().map(\.kind) == ["notice", "all_clear"])
        let after = try await client.send(HTTPRequest(method: "GET", url: "\(server)/metrics"))
        #expect(String(decoding: after.body, as: UTF8.self).contains(#"herald_channel_paused{channel="hook"} 0"#))

        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        #expect(!herald.stderr.contains(Self.admin) && !herald.stderr.contains(Self.ingest))
    }
}
