import Foundation
import HeraldTransport
import Testing
import TestSupport

/// `herald serve` with JSON logs, as a log pipeline reads them: every line on standard error is
/// one JSON object with time, level, label and message; delivery log lines carry the delivery,
/// incident and channel ids as fields; and no configured secret appears anywhere, even when the
/// provider's answer echoes them back.
@Suite(.serialized) struct JSONLogTests {
    static let ingest = "json-log-ingest-token-0123456789"
    static let admin = "json-log-admin-token-9876543210"
    static let signing = "whsec_" + Data("json-log-signing-key".utf8).base64EncodedString()
    static let urlSecret = "urlsecret-7f3a9c2e"
    static let header = "header-credential-5b8d1f"

    func config(dir: URL, sinkURL: String, logFormat: String?) throws -> String {
        let path = dir.appendingPathComponent("herald.yaml").path
        try """
            server:
              listen: 127.0.0.1:0
              drain_timeout: 2s
            \(logFormat.map { "  log_format: \($0)" } ?? "")
              tokens:
                - {name: monitoring, token: "\(Self.ingest)", scopes: [ingest]}
                - {name: ops, token: "\(Self.admin)", scopes: [admin]}
            store: {path: \(dir.appendingPathComponent("herald.sqlite").path)}
            retry: {initial: 50ms, max: 100ms, max_attempts: 2, max_age: 1h}
            channels:
              hook:
                type: webhook
                url: \(sinkURL)/hooks/\(Self.urlSecret)
                secret: \(Self.signing)
                headers: {X-Api-Key: "\(Self.header)"}
            routes:
              - channels: [hook]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The lines of standard error, each parsed as a JSON object (nil for a line that is not one).
    func objects(_ stderr: String) -> [(String, [String: Any]?)] {
        stderr.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            (String(line), (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])
        }
    }

    @Test func jsonLogsParseLineByLineAndHoldNoSecret() async throws {
        // The receiver fails every request and echoes what it was sent: the URL (with its secret
        // path) and the credential header, as a careless provider's error page would.
        let sink = TestSink(script: { received, _ in
            TestSink.Reply(status: 500, body: "upstream error for \(received.path) key=\(received.headers["x-api-key"] ?? "-")")
        })
        try await sink.start()
        defer { Task { await sink.stop() } }
        let dir = try temporaryDirectory("herald-jsonlog")
        let cfg = try config(dir: dir, sinkURL: sink.url, logFormat: "json")
        // server.log_format: json, and debug level for as many lines as Herald writes.
        let herald = try HeraldProcess(["serve", "--config", cfg, "--log-level", "debug"])
        defer { herald.signal(SIGTERM) }
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let client = CurlTransport()
        defer { client.shutdown() }
        for status in ["triggered", "resolved"] {
            var request = HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/v1/events", timeout: .seconds(10))
            request.headers = [(name: "Authorization", value: "Bearer \(Self.ingest)"), (name: "Content-Type", value: "application/json")]
            request.body = Array(#"{"incident":"dns-json","status":"\#(status)","severity":"critical","title":"DNS down"}"#.utf8)
            #expect(try await client.send(request).status == 202)
            if status == "triggered" {
                #expect(await eventually(timeout: .seconds(20)) { herald.stderr.contains("delivery failed") })
            }
        }
        // A wrong token, and an admin call that names the secret path in its query.
        var wrong = HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/v1/deliveries?channel=\(Self.urlSecret)", timeout: .seconds(10))
        wrong.headers = [(name: "Authorization", value: "Bearer \(Self.admin)")]
        _ = try await client.send(wrong)
        #expect(await eventually(timeout: .seconds(20)) { herald.stderr.components(separatedBy: "delivery failed").count >= 3 })
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)

        let lines = objects(herald.stderr)
        #expect(lines.count >= 5, "\(herald.stderr)")
        let levels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for (text, object) in lines {
            let o = try #require(object, "not a JSON object: \(text)")
            #expect((o["time"] as? String).flatMap(iso.date(from:)) != nil, "time: \(text)")
            #expect(levels.contains(o["level"] as? String ?? ""), "level: \(text)")
            #expect(o["label"] is String && o["message"] is String, "\(text)")
        }
        // Delivery lines carry the ids as fields.
        let failed = lines.compactMap(\.1).filter { $0["message"] as? String == "delivery failed" }
        #expect(failed.count == 2, "\(herald.stderr)")
        for o in failed {
            #expect((o["delivery"] as? String)?.hasPrefix("dlv_") == true)
            #expect(o["incident"] as? String == "dns-json")
            #expect(o["channel"] as? String == "hook")
            #expect(o["level"] as? String == "warning")
            #expect((o["error"] as? String)?.contains("500") == true)
        }
        #expect(lines.contains { $0.1?["message"] as? String == "attempt failed; will retry" })
        // No configured secret, in any form that was configured.
        let signingKey = String(Self.signing.dropFirst(6))
        for secret in [Self.ingest, Self.admin, Self.signing, signingKey, Self.urlSecret, Self.header] {
            #expect(!herald.stderr.contains(secret), "a log line holds \(secret)")
        }
        #expect(herald.stderr.contains("****"), "the provider's echo was logged, masked")
    }

    /// `--log-format text` overrides the file's `json`; an unknown format is a usage error.
    @Test func theFlagOverridesTheFileAndIsChecked() async throws {
        let dir = try temporaryDirectory("herald-jsonlog")
        let cfg = try config(dir: dir, sinkURL: "http://127.0.0.1:9", logFormat: "json")
        let herald = try HeraldProcess(["serve", "--config", cfg, "--log-format", "text"])
        #expect(await herald.waitForPort() != nil, "\(herald.stderr)")
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        let first = try #require(herald.stderr.split(separator: "\n").first { $0.contains("listening on") })
        #expect(!first.hasPrefix("{") && first.contains("info"), "\(first)")
        let (status, _, err) = try await HeraldBinary.run(["serve", "--config", cfg, "--log-format", "yaml"])
        #expect(status == 2 && err.contains("--log-format"), "\(err)")
    }
}
