import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport
import Testing
import TestSupport

/// The Mastodon adapter against `mastodon-mock` (PyPI), a stateful Mastodon REST API on loopback.
/// `scripts/test` installs it into a virtualenv and sets HERALD_TEST_VENV.
@Suite(.serialized) struct MastodonChannelTests {
    final class MockServer: Sendable {
        let process: Process
        let port: Int
        init() async throws {
            let env = ProcessInfo.processInfo.environment
            let candidates = [env["HERALD_TEST_VENV"].map { "\($0)/bin/mastodon_mock" }, "/usr/local/bin/mastodon_mock"].compactMap { $0 }
            guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw PeerMissing(what: "mastodon_mock (pip install mastodon-mock; scripts/test does this and sets HERALD_TEST_VENV)")
            }
            port = closedPort()
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("mastodon-mock-\(port).log").path
            FileManager.default.createFile(atPath: log, contents: nil)
            process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--in-memory", "--host", "127.0.0.1", "--port", "\(port)", "--log-level", "warning"]
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            let transport = CurlTransport()
            defer { transport.shutdown() }
            let up = await eventually(timeout: .seconds(30)) {
                (try? await transport.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/api/v1/instance", timeout: .seconds(2)))) != nil
            }
            guard up else { throw PeerMissing(what: "mastodon_mock did not answer: " + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")) }
        }
        var url: String { "http://127.0.0.1:\(port)" }
        /// SIGKILL: a child of the test runner inherits a signal mask that can block SIGTERM.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    struct PeerMissing: Error, CustomStringConvertible {
        var what: String
        var description: String { "test peer missing: \(what)" }
    }

    let transport = CurlTransport()

    func mastodon(_ url: String, token: String = "mock_token", extra: [String: String] = [:]) throws -> any Channel {
        let settings = ChannelSettings(channel: "toot", type: "mastodon", values: ["url": url, "token": token].merging(extra) { $1 })
        let channel = try MastodonChannel.make(settings, ChannelContext(transport: transport, timeout: .seconds(10)))
        try settings.finish()
        return channel
    }

    func message(_ kind: DeliveryKind, id: String, thread: String? = nil, longMessage: Bool = false) -> OutboundMessage {
        let at = RFC3339.parse("2026-11-25T10:02:00Z")!
        var event = makeEvent("dns", kind == .notice ? .triggered : .resolved, at: at)
        event.link = "https://status.example.com/incidents/dns-2026-11-25"
        if longMessage { event.message = String(repeating: "Resolvers in eu-west time out under load. ", count: 40) }
        let incident = Incident(key: "dns", status: kind == .notice ? .open : .resolved, cycle: 1, title: event.title, severity: .critical,
                                openedAt: at, resolvedAt: kind == .notice ? nil : at.addingTimeInterval(2340), updatedAt: at)
        let (title, text) = try! MessageRenderer().render(kind: kind, event: event, incident: incident)
        return OutboundMessage(deliveryId: id, kind: kind, event: event, incident: incident, title: title, text: text, thread: thread)
    }

    func status(_ server: MockServer, _ id: String) async throws -> [String: Any] {
        let r = try await transport.send(HTTPRequest(method: "GET", url: "\(server.url)/api/v1/statuses/\(id)",
                                                     headers: [("Authorization", "Bearer mock_token")], timeout: .seconds(5)))
        #expect(r.status == 200)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
    }

    @Test func postsTheNoticeAndRepliesWithTheAllClearOnce() async throws {
        let server = try await MockServer()
        defer { server.stop() }
        let channel = try mastodon(server.url, extra: ["visibility": "unlisted"])
        let notice = try await channel.deliver(message(.notice, id: "dlv_masto_notice", longMessage: true))
        let noticeID = try #require(notice.reference)
        // A retry of the same delivery (same Idempotency-Key) does not post again.
        let retry = try await channel.deliver(message(.notice, id: "dlv_masto_notice", longMessage: true))
        #expect(retry.reference == noticeID)
        let clear = try await channel.deliver(message(.allClear, id: "dlv_masto_clear", thread: noticeID))
        let posted = try await status(server, noticeID)
        #expect(posted["visibility"] as? String == "unlisted")
        let content = try #require(posted["content"] as? String)
        #expect(content.contains("DNS resolution failing"))
        #expect(content.contains("https://status.example.com/incidents/dns-2026-11-25"), "the link is kept whole: \(content)")
        let reply = try await status(server, try #require(clear.reference))
        #expect(reply["in_reply_to_id"] as? String == noticeID)
        #expect((reply["content"] as? String)?.contains("RESOLVED") == true)
    }

    @Test func theLongestPostFitsTheLimit() async throws {
        let m = message(.notice, id: "x", longMessage: true)
        let capture = CapturingTransport()
        let settings = ChannelSettings(channel: "p", type: "mastodon", values: ["url": "http://probe", "token": "t"])
        _ = try await MastodonChannel.make(settings, ChannelContext(transport: capture)).deliver(m)
        let text = try #require(capture.lastStatus)
        #expect(text.count <= 500)
        #expect(text.hasSuffix(m.event.link!))
    }

    @Test func aWrongTokenIsAPermanentAuthFailure() async throws {
        let server = try await MockServer()
        defer { server.stop() }
        let channel = try mastodon(server.url, token: "not-the-token-123")
        do {
            _ = try await channel.deliver(message(.notice, id: "dlv_masto_auth"))
            Issue.record("expected an error")
        } catch let error as DeliveryError {
            #expect(!error.isTransient && error.reason == .auth && error.status == 401)
            #expect(!error.detail.contains("not-the-token-123"))
        }
    }

    @Test func badSettingsAreNamed() {
        #expect(throws: ConfigError.self) { try mastodon("http://x", extra: ["visibility": "everyone"]) }
        #expect(throws: ConfigError.self) { try mastodon("ftp://x") }
    }
}

/// Keeps the last request's `status` field instead of sending it.
final class CapturingTransport: HTTPTransport, @unchecked Sendable {
    var lastStatus: String?
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let json = try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]
        lastStatus = json?["status"] as? String
        return HTTPResponse(status: 200, body: Array(#"{"id":"1"}"#.utf8))
    }
}
