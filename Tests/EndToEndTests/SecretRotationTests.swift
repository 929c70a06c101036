import Foundation
import HeraldTransport
import Testing
import TestSupport

/// A webhook secret being rotated: `secret` (or `secret_file`) is a list, every key signs, and a
/// receiver holding any one of them accepts the request. The receiver here is the official
/// Standard Webhooks library (PyPI `standardwebhooks`), so "accepts" means what it means to
/// receivers in the field, not what Herald thinks the scheme says.
@Suite(.serialized) struct SecretRotationTests {
    static let ingest = "rotation-ingest-token-0123456789"
    /// The key being introduced (Standard Webhooks form) and the one being retired (a raw string,
    /// used as its UTF-8 bytes).
    static let newKey = "whsec_" + Data("rotation-new-signing-key".utf8).base64EncodedString()
    static let oldKey = "rotation-old-raw-secret"

    /// `verify.py`: reads {"body": base64, "headers": {…}, "keys": [{"whsec"|"raw": …}]} on
    /// standard input; prints one line per key: "ok" or the library's error.
    static let verifier = """
        import base64, json, sys
        from standardwebhooks.webhooks import Webhook
        req = json.load(sys.stdin)
        body = base64.b64decode(req["body"])
        for key in req["keys"]:
            hook = Webhook(key["whsec"]) if "whsec" in key else Webhook(key["raw"].encode())
            try:
                hook.verify(body, req["headers"])
                print("ok")
            except Exception as e:
                print(type(e).__name__ + ": " + str(e))
        """

