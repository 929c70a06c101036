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

/// Every channel type, configured with secrets and pointed at a provider that echoes the whole
/// request (path, headers, body) back in its error answers: no secret may reach a stored error, an
/// attempt, a log line or the printed configuration. A new channel type must add its row here.
@Suite(.serialized) struct SecretLeakTests {
    struct Row {
        var values: [String: String]
        var secrets: [String]
    }

    /// One row per registered type: settings that carry secrets, and those secrets.
    static func rows(sink: String) -> [String: Row] {
        [
            "webhook": Row(values: ["url": sink + "/hooks/T000/SECRET-PATH-abc123xyz",
                                    "secret": "whsec_" + Data("leak-test-signing-key".utf8).base64EncodedString()],
                           secrets: ["SECRET-PATH-abc123xyz", Data("leak-test-signing-key".utf8).base64EncodedString()]),
            "console": Row(values: [:], secrets: []),
            "statuspage": Row(values: [:], secrets: []),
            "email": Row(values: ["url": sink.replacingOccurrences(of: "http://", with: "smtp://"), "from": "herald@example.com",
                                  "to": "ops@example.com", "username": "herald", "password": "email-leak-password", "starttls": "off"],
                         secrets: ["email-leak-password"]),
            "subscribers": Row(values: ["url": sink.replacingOccurrences(of: "http://", with: "smtp://"), "from": "herald@example.com",
                                        "username": "herald", "password": "subscribers-leak-password", "starttls": "off",
                                        "public_url": "https://status.example.com"],
                               secrets: ["subscribers-leak-password"]),
            "slack": Row(values: ["token": "xoxb-leak-slack-token", "channel": "#ops", "api_url": sink + "/slack"],
                         secrets: ["xoxb-leak-slack-token"]),
            "mattermost": Row(values: ["webhook_url": sink + "/hooks/mm-leak-hook-secret"], secrets: ["mm-leak-hook-secret"]),
            "discord": Row(values: ["webhook_url": sink + "/api/webhooks/1/discord-leak-token"], secrets: ["discord-leak-token"]),
            "teams": Row(values: ["webhook_url": sink + "/workflows/teams-leak-signature"], secrets: ["teams-leak-signature"]),
            "mastodon": Row(values: ["url": sink, "token": "mastodon-leak-token"], secrets: ["mastodon-leak-token"]),
            "bluesky": Row(values: ["identifier": "herald.test", "app_password": "bsky-leak-app-pass", "service": sink],
                           secrets: ["bsky-leak-app-pass"]),
            "x": Row(values: ["consumer_key": "x-leak-ck", "consumer_secret": "x-leak-consumer-secret", "access_token": "x-leak-at",
                              "access_token_secret": "x-leak-token-secret", "api_url": sink],
                     secrets: ["x-leak-consumer-secret", "x-leak-token-secret"]),
            "matrix": Row(values: ["homeserver": sink, "access_token": "syt_leak-matrix-token", "room": "!leak:localhost"],
                          secrets: ["syt_leak-matrix-token"]),
            "telegram": Row(values: ["token": "4242:telegram-leak-token", "chat_id": "1", "api_url": sink],
                            secrets: ["4242:telegram-leak-token"]),
        ]
    }

    @Test func everyRegisteredTypeHasARow() {
        #expect(Set(Self.rows(sink: "http://x").keys) == Set(ChannelRegistry.types))
    }

    @Test func noSecretInErrorsAttemptsLogsOrDescriptions() async throws {
        // The echo: first a 500 (retried), then a 400 (permanent), each quoting the request.
        let sink = TestSink { r, n in
            let echo = "path=\(r.path) headers=\(r.headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))"
            return .init(status: n % 2 == 0 ? 500 : 400, body: echo)
        }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let rows = Self.rows(sink: sink.url)
        let dir = try temporaryDirectory()
        let store = try SQLiteStore(path: dir.appendingPathComponent("s.sqlite").path)
        let policy = RetryPolicy(initial: .milliseconds(20), max: .milliseconds(50), maxAttempts: 3, maxAge: .seconds(60))
        var configs: [ChannelConfig] = []
        for (type, row) in rows.sorted(by: { $0.key < $1.key }) {
            var values = row.values
            if type == "webhook" { values["headers"] = nil }
            let settings = ChannelSettings(channel: "leak-\(type)", type: type, values: values)
            configs.append(ChannelConfig(name: "leak-\(type)", type: type, retry: policy, concurrency: 2, timeout: .seconds(5), settings: settings))
        }
        let config = HeraldConfig(channels: configs)
        let transport = CurlTransport()
        let printed = LogCapture()
        let channels = try ChannelRegistry.build(config, transport: transport, console: { printed.append($0) })
        let logs = LogCapture()
        var logger = Logger(label: "leak") { _ in CapturingLogHandler(capture: logs) }
        logger.logLevel = .trace
        let dispatcher = Dispatcher(store: store, channels: channels, configs: configs, renderer: try MessageRenderer(),
                                    redactor: Redactor(secrets: config.secrets), logger: logger)
        let task = Task { try await dispatcher.run() }
        let event = makeEvent("leak")
        _ = try await store.enqueue([EnqueueRequest(event: event, channels: configs.map(\.name))], now: Date())
        dispatcher.wake(channels: configs.map(\.name))
        #expect(try await eventually {
            try await store.deliveries(DeliveryFilter()).allSatisfy { $0.state == .failed || $0.state == .delivered }
        })
        dispatcher.stop()
        _ = try? await task.value
        transport.shutdown()

        var seen = logs.text + printed.text
        for d in try await store.deliveries(DeliveryFilter()) {
            let detail = try #require(try await store.delivery(id: d.id))
            seen += (d.lastError ?? "") + detail.attempts.compactMap(\.error).joined()
        }
        seen += channels.values.map(\.redactedDescription).joined()
        #expect(sink.received.count >= 2, "the webhook really talked to the echoing provider")
        #expect(seen.contains("path=") , "the provider's echo was recorded (redacted)")
        for row in rows.values {
            for secret in row.secrets {
                #expect(!seen.contains(secret), "leaked \(secret)")
            }
        }
    }
}

final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        capture.append("\(level) \(message) \(all.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}
