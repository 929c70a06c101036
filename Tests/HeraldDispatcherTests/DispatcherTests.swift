import Crypto
import Foundation
import HeraldChannels
import HeraldCore
import HeraldDispatcher
import HeraldSQLite
import HeraldStore
import HeraldTransport
import Logging
import Synchronization
import Testing
import TestSupport

/// The dispatcher against real HTTP servers on loopback and a real SQLite store.
@Suite(.serialized) struct DispatcherTests {
    struct Harness {
        let store: SQLiteStore
        let dispatcher: Dispatcher
        let transport: CurlTransport
        let task: Task<Void, any Error>

        func enqueue(_ event: Event, to channels: [String]) async throws -> [String] {
            let result = try await store.enqueue([EnqueueRequest(event: event, channels: channels)], now: Date())
            // Wake what the store says got work (an all-clear may go to a fallback channel).
            if case .accepted(let accepted) = result[0] { dispatcher.wake(channels: accepted.channels) }
            return try await store.deliveries(DeliveryFilter(incident: event.incident)).filter { $0.eventId == event.id }.map(\.id)
        }

        func state(_ id: String) async throws -> DeliveryDetail {
            try #require(try await store.delivery(id: id))
        }

        func stop() async {
            dispatcher.stop()
            _ = try? await task.value
            transport.shutdown()
        }
    }

    static let secret = "whsec_" + Data("test-signing-key-0123456789".utf8).base64EncodedString()

    func start(_ channels: [(name: String, url: String, retry: RetryPolicy, concurrency: Int)],
               fallbacks: [String: String] = [:], rates: [String: Double] = [:],
               templates: [String: MessageRenderer.Templates] = [:]) async throws -> Harness {
        let dir = try temporaryDirectory()
        let store = try SQLiteStore(path: dir.appendingPathComponent("h.sqlite").path)
        let configs = channels.map {
            var c = ChannelConfig(name: $0.name, type: "webhook", retry: $0.retry, concurrency: $0.concurrency, timeout: .seconds(5),
                                  settings: ChannelSettings(channel: $0.name, type: "webhook", values: ["url": $0.url, "secret": Self.secret]))
            c.fallback = fallbacks[$0.name]
            c.ratePerSecond = rates[$0.name]
            c.templates = templates[$0.name]
            return c
        }
        let config = HeraldConfig(channels: configs)
        let transport = CurlTransport()
        let built = try ChannelRegistry.build(config, transport: transport)
        var logger = Logger(label: "test")
        logger.logLevel = .error
        var options = Dispatcher.Options()
        options.drainTimeout = .seconds(2)
        let dispatcher = Dispatcher(store: store, channels: built, configs: configs, renderer: try MessageRenderer(),
                                    redactor: Redactor(secrets: config.secrets), options: options, logger: logger)
        let task = Task { try await dispatcher.run() }
        return Harness(store: store, dispatcher: dispatcher, transport: transport, task: task)
    }

    static let fast = RetryPolicy(initial: .milliseconds(50), max: .milliseconds(200), maxAttempts: 3, maxAge: .seconds(60))