    /// What the official library says of `received` for each key, in order.
    func verify(_ received: TestSink.Received, keys: [[String: String]]) throws -> [String] {
        let python = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "/usr/bin/python3"
        let dir = try temporaryDirectory("herald-rotation-py")
        let script = dir.appendingPathComponent("verify.py")
        try Self.verifier.write(to: script, atomically: true, encoding: .utf8)
        let input = try JSONSerialization.data(withJSONObject: [
            "body": Data(received.body).base64EncodedString(), "headers": received.headers, "keys": keys,
        ])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script.path]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        try p.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "the verifier failed (is standardwebhooks installed? scripts/test installs it): \(err)")
        return out.split(separator: "\n").map(String.init)
    }

    func writeConfig(dir: URL, sink: String, secretKeys: String) throws -> String {
        let path = dir.appendingPathComponent("herald.yaml").path
        try """
            server:
              listen: 127.0.0.1:0
              drain_timeout: 2s
              tokens: [{name: monitoring, token: "\(Self.ingest)", scopes: [ingest]}]
            store: {path: "\(dir.path)/herald.sqlite"}
            retry: {initial: 100ms, max: 300ms, max_attempts: 5, max_age: 1h}
            channels:
              hook:
                type: webhook
                url: \(sink)/hook
            \(secretKeys)
            routes:
              - channels: [hook]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Serves with these webhook secret keys, sends one event with `herald send`, and answers the
    /// request the receiver got, with the running server.
    func sendOne(secretKeys: String) async throws -> (TestSink.Received, HeraldProcess) {
        let dir = try temporaryDirectory("herald-rotation")
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let config = try writeConfig(dir: dir, sink: sink.url, secretKeys: secretKeys)
        let herald = try HeraldProcess(["serve", "--config", config])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let sent = try await HeraldBinary.run(["send", "--server", "http://127.0.0.1:\(port)", "--token", Self.ingest,
                                               "--incident", "dns", "--status", "triggered", "--title", "DNS down"])
        #expect(sent.0 == 0, "\(sent)")
        #expect(await sink.waitFor(count: 1))
        return (try #require(sink.received.first), herald)
    }

    @Test func everyKeyOfTheListSignsAndAReceiverHoldingEitherAccepts() async throws {
        let (got, herald) = try await sendOne(secretKeys: """
                secret: ["\(Self.newKey)", "\(Self.oldKey)"]
            """)
        // Two Standard Webhooks signatures, space-separated, in the configured order.
        let signature = try #require(got.headers["webhook-signature"])
        let parts = signature.split(separator: " ", omittingEmptySubsequences: false)
        #expect(parts.count == 2, "\(signature)")
        #expect(parts.allSatisfy { $0.hasPrefix("v1,") && Data(base64Encoded: String($0.dropFirst(3)))?.count == 32 }, "\(signature)")
        #expect(parts[0] != parts[1])
        // A receiver that has the new key accepts; one still on the old key accepts; a stranger's
        // key does not, and neither does either key once the body is changed.
        let verdicts = try verify(got, keys: [["whsec": Self.newKey], ["raw": Self.oldKey], ["raw": "someone-else's-key"]])
        #expect(verdicts.count == 3 && verdicts[0] == "ok" && verdicts[1] == "ok", "\(verdicts)")
        #expect(verdicts.last?.contains("No matching signature") == true, "\(verdicts)")
        var tampered = got
        tampered.body = Array(got.bodyText.replacingOccurrences(of: "DNS down", with: "DNS fine").utf8)
        #expect(try verify(tampered, keys: [["whsec": Self.newKey], ["raw": Self.oldKey]]).allSatisfy { $0.contains("No matching signature") })
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        for secret in [Self.newKey, String(Self.newKey.dropFirst(6)), Self.oldKey] {
            #expect(!herald.stderr.contains(secret) && !herald.stdout.contains(secret))
        }
    }

    /// After the rotation the list is one key again: only that signature is sent.
    @Test func aSingleSecretStillSendsOneSignature() async throws {
        let (got, herald) = try await sendOne(secretKeys: """
                secret: ["\(Self.newKey)", "${OLD_WEBHOOK_SECRET:-}"]
            """)
        let signature = try #require(got.headers["webhook-signature"])
        #expect(!signature.contains(" ") && signature.hasPrefix("v1,"), "\(signature)")
        let verdicts = try verify(got, keys: [["whsec": Self.newKey], ["raw": Self.oldKey]])
        #expect(verdicts.count == 2 && verdicts[0] == "ok" && verdicts[1].contains("No matching signature"), "\(verdicts)")
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
    }

    /// `herald check` says how many keys sign, prints none of them, and locates an unreadable
    /// key file by its item.
    @Test func checkShowsHowManyKeysAndNoneOfThem() async throws {
        let dir = try temporaryDirectory("herald-rotation")
        try Self.newKey.write(to: dir.appendingPathComponent("new.key"), atomically: true, encoding: .utf8)
        try (Self.oldKey + "\n").write(to: dir.appendingPathComponent("old.key"), atomically: true, encoding: .utf8)
        let good = try writeConfig(dir: dir, sink: "https://hooks.example.com", secretKeys: """
                secret_file: [new.key, old.key]
            """)
        let ok = try await HeraldBinary.run(["check", "--config", good])
        #expect(ok.0 == 0, "\(ok)")
        #expect(ok.1.contains("channel hook: webhook https://hooks.example.com/**** signed with 2 keys"), "\(ok.1)")
        for secret in [Self.newKey, String(Self.newKey.dropFirst(6)), Self.oldKey] {
            #expect(!(ok.1 + ok.2).contains(secret))
        }
        let bad = try writeConfig(dir: dir, sink: "https://hooks.example.com", secretKeys: """
                secret_file: [new.key, gone.key]
            """)
        let failed = try await HeraldBinary.run(["check", "--config", bad])
        #expect(failed.0 == 1)
        #expect(failed.2.contains("\(bad):11:28: channels.hook.secret_file[1]: cannot read gone.key: no such file"), "\(failed.2)")
        let both = try writeConfig(dir: dir, sink: "https://hooks.example.com", secretKeys: """
                secret: [x]
                secret_file: [new.key]
            """)
        let twice = try await HeraldBinary.run(["check", "--config", both])
        #expect(twice.0 == 1 && twice.2.contains("give either secret or secret_file, not both"), "\(twice.2)")
    }
}
