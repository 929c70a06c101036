import Foundation
import HeraldCore
import HeraldServer
import Logging
import Testing
import TestSupport

/// `server.tls`: HTTPS on the listener with a certificate made here by openssl, spoken to by the
/// curl program (what an operator or a monitoring system would use), and swapped without a restart.
@Suite(.serialized) struct ListenerTLSTests {
    static let ingest = "tls-ingest-token-0123456789abcdef"

    /// A self-signed certificate for 127.0.0.1 and localhost, and its key, as `NAME.crt` and
    /// `NAME.key` in `dir`. The certificate is its own CA: trusting it is `--cacert NAME.crt`.
    @discardableResult
    static func makeCertificate(_ name: String, in dir: URL, keyFile: String? = nil) throws -> (cert: String, key: String) {
        let cert = dir.appendingPathComponent("\(name).crt").path
        let key = keyFile ?? dir.appendingPathComponent("\(name).key").path
        let (status, _, err) = try run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=herald-test-\(name)", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", key, "-out", cert,
        ])
        #expect(status == 0, "openssl: \(err)")
        return (cert, key)
    }

    /// Runs a program to completion: exit status, standard output, standard error.
    static func run(_ program: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// curl's exit status and what it printed: the body, then the status code on its own line.
    static func curl(_ url: String, trusting ca: String? = nil, _ extra: [String] = []) async throws -> (Int32, String, String) {
        var args = ["-sS", "--max-time", "20", "-w", "\n%{http_code}"]
        if let ca { args += ["--cacert", ca] }
        let arguments = args + extra + [url]
        return try await offPool { try run("/usr/bin/curl", arguments) }
    }

    func yaml(dir: URL, tls: String) -> String {
        """
        server:
          listen: 127.0.0.1:0
          drain_timeout: 1s
          tokens: [{name: monitoring, token: "\(Self.ingest)", scopes: [ingest]}]
        \(tls)
        store: {path: "\(dir.path)/herald.sqlite"}
        channels:
          quiet: {type: console}
        routes:
          - channels: [quiet]
        """
    }

    /// The binary, as a user runs it: HTTPS with the configured certificate, an event accepted
    /// over it, and plain HTTP on the same port refused at once without harming the listener.
    @Test func servesHTTPSWithASelfSignedCertificateToCurl() async throws {
        let dir = try temporaryDirectory("herald-tls")
        let first = try Self.makeCertificate("first", in: dir)
        let config = dir.appendingPathComponent("herald.yaml").path
        // Relative to the configuration file, as secret files are.
        try yaml(dir: dir, tls: "  tls: {cert_file: first.crt, key_file: first.key}").write(toFile: config, atomically: true, encoding: .utf8)
        let herald = try HeraldProcess(["serve", "--config", config])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        #expect(herald.stderr.contains("listening on https://127.0.0.1:\(port)"))
        let base = "https://127.0.0.1:\(port)"

        let health = try await Self.curl(base + "/healthz", trusting: first.cert)
        #expect(health.0 == 0, "curl: \(health.2)")
        #expect(health.1.hasSuffix("\n200"), "\(health.1)")
        let event = try await Self.curl(base + "/v1/events", trusting: first.cert, [
            "-H", "Authorization: Bearer \(Self.ingest)", "-H", "Content-Type: application/json",
            "-d", #"{"incident":"tls","status":"triggered","title":"Served over TLS"}"#,
        ])
        #expect(event.0 == 0 && event.1.hasSuffix("\n202"), "\(event)")
        #expect(await eventually { herald.stdout.contains("Served over TLS") })
        // Over TLS the console's cookies are `Secure`: a browser never sends them in clear.
        let signIn = try await Self.curl(base + "/console/signin", trusting: first.cert, ["-D", "-"])
        let cookie = signIn.1.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") }
        #expect(cookie?.contains("; Secure") == true && cookie?.contains("HttpOnly") == true, "\(signIn.1.prefix(600))")

        // Without trusting the certificate curl refuses it (60: peer certificate cannot be
        // authenticated): the port really speaks TLS with this certificate, nothing else.
        let untrusted = try await Self.curl(base + "/healthz")
        #expect(untrusted.0 == 60, "\(untrusted)")
        // So does `herald send` (https:// goes through libcurl, which verifies the certificate),
        // and it says so at once: a refused certificate is not retried for the --wait it was given
        // (the message of a wait run out would end "after 120s").
        let send = try await HeraldBinary.run(["send", "--server", base, "--token", Self.ingest, "--incident", "tls-cli",
                                               "--status", "triggered", "--title", "Over TLS from the CLI", "--wait", "120"])
        #expect(send.0 == 4 && send.2.contains("not retried: the certificate was refused"), "\(send)")
        #expect(!send.2.contains("after 120s"), "\(send)")

        // Plain HTTP to the TLS port: the handshake fails and the connection is closed at once
        // (52 empty reply or 56 reset), not left hanging (28 would be curl's timeout).
        let started = ContinuousClock.now
        let plain = try await Self.curl("http://127.0.0.1:\(port)/healthz")
        #expect(plain.0 == 52 || plain.0 == 56, "\(plain)")
        #expect(!plain.1.hasSuffix("\n200"))
        #expect(ContinuousClock.now - started < .seconds(15), "plain HTTP was not refused but left to time out")
        // The listener is unharmed.
        #expect(herald.isRunning)
        #expect(try await Self.curl(base + "/healthz", trusting: first.cert).1.hasSuffix("\n200"))

        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
    }

    /// A renewed certificate written over the old files, then `reloadTLS`: new connections get
    /// the new certificate; a broken pair changes nothing and says which file.
    @Test func reloadSwapsTheCertificateForNewConnections() async throws {
        let dir = try temporaryDirectory("herald-tls")
        let first = try Self.makeCertificate("first", in: dir)
        let config = try ConfigLoader.load(yaml: yaml(dir: dir, tls: "  tls: {cert_file: first.crt, key_file: first.key}"),
                                           file: dir.appendingPathComponent("herald.yaml").path)
        var logger = Logger(label: "tls-test")
        logger.logLevel = .critical
        let app = try HeraldApplication(config: config, logger: logger, console: { _ in })
        let task = Task { try await app.run() }
        defer { task.cancel() }
        #expect(await eventually(timeout: .seconds(60)) { app.port != 0 }, "the server did not start listening")
        let url = "https://127.0.0.1:\(app.port)/healthz"
        #expect(try await Self.curl(url, trusting: first.cert).1.hasSuffix("\n200"))

        // Renewal: a new certificate and key for the same name, over the same files, as certbot
        // or cert-manager would write them. Keep a copy of the old certificate to test against.
        let oldCopy = dir.appendingPathComponent("old.crt").path
        try FileManager.default.copyItem(atPath: first.cert, toPath: oldCopy)
        try FileManager.default.removeItem(atPath: first.cert)
        try FileManager.default.removeItem(atPath: first.key)
        try Self.makeCertificate("first", in: dir)
        // Until the reload, the old certificate is still what is served.
        #expect(try await Self.curl(url, trusting: oldCopy).1.hasSuffix("\n200"))
        try app.reloadTLS(certFile: first.cert, keyFile: first.key)
        let renewed = try await Self.curl(url, trusting: first.cert)
        #expect(renewed.0 == 0 && renewed.1.hasSuffix("\n200"), "\(renewed)")
        let stale = try await Self.curl(url, trusting: oldCopy)
        #expect(stale.0 == 60, "a new connection still got the old certificate: \(stale)")

        // A key that is not the certificate's: refused, located at key_file, and the renewed
        // certificate is still served.
        let other = try Self.makeCertificate("other", in: dir)
        #expect {
            try app.reloadTLS(certFile: first.cert, keyFile: other.key)
        } throws: { error in
            "\(error)".contains("herald.yaml:5:41: server.tls.key_file: the key in \(other.key) does not match the certificate in \(first.cert)")
        }
        #expect(throws: ConfigErrors.self) { try app.reloadTLS(certFile: dir.appendingPathComponent("gone.crt").path, keyFile: first.key) }
        #expect(throws: ConfigErrors.self) { try app.reloadTLS(nil) }
        #expect(try await Self.curl(url, trusting: first.cert).1.hasSuffix("\n200"))
        // Other files entirely (as a reloaded configuration naming new paths would).
        try app.reloadTLS(ListenerTLSConfig(certFile: other.cert, keyFile: other.key))
        #expect(try await Self.curl(url, trusting: other.cert).1.hasSuffix("\n200"))
        #expect(try await Self.curl(url, trusting: first.cert).0 == 60)
        task.cancel()
        _ = try? await task.value
    }

    /// A plain listener cannot be turned into a TLS one by a reload.
    @Test func aPlainServerRefusesToReloadIntoTLS() async throws {
        let dir = try temporaryDirectory("herald-tls")
        let first = try Self.makeCertificate("first", in: dir)
        let config = try ConfigLoader.load(yaml: yaml(dir: dir, tls: ""), file: dir.appendingPathComponent("herald.yaml").path)
        var logger = Logger(label: "tls-test")
        logger.logLevel = .critical
        let app = try HeraldApplication(config: config, logger: logger, console: { _ in })
        #expect(app.listenerTLS == nil)
        #expect(throws: ConfigErrors.self) { try app.reloadTLS(certFile: first.cert, keyFile: first.key) }
        try app.reloadTLS(nil)
    }

    /// `herald check` finds every problem with the files, at the key that names them.
    @Test func checkReportsBadCertificateFilesWithTheirLocation() async throws {
        let dir = try temporaryDirectory("herald-tls")
        try Self.makeCertificate("first", in: dir)
        try Self.makeCertificate("other", in: dir)
        try "not a certificate\n".write(toFile: dir.appendingPathComponent("junk.crt").path, atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("herald.yaml").path
        func check(_ tls: String) async throws -> (Int32, String, String) {
            try yaml(dir: dir, tls: tls).write(toFile: config, atomically: true, encoding: .utf8)
            return try await HeraldBinary.run(["check", "--config", config])
        }
        let ok = try await check("  tls: {cert_file: first.crt, key_file: first.key}")
        #expect(ok.0 == 0, "\(ok)")
        let cases: [(String, String)] = [
            ("  tls: {cert_file: missing.crt, key_file: first.key}",
             "\(config):5:20: server.tls.cert_file: cannot read \(dir.path)/missing.crt: no such file"),
            ("  tls: {cert_file: first.crt, key_file: missing.key}",
             "\(config):5:41: server.tls.key_file: cannot read \(dir.path)/missing.key: no such file"),
            ("  tls: {cert_file: junk.crt, key_file: first.key}",
             "\(config):5:20: server.tls.cert_file: \(dir.path)/junk.crt holds no PEM certificate"),
            ("  tls: {cert_file: first.crt, key_file: first.crt}",
             "\(config):5:41: server.tls.key_file: \(dir.path)/first.crt holds no unencrypted PEM private key"),
            ("  tls: {cert_file: first.crt, key_file: other.key}",
             "\(config):5:41: server.tls.key_file: the key in \(dir.path)/other.key does not match the certificate in \(dir.path)/first.crt"),
            ("  tls: {cert_file: first.crt}", "\(config):5:8: server.tls.key_file: missing required key"),
        ]
        for (tls, expected) in cases {
            let r = try await check(tls)
            #expect(r.0 == 1 && r.2.contains(expected), "\(tls): \(r.2)")
            #expect(!r.2.contains("PRIVATE KEY"), "a key file's contents were printed: \(r.2)")
        }
    }
}
