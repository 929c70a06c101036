import Foundation
import Hummingbird
import Logging
import Synchronization

/// A real HTTP server on loopback (port 0) that records every request and answers as scripted:
/// the receiving end of webhook deliveries in tests.
public final class TestSink: Sendable {
    public struct Received: Sendable {
        public var method: String
        public var path: String
        /// Header names lowercased; the last value wins.
        public var headers: [String: String]
        public var body: [UInt8]
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    }

    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String
        public var delay: Duration
        public init(status: Int = 200, headers: [(String, String)] = [], body: String = "{\"ok\":true}", delay: Duration = .zero) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }
        public static let ok = Reply()
    }

    /// Decides each answer from the request and how many requests came before it.
    public typealias Script = @Sendable (Received, Int) -> Reply

    private struct State {
        var received: [Received] = []
        var script: Script
        var waiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }
    private let state: Mutex<State>
    private let portBox = Atomic<Int>(0)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    public init(script: @escaping Script = { _, _ in .ok }) {
        state = Mutex(State(script: script))
    }

    public var port: Int { portBox.load(ordering: .relaxed) }
    public var url: String { "http://127.0.0.1:\(port)" }

    public func setScript(_ script: @escaping Script) {
        state.withLock { $0.script = script }
    }

    public var received: [Received] { state.withLock { $0.received } }

    /// Starts listening on `port` (0: a loopback port no sink or `closedPort()` of this process has
    /// had before, so a delivery still retrying to an earlier test's stopped sink cannot reach this
    /// one) and returns once it does.
    @discardableResult
    public func start(port: Int = 0) async throws -> Int {
        if port != 0 { return try await listen(port: port) }
        var lastError: (any Error)?
        for _ in 0..<20 {
            do { return try await listen(port: TestPorts.fresh()) } catch { lastError = error }
        }
        throw lastError ?? SinkError.noPort
    }

    enum SinkError: Error { case noPort }

    private func listen(port: Int) async throws -> Int {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { [self] request, _ in
            var body: [UInt8] = []
            for try await chunk in request.body { body.append(contentsOf: chunk.readableBytesView) }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let r = Received(method: request.method.rawValue, path: request.uri.string, headers: headers, body: body)
            let reply = record(r)
            if reply.delay > .zero { try await Task.sleep(for: reply.delay) }
            var fields = HTTPFields()
            for (name, value) in reply.headers { fields.append(.init(name: .init(name)!, value: value)) }
            fields[.contentType] = fields[.contentType] ?? "application/json"
            return Response(status: .init(code: reply.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: reply.body)))
        }
        for method in [HTTPRequest.Method.post, .put, .get, .delete, .patch] {
            router.on("/", method: method, use: handler)
            router.on("**", method: method, use: handler)
        }
        var logger = Logger(label: "test-sink")
        logger.logLevel = .critical
        let ready = Wait()
        portBox.store(0, ordering: .relaxed)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { [self] channel in
                portBox.store(channel.localAddress?.port ?? 0, ordering: .relaxed)
                ready.open()
            },
            logger: logger)
        // A bind that fails ends the service without `onServerRunning`: open the gate then too.
        let t = Task {
            defer { ready.open() }
            try await app.runService(gracefulShutdownSignals: [])
        }
        await ready.wait()
        guard self.port != 0 else {
            _ = try? await t.value
            throw SinkError.noPort
        }
        task.withLock { $0 = t }
        return self.port
    }

    public func stop() async {
        let t = task.withLock { t -> Task<Void, any Error>? in
            defer { t = nil }
            return t
        }
        t?.cancel()
        _ = try? await t?.value
    }

    private func record(_ r: Received) -> Reply {
        let (reply, ready) = state.withLock { s -> (Reply, [CheckedContinuation<Void, Never>]) in
            let n = s.received.count
            s.received.append(r)
            let reply = s.script(r, n)
            var ready: [CheckedContinuation<Void, Never>] = []
            s.waiters.removeAll { count, c in
                if s.received.count >= count { ready.append(c); return true }
                return false
            }
            return (reply, ready)
        }
        for c in ready { c.resume() }
        return reply
    }

    /// Waits until at least `count` requests arrived, or the timeout. Answers whether they did.
    public func waitFor(count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.received.count }) >= count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return state.withLock { $0.received.count } >= count
    }
}

/// A one-shot gate.
final class Wait: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
    func wait() async {
        await withCheckedContinuation { c in
            let now = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}

/// A loopback port nothing listens on (bound, then closed), never handed out before in this process.
public func closedPort() -> Int { TestPorts.fresh() }

/// Loopback ports for test servers, each handed out once per process. A test whose app keeps
/// retrying to its stopped sink (or to a `closedPort()`) after the test has moved on must not reach
/// a later test's sink that the kernel happened to give the same port.
enum TestPorts {
    private static let used = Mutex<Set<Int>>([])

    static func fresh() -> Int {
        while true {
            let port = probe()
            let new = used.withLock { $0.insert(port).inserted }
            if new && port != 0 { return port }
        }
    }

    /// A port the kernel would give a listener now (bound to port 0, read back, closed).
    private static func probe() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
