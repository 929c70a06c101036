import Foundation
import HeraldTransport
import Testing
import TestSupport

/// A running server re-reads its configuration on SIGHUP and on `herald reload`: a channel and a
/// route added while deliveries flow take effect without losing or repeating any of them, a file
/// with a mistake changes nothing (and says what is wrong, as `herald check` does), and a channel
/// removed stops being routed to.
@Suite(.serialized) struct ReloadTests {
    static let ingest = "reload-ingest-token-0123456789"
    static let admin = "reload-admin-token-0123456789"

    func writeConfig(_ path: String, dir: URL, sink: String, audit: Bool, routes: String? = nil) throws {
        try """
            \(serverYAML(ingest: Self.ingest, admin: Self.admin))
            store: {path: "\(dir.path)/herald.sqlite"}
            retry: {initial: 100ms, max: 300ms, max_attempts: 100, max_age: 1h}
            channels:
              hook: {type: webhook, url: "\(sink)/hook", concurrency: 1}
            \(audit ? "  audit: {type: webhook, url: \"\(sink)/audit\"}" : "")
            routes:
              - channels: \(routes ?? (audit ? "[hook, audit]" : "[hook]"))
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func aChannelAddedWhileDeliveriesFlowTakesOverWithoutLossAndABadFileChangesNothing() async throws {
        let dir = try temporaryDirectory("herald-reload")
        // A slow receiver, one request at a time: deliveries queue up in the lane (30 × 150 ms),
        // so the reload lands mid-stream.
        let sink = TestSink { _, _ in .init(delay: .milliseconds(150)) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let config = dir.appendingPathComponent("herald.yaml").path
        try writeConfig(config, dir: dir, sink: sink.url, audit: false)
        let herald = try HeraldProcess(["serve", "--config", config])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let server = "http://127.0.0.1:\(port)"
        let client = CurlTransport()
        defer { client.shutdown() }
        func post(_ incident: String) async throws -> Int {
            try await postEvent(client, port: port, token: Self.ingest, incident: incident)
        }
        func keys(_ path: String) -> [String] {
            sink.received.filter { $0.path == path }.compactMap { ($0.json?["incident"] as? [String: Any])?["key"] as? String }
        }
        func reloads() -> Int { herald.stderr.components(separatedBy: "configuration reloaded").count - 1 }

        for i in 0..<30 { #expect(try await post("before-\(i)") == 202) }
        // The audit channel and its route arrive while the hook lane still works through its backlog.
        try writeConfig(config, dir: dir, sink: sink.url, audit: true)
        herald.signal(SIGHUP)
        #expect(await eventually(timeout: .seconds(30)) { reloads() == 1 }, "no reload: \(herald.stderr.suffix(2000))")
        #expect(sink.received.filter { $0.path == "/hook" }.count < 30, "the backlog was gone before the reload; the test proves less than it says")
        for i in 0..<10 { #expect(try await post("after-\(i)") == 202) }

        let before = (0..<30).map { "before-\($0)" }, after = (0..<10).map { "after-\($0)" }
        #expect(await eventually(timeout: .seconds(60)) { keys("/hook").count >= 40 && keys("/audit").count >= 10 },
                "hook: \(keys("/hook").count), audit: \(keys("/audit").count); \(herald.stderr.suffix(2000))")
        // Every event reached the hook once; the audit channel got exactly those routed after it existed.
        #expect(keys("/hook").sorted() == (before + after).sorted())
        #expect(Set(keys("/audit")) == Set(after) && keys("/audit").count == 10, "\(keys("/audit"))")

        // A route naming a channel that does not exist: `herald reload` refuses with the error at
        // its line, and the running configuration is untouched.
        try writeConfig(config, dir: dir, sink: sink.url, audit: true, routes: "[hook, audti]")
        let refused = try await HeraldBinary.run(["reload", "--server", server, "--token", Self.admin])
        #expect(refused.0 == 3, "\(refused)")
        #expect(refused.2.contains("herald.yaml:") && refused.2.contains("audti") && refused.2.contains("unchanged"), "\(refused.2)")
        #expect(try await post("still-both") == 202)
        #expect(await eventually(timeout: .seconds(30)) { keys("/hook").contains("still-both") && keys("/audit").contains("still-both") })

        // An ingest token may not reload.
        let forbidden = try await HeraldBinary.run(["reload", "--server", server, "--token", Self.ingest])
        #expect(forbidden.0 == 3 && forbidden.2.contains("403"), "\(forbidden)")

        // Removing the channel: `herald reload` says so, and new events are routed to the hook only.
        try writeConfig(config, dir: dir, sink: sink.url, audit: false)
        let removed = try await HeraldBinary.run(["reload", "--server", server, "--token", Self.admin])
        #expect(removed.0 == 0 && removed.1.contains("removed: audit"), "\(removed)")
        // What waited for it is said, and stays: everything routed to it was delivered.
        #expect(removed.1.contains("note: channel audit removed: 0 deliveries wait for it in the store"), "\(removed)")
        #expect(try await post("hook-only") == 202)
        #expect(await eventually(timeout: .seconds(30)) { keys("/hook").contains("hook-only") })
        let listed = try await client.send(HTTPRequest(method: "GET", url: "\(server)/v1/deliveries?incident=hook-only",
                                                       headers: [("Authorization", "Bearer \(Self.admin)")]))
        let deliveries = (try JSONSerialization.jsonObject(with: Data(listed.body)) as? [String: Any])?["deliveries"] as? [[String: Any]]
        #expect(deliveries?.compactMap { $0["channel"] as? String } == ["hook"], "\(listed.status) \(String(decoding: listed.body, as: UTF8.self))")

        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        #expect(!herald.stderr.contains(Self.admin) && !herald.stderr.contains(Self.ingest))
    }
}