    @Test func deliversSignedWebhookAndRecordsTheReceipt() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let h = try await start([("hook", sink.url + "/hook", Self.fast, 4)])
        let ids = try await h.enqueue(makeEvent("dns"), to: ["hook"])
        #expect(await sink.waitFor(count: 1))
        let got = try #require(sink.received.first)
        #expect(got.path == "/hook")
        #expect(got.headers["webhook-id"] == ids[0])
        let ts = try #require(got.headers["webhook-timestamp"])
        let key = SymmetricKey(data: Data(base64Encoded: String(Self.secret.dropFirst(6)))!)
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(ids[0]).\(ts).".utf8) + got.body, using: key)
        #expect(got.headers["webhook-signature"] == "v1," + Data(mac).base64EncodedString())
        let json = try #require(got.json)
        #expect(json["delivery_id"] as? String == ids[0])
        #expect(json["kind"] as? String == "notice")
        #expect((json["event"] as? [String: Any])?["title"] as? String == "DNS resolution failing")
        #expect((json["incident"] as? [String: Any])?["key"] as? String == "dns")
        #expect(try await eventually { try await h.state(ids[0]).delivery.state == .delivered })
        let detail = try await h.state(ids[0])
        #expect(detail.delivery.receipt == ids[0])
        #expect(detail.attempts.map(\.status) == [200])
        await h.stop()
    }

    @Test func serverErrorsAreRetriedWithTheSameDeliveryId() async throws {
        let sink = TestSink { _, n in n < 2 ? .init(status: 503, body: "upstream down") : .ok }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let h = try await start([("hook", sink.url, Self.fast, 4)])
        let ids = try await h.enqueue(makeEvent("dns"), to: ["hook"])
        #expect(try await eventually { try await h.state(ids[0]).delivery.state == .delivered })
        #expect(sink.received.count == 3)
        #expect(Set(sink.received.compactMap { $0.headers["webhook-id"] }) == [ids[0]])
        let attempts = try await h.state(ids[0]).attempts
        #expect(attempts.map(\.outcome) == [.retry, .retry, .delivered])
        #expect(attempts[0].status == 503)
        #expect(attempts[0].error == "serverError 503: HTTP 503: upstream down")
        await h.stop()
    }

    @Test func retryAfterIsHonoured() async throws {
        let sink = TestSink { _, n in n == 0 ? .init(status: 429, headers: [("Retry-After", "1")], body: "slow down") : .ok }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let policy = RetryPolicy(initial: .milliseconds(10), max: .seconds(5), maxAttempts: 3, maxAge: .seconds(60))
        let h = try await start([("hook", sink.url, policy, 4)])
        let ids = try await h.enqueue(makeEvent("dns"), to: ["hook"])
        #expect(try await eventually { try await h.state(ids[0]).delivery.state == .delivered })
        let attempts = try await h.state(ids[0]).attempts
        try #require(attempts.map(\.status) == [429, 200])
        let gap = attempts[1].startedAt.timeIntervalSince(attempts[0].startedAt)
        #expect(gap >= 0.95, "second attempt came \(gap)s after the first; Retry-After said 1s")
        #expect(attempts[0].reason == "rateLimited")
        await h.stop()
    }

    @Test func clientErrorFailsAtOnceWithTheProvidersAnswer() async throws {
        let sink = TestSink { _, _ in .init(status: 404, body: "{\"error\":\"no such hook\"}") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let h = try await start([("hook", sink.url, Self.fast, 4)])
        let ids = try await h.enqueue(makeEvent("dns"), to: ["hook"])
        #expect(try await eventually { try await h.state(ids[0]).delivery.state == .failed })
        let d = try await h.state(ids[0])
        #expect(sink.received.count == 1)
        #expect(d.delivery.lastError == "clientError 404: HTTP 404: {\"error\":\"no such hook\"}")
        #expect(d.delivery.lastStatus == 404)
        await h.stop()
    }

    @Test func unreachableSinkRetriesThenFailsWithTheReason() async throws {
        let url = "http://127.0.0.1:\(closedPort())/secret-path-token"
        let h = try await start([("hook", url, Self.fast, 4)])
        let ids = try await h.enqueue(makeEvent("dns"), to: ["hook"])
        #expect(try await eventually { try await h.state(ids[0]).delivery.state == .failed })
        let d = try await h.state(ids[0])
        #expect(d.attempts.count == 3)
        #expect(d.attempts.allSatisfy { $0.reason == "network" })
        let error = try #require(d.delivery.lastError)
        #expect(error.hasPrefix("gave up after 3 attempts; last error: network"))
        #expect(!error.contains("secret-path-token"))
        await h.stop()
    }

    @Test func theAllClearRepliesToWhoWasToldAndSummarisesForWhoWasNot() async throws {
        let up = TestSink()
        let downUntilResolved = Mutex(true)
        let down = TestSink { _, _ in downUntilResolved.withLock { $0 } ? .init(status: 503, body: "down") : .ok }
        try await up.start()
        try await down.start()
        defer { Task { await up.stop(); await down.stop() } }
        // "down" retries its notice quickly, one request at a time, for as long as it is down.
        let retrying = RetryPolicy(initial: .milliseconds(50), max: .milliseconds(100), maxAttempts: 1000, maxAge: .seconds(3600))
        let h = try await start([("up", up.url, Self.fast, 4), ("down", down.url, retrying, 1)])
        _ = try await h.enqueue(makeEvent("dns"), to: ["up", "down"])
        #expect(await up.waitFor(count: 1))
        #expect(await down.waitFor(count: 2), "the notice to down is being retried")
        downUntilResolved.withLock { $0 = false }
        _ = try await h.enqueue(makeEvent("dns", .resolved), to: ["up", "down"])
        #expect(await up.waitFor(count: 2))
        let clear = try #require(up.received[1].json)
        #expect(clear["kind"] as? String == "all_clear")
        #expect(clear["thread"] as? String == up.received[0].json?["delivery_id"] as? String)
        #expect((clear["title"] as? String)?.hasPrefix("[RESOLVED]") == true)
        #expect(try await eventually { down.received.contains { $0.json?["kind"] as? String == "summary" } })
        // The notice is never sent again after the resolve. Any retry of it would have been due
        // within retry.max of now; a later incident's notice, queued after that on the same
        // one-at-a-time lane, comes after it.
        try await Task.sleep(for: retrying.max)
        _ = try await h.enqueue(makeEvent("later"), to: ["down"])
        #expect(try await eventually { down.received.last?.json?["incident"].flatMap { ($0 as? [String: Any])?["key"] as? String } == "later" })
        let kinds = down.received.compactMap { $0.json?["kind"] as? String }
        let summaryAt = try #require(kinds.firstIndex(of: "summary"))
        #expect(kinds[..<summaryAt].allSatisfy { $0 == "notice" })
        #expect(Array(kinds[summaryAt...]) == ["summary", "notice"], "after the summary, only the later incident's notice: \(kinds)")
        let states = try await h.store.deliveries(DeliveryFilter(channel: "down", incident: "dns")).map(\.state)
        #expect(Set(states) == [.superseded, .delivered])
        await h.stop()
    }

    @Test func aFailedNoticeGoesThroughTheFallbackAndTheAllClearFollowsIt() async throws {
        let primary = TestSink { _, _ in .init(status: 403, body: "token revoked") }
        let backup = TestSink()
        try await primary.start()
        try await backup.start()
        defer { Task { await primary.stop(); await backup.stop() } }
        let h = try await start([("primary", primary.url, Self.fast, 1), ("backup", backup.url, Self.fast, 4)],
                                fallbacks: ["primary": "backup"])
        _ = try await h.enqueue(makeEvent("dns"), to: ["primary"])
        #expect(await backup.waitFor(count: 1))
        let notice = try #require(backup.received[0].json)
        #expect(notice["kind"] as? String == "notice")
        _ = try await h.enqueue(makeEvent("dns", .resolved), to: ["primary"])
        #expect(await backup.waitFor(count: 2))
        let clear = try #require(backup.received[1].json)
        #expect(clear["kind"] as? String == "all_clear")
        #expect(clear["thread"] as? String == notice["delivery_id"] as? String)
        // No summary goes to the channel that failed: the recipient was told through the fallback.
        // A summary would have been queued with the resolve, ahead of anything queued later on the
        // same one-at-a-time lane, so the next incident's notice shows whether one came.
        _ = try await h.enqueue(makeEvent("next"), to: ["primary"])
        #expect(await primary.waitFor(count: 2))
        #expect(primary.received.compactMap { $0.json?["kind"] as? String } == ["notice", "notice"])
        await h.stop()
    }

    /// A channel with templates of its own renders with them, per kind; the others with the
    /// global ones, for the same event.
    @Test func aChannelsOwnTemplatesRenderPerKind() async throws {
        let short = TestSink()
        let plain = TestSink()
        try await short.start()
        try await plain.start()
        defer { Task { await short.stop(); await plain.stop() } }
        var own = MessageRenderer.Templates()
        own.noticeTitle = "DOWN {{title}}"
        own.allClearTitle = "UP {{title}}"
        let h = try await start([("short", short.url, Self.fast, 4), ("plain", plain.url, Self.fast, 4)], templates: ["short": own])
        _ = try await h.enqueue(makeEvent("dns", title: "DNS"), to: ["short", "plain"])
        #expect(await short.waitFor(count: 1))
        #expect(await plain.waitFor(count: 1))
        _ = try await h.enqueue(makeEvent("dns", .resolved, title: "DNS"), to: ["short", "plain"])
        #expect(await short.waitFor(count: 2))
        #expect(await plain.waitFor(count: 2))
        #expect(short.received.compactMap { $0.json?["title"] as? String } == ["DOWN DNS", "UP DNS"])
        #expect(plain.received.compactMap { $0.json?["title"] as? String } == ["[CRITICAL] DNS", "[RESOLVED] DNS"])
        await h.stop()
    }

    @Test func aRateLimitedChannelSpacesItsAttempts() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let h = try await start([("paced", sink.url, Self.fast, 8)], rates: ["paced": 5])
        let started = Date()
        for i in 0..<10 { _ = try await h.enqueue(makeEvent("pace-\(i)"), to: ["paced"]) }
        #expect(await sink.waitFor(count: 10, timeout: .seconds(10)))
        // A burst of 5, then 5 more at 5 per second: the tenth cannot start before ~1 s.
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.9, "10 attempts at 5/s took only \(elapsed) s")
        await h.stop()
    }

    @Test func aSlowChannelDoesNotHoldBackAFastOne() async throws {
        let slow = TestSink { _, _ in .init(delay: .seconds(2)) }
        let fast = TestSink()
        try await slow.start()
        try await fast.start()
        defer { Task { await slow.stop(); await fast.stop() } }
        let h = try await start([("slow", slow.url, Self.fast, 2), ("fast", fast.url, Self.fast, 4)])
        for i in 0..<10 {
            _ = try await h.enqueue(makeEvent("inc-\(i)"), to: ["slow", "fast"])
        }
        #expect(await fast.waitFor(count: 10, timeout: .seconds(5)))
        // The slow channel, capped at 2 in flight, has at most its first pair done by now.
        #expect(slow.received.count <= 4)
        let flight = h.dispatcher.inFlight()
        #expect(flight["slow"] ?? 0 <= 2)
        await h.stop()
    }
}
