import TestSupport
import Crypto
import Foundation
import HeraldTransport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real Matrix homeserver (Synapse, from the `matrix-synapse` PyPI package, SQLite) on a free
/// loopback port, with its own temporary directory. It runs under `TestPython` (set
/// `HERALD_TEST_PYTHON` to a virtualenv's python that has `matrix-synapse` installed).
///
/// Users are registered through the shared-secret admin API; rate limits are raised so that a
/// test can send quickly (a user can be throttled again on purpose with `throttle`). Unchecked
/// Sendable: every stored property is set once; `Process` is only asked about and stopped.
final class SynapsePeer: @unchecked Sendable {
    @TaskLocal static var current: SynapsePeer?

    let baseURL: String
    let directory: URL
    let serverName = "herald.localhost"
    private let process: Process
    private let sharedSecret: String
    private let http = CurlTransport()
    /// How long the homeserver took from launch to answering `/_matrix/client/versions`.
    let startup: Duration

    private init(baseURL: String, directory: URL, process: Process, sharedSecret: String, startup: Duration) {
        self.baseURL = baseURL
        self.directory = directory
        self.process = process
        self.sharedSecret = sharedSecret
        self.startup = startup
    }

    /// Writes a minimal `homeserver.yaml`, launches Synapse, and returns once it answers. A port
    /// taken between choosing and binding (other sessions run servers too) is retried on another.
    static func start() async throws -> SynapsePeer {
        var lastError: (any Error)?
        for _ in 0..<3 {
            do {
                return try await launch(port: try freePort())
            } catch let error as PortInUse {
                lastError = error
            }
        }
        throw lastError!
    }

    struct PortInUse: Error, CustomStringConvertible {
        var description: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static func launch(port: Int) async throws -> SynapsePeer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-synapse-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let secret = randomToken()
        let seed = Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString().replacingOccurrences(of: "=", with: "")
        try "ed25519 a_herald \(seed)\n".write(to: dir.appendingPathComponent("signing.key"), atomically: true, encoding: .utf8)
        let limits = "{per_second: 1000, burst_count: 1000}"
        let config = """
            server_name: "herald.localhost"
            pid_file: \(dir.path)/homeserver.pid
            listeners:
              - port: \(port)
                bind_addresses: ['127.0.0.1']
                type: http
                tls: false
                x_forwarded: false
                resources:
                  - names: [client]
                    compress: false
            database:
              name: sqlite3
              args:
                database: \(dir.path)/homeserver.db
            media_store_path: \(dir.path)/media_store
            signing_key_path: \(dir.path)/signing.key
            registration_shared_secret: "\(secret)"
            macaroon_secret_key: "\(randomToken())"
            form_secret: "\(randomToken())"
            report_stats: false
            enable_metrics: false
            trusted_key_servers: []
            suppress_key_server_warning: true
            presence:
              enabled: false
            rc_message: \(limits)
            rc_registration: \(limits)
            rc_room_creation: \(limits)
            rc_joins: {local: \(limits), remote: \(limits)}
            rc_login: {address: \(limits), account: \(limits), failed_attempts: \(limits)}
            rc_invites: {per_room: \(limits), per_user: \(limits), per_issuer: \(limits)}

            """
        let configPath = dir.appendingPathComponent("homeserver.yaml")
        try config.write(to: configPath, atomically: true, encoding: .utf8)

        // Output to a file, never a pipe: a pipe nobody drains blocks the server once it fills.
        let logPath = dir.appendingPathComponent("synapse.out")
        _ = FileManager.default.createFile(atPath: logPath.path, contents: nil)
        let log = try FileHandle(forWritingTo: logPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPython.path)
        process.arguments = TestPython.prefixArguments + ["-m", "synapse.app.homeserver", "--config-path", configPath.path]
        process.currentDirectoryURL = dir
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let launched = ContinuousClock.now
        try process.run()
        try? log.close()

