import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real SMTP server (`aiosmtpd`, with the `cryptography` package for its certificate) on a free
/// loopback port, under `TestPython`. Every message it accepts is written as one JSON file into
/// its directory: the envelope, the raw DATA bytes (base64), and what Python's own `email` parser
/// makes of them (decoded headers, decoded MIME parts, parser defects), so tests assert both on
/// the bytes on the wire and on what a mail client would show.
///
/// Modes: `.plain` speaks no TLS and needs no AUTH; `.secure` offers STARTTLS with a self-signed
/// certificate it generates, requires it, and requires AUTH (PLAIN, LOGIN) as `username` /
/// `password` after it. Either answers `451` to any recipient whose local part starts with
/// `busy` and `550` to one starting with `nobody`.
///
/// Unchecked Sendable: every stored property is set once; `Process` is only asked about and stopped.
public final class SMTPPeer: @unchecked Sendable {
    public enum Mode: String, Sendable { case plain, secure }

    @TaskLocal public static var plain: SMTPPeer?
    @TaskLocal public static var secure: SMTPPeer?

    public static let username = "herald-mailer"
    public static let password = "s3cret-Pa55word-9d2f"

    public let port: Int
    public let directory: URL
    public let mode: Mode
    private let process: Process

    public var url: String { "smtp://127.0.0.1:\(port)" }

    private init(port: Int, directory: URL, mode: Mode, process: Process) {
        self.port = port
        self.directory = directory
        self.mode = mode
        self.process = process
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// One message as the server received it.
    public struct Received: Sendable {
        public var mailFrom: String
        public var rcptTos: [String]
        /// The DATA as sent (after the server undid dot-stuffing).
        public var raw: [UInt8]
        public var rawText: String { String(decoding: raw, as: UTF8.self) }
        /// Header names and values as Python's `email` parser decodes them (RFC 2047 undone).
        public var headers: [(name: String, value: String)]
        /// Each MIME part: content type, charset, transfer encoding and decoded text.
        public var parts: [(type: String, charset: String?, encoding: String?, text: String)]
        public var defects: [String]
        public var authenticatedAs: String?
        public var tls: Bool

        public func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
        public func headerCount(_ name: String) -> Int {
            headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.count
        }
    }

    /// Launches the server and returns once it has written its port.
    public static func start(_ mode: Mode) async throws -> SMTPPeer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = dir.appendingPathComponent("peer.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)

        // Output to a file, never a pipe: a pipe nobody drains blocks the server once it fills.
        let logPath = dir.appendingPathComponent("peer.out")
        _ = FileManager.default.createFile(atPath: logPath.path, contents: nil)
        let log = try FileHandle(forWritingTo: logPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPython.path)
        process.arguments = TestPython.prefixArguments + [script.path, dir.path, mode.rawValue, username, password]
        process.currentDirectoryURL = dir
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()

        let portFile = dir.appendingPathComponent("port")
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOf: portFile, encoding: .utf8),
               let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return SMTPPeer(port: port, directory: dir, mode: mode, process: process)
            }
            if !process.isRunning {
                let output = (try? String(contentsOf: logPath, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(at: dir)
                throw Failure(description: """
                    the SMTP peer exited (status \(process.terminationStatus)) before listening. Are aiosmtpd and \
                    cryptography installed for \(TestPython.path) \(TestPython.prefixArguments.joined(separator: " "))? \
                    (python3 -m venv V && V/bin/pip install aiosmtpd cryptography; HERALD_TEST_PYTHON=V/bin/python)
                    \(output.suffix(3000))
                    """)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
        throw Failure(description: "the SMTP peer did not listen within 30 s")
    }

    /// Stops the server and deletes its directory. SIGKILL: a child of the test process inherits
    /// its blocked signal mask, so SIGTERM would wait forever (see `SynapsePeer.stop`).
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Every message accepted so far for `recipient` (the server writes it before answering 250,
    /// so a delivery that returned is already here), oldest first.
    public func received(for recipient: String) throws -> [Received] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("msg-") && $0.hasSuffix(".json") }.sorted()
        return try names.compactMap { name -> Received? in
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw Failure(description: "\(name) is not a JSON object")
            }
            let rcpts = json["rcpt_tos"] as? [String] ?? []
            guard rcpts.contains(where: { $0.caseInsensitiveCompare(recipient) == .orderedSame }) else { return nil }
            let headers = (json["headers"] as? [[String]] ?? []).map { (name: $0[0], value: $0[1]) }
            let parts = (json["parts"] as? [[String: Any]] ?? []).map {
                (type: $0["type"] as? String ?? "", charset: $0["charset"] as? String,
                 encoding: $0["encoding"] as? String, text: $0["text"] as? String ?? "")
            }
            return Received(
                mailFrom: json["mail_from"] as? String ?? "", rcptTos: rcpts,
                raw: Array(Data(base64Encoded: json["data"] as? String ?? "") ?? Data()),
                headers: headers, parts: parts, defects: json["defects"] as? [String] ?? [],
                authenticatedAs: json["auth"] as? String, tls: json["tls"] as? Bool ?? false)
        }
    }

    /// The peer. Argument order: directory, mode, username, password.
    static let script = #"""
        import asyncio, base64, datetime, email, email.policy, ipaddress, itertools, json, os, ssl, sys
        from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

        directory, mode, username, password = sys.argv[1:5]
        counter = itertools.count(1)

        def write_atomically(name, data):
            tmp = os.path.join(directory, "." + name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(directory, name))

        def certificate():
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import NameOID
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                   x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                    .sign(key, hashes.SHA256()))
            cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
            with open(cert_path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            with open(key_path, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert_path, key_path)
            return context

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == username.encode()
                  and auth_data.password == password.encode())
            return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                local = address.split("@")[0].lower()
                if local.startswith("busy"):
                    return "451 4.3.0 Mailbox busy, try again later"
                if local.startswith("nobody"):
                    return "550 5.1.1 No such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                raw = envelope.original_content
                message = email.message_from_bytes(raw, policy=email.policy.default)
                parts, defects = [], [type(d).__name__ for d in message.defects]
                for part in (message.iter_parts() if message.is_multipart() else [message]):
                    defects += [type(d).__name__ for d in part.defects]
                    parts.append({"type": part.get_content_type(), "charset": part.get_content_charset(),
                                  "encoding": part.get("Content-Transfer-Encoding"), "text": part.get_content()})
                auth = session.auth_data
                record = {
                    "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                    "data": base64.b64encode(raw).decode(),
                    "headers": [[k, str(v)] for k, v in message.items()],
                    "parts": parts, "defects": defects,
                    "auth": auth if isinstance(auth, str) else None,
                    "tls": session.ssl is not None,
                }
                write_atomically("msg-%06d.json" % next(counter), json.dumps(record).encode())
                return "250 2.0.0 Message accepted"

        options = {"hostname": "herald-test-peer", "decode_data": False}
        if mode == "secure":
            options.update(tls_context=certificate(), require_starttls=True, auth_required=True,
                           auth_require_tls=True, authenticator=authenticator)
        else:
            options.update(auth_required=False)

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        # If the test process dies without stopping us (a crash), exit too rather than linger.
        parent = os.getppid()
        def watch_parent():
            if os.getppid() != parent:
                os._exit(0)
            loop.call_later(0.5, watch_parent)
        loop.call_soon(watch_parent)
        handler = Handler()
        server = loop.run_until_complete(loop.create_server(lambda: SMTP(handler, **options), host="127.0.0.1", port=0))
        write_atomically("port", str(server.sockets[0].getsockname()[1]).encode())
        print("listening", flush=True)
        loop.run_forever()
        """#
}