        let baseURL = "http://127.0.0.1:\(port)"
        let http = CurlTransport()
        defer { http.shutdown() }
        let deadline = launched + .seconds(60)
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                let output = (try? String(contentsOf: logPath, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(at: dir)
                if output.contains("Address already in use") { throw PortInUse(description: "port \(port) taken") }
                throw Failure(description: """
                    Synapse exited (status \(process.terminationStatus)) before answering. Is matrix-synapse installed \
                    for \(TestPython.path) \(TestPython.prefixArguments.joined(separator: " "))? \
                    (python3 -m venv V && V/bin/pip install matrix-synapse; HERALD_TEST_PYTHON=V/bin/python)
                    \(output.suffix(3000))
                    """)
            }
            if let response = try? await http.send(HTTPRequest(method: "GET", url: baseURL + "/_matrix/client/versions", timeout: .seconds(2))),
               response.status == 200 {
                let peer = SynapsePeer(baseURL: baseURL, directory: dir, process: process, sharedSecret: secret,
                                       startup: ContinuousClock.now - launched)
                print("Synapse answered on \(baseURL) after \(peer.startup)")
                return peer
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let output = (try? String(contentsOf: logPath, encoding: .utf8)) ?? ""
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
        throw Failure(description: "Synapse did not answer within 60 s\n\(output.suffix(3000))")
    }

    /// Stops the server and deletes its directory. SIGKILL, not SIGTERM: a child started from
    /// the test process inherits its blocked signal mask (SIGTERM and SIGINT included, seen in
    /// /proc/PID/status), so a polite signal would wait forever; nothing here needs a clean exit.
    func stop() {
        http.shutdown()
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Client-server API, as a person's client would use it

    struct User {
        var id: String
        var token: String
    }

    /// Registers a user through `/_synapse/admin/v1/register`: a nonce, then an HMAC-SHA1 of
    /// `nonce\0user\0password\0admin|notadmin` keyed with the shared secret.
    func register(_ localpart: String, admin: Bool = false) async throws -> User {
        let nonce = try await request("GET", "/_synapse/admin/v1/register")["nonce"] as! String
        let password = Self.randomToken()
        var mac = HMAC<Insecure.SHA1>(key: SymmetricKey(data: Data(sharedSecret.utf8)))
        mac.update(data: Data("\(nonce)\0\(localpart)\0\(password)\0\(admin ? "admin" : "notadmin")".utf8))
        let hex = mac.finalize().map { String(format: "%02x", $0) }.joined()
        let answer = try await request("POST", "/_synapse/admin/v1/register", body: [
            "nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": hex,
        ])
        return User(id: answer["user_id"] as! String, token: answer["access_token"] as! String)
    }

    /// Creates a private room owned by `user` and answers its id.
    func createRoom(_ user: User, version: String? = nil) async throws -> String {
        var body: [String: Any] = ["preset": "private_chat", "name": "Herald test"]
        if let version { body["room_version"] = version }
        return try await request("POST", "/_matrix/client/v3/createRoom", token: user.token, body: body)["room_id"] as! String
    }

    /// The room's `m.room.message` events, oldest first, as a member sees them.
    func messages(_ room: String, as user: User) async throws -> [[String: Any]] {
        let answer = try await request("GET", "/_matrix/client/v3/rooms/\(Self.segment(room))/messages?dir=b&limit=100", token: user.token)
        let chunk = answer["chunk"] as? [[String: Any]] ?? []
        return chunk.filter { $0["type"] as? String == "m.room.message" }.reversed()
    }

    func event(_ id: String, in room: String, as user: User) async throws -> [String: Any] {
        try await request("GET", "/_matrix/client/v3/rooms/\(Self.segment(room))/event/\(Self.segment(id))", token: user.token)
    }

    /// The replies in the thread rooted at `root`, as a threads-aware client lists them.
    func thread(_ root: String, in room: String, as user: User) async throws -> [[String: Any]] {
        let answer = try await request("GET", "/_matrix/client/v1/rooms/\(Self.segment(room))/relations/\(Self.segment(root))/m.thread",
                                       token: user.token)
        return answer["chunk"] as? [[String: Any]] ?? []
    }

    /// Puts `user` back under a tight message rate limit (admin API).
    func throttle(_ user: User, perSecond: Int, burst: Int, admin: User) async throws {
        _ = try await request("POST", "/_synapse/admin/v1/users/\(Self.segment(user.id))/override_ratelimit", token: admin.token,
                              body: ["messages_per_second": perSecond, "burst_count": burst])
    }

    /// One JSON call; anything but 2xx is a test failure with the server's answer.
    func request(_ method: String, _ path: String, token: String? = nil, body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPRequest(method: method, url: baseURL + path, timeout: .seconds(20))
        if let token { request.headers.append(("Authorization", "Bearer \(token)")) }
        if let body {
            request.body = Array(try JSONSerialization.data(withJSONObject: body))
            request.headers.append(("Content-Type", "application/json"))
        }
        let response = try await http.send(request)
        guard (200..<300).contains(response.status) else {
            throw Failure(description: "\(method) \(path): HTTP \(response.status) \(response.bodyText)")
        }
        return (try JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }

    static func segment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn:
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? s
    }

    static func randomToken() -> String {
        (0..<32).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
    }

    /// A port nothing listens on right now (the kernel's pick for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure(description: "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw Failure(description: "getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Runs a suite against one Synapse, started before its first test and stopped after its last.
struct SynapseTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        let peer = try await SynapsePeer.start()
        defer { peer.stop() }
        try await SynapsePeer.$current.withValue(peer) {
            try await function()
        }
    }
}

extension Trait where Self == SynapseTrait {
    /// A real Matrix homeserver for the suite: `SynapsePeer.current` inside its tests.
    static var synapse: Self { SynapseTrait() }
}
