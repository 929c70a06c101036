import Foundation
import HeraldTransport
import Testing

/// A scripted HTTP/1.1 server on 127.0.0.1 (Python's ThreadingHTTPServer), started per test.
///
/// Paths: /ok (200, JSON, X-Herald-Test: yes), /status/<n>, /retry (429, Retry-After: 7), /slow[/...] (2 s),
/// /echo (method, headers, hex body as JSON), /big (1 MiB), /hang[/...][?hold=S] (answers nothing until
/// the client closes the connection, or 200 "late" after S seconds, default 30), /counts (what the
/// server saw, as JSON: requests per path, and `hang_started`, `hang_closed` — the client closed
/// a held connection — and `hang_answered`). Every response carries X-Client-Port, the peer port of
/// the connection it was served on.
final class LoopbackHTTPServer {
    let process = Process()
    private let stdin = Pipe()
    let port: Int

    var baseURL: String { "http://127.0.0.1:\(port)" }

    static let script = #"""
import http.server, json, os, signal, socket, struct, sys, threading, time

# The test process may hand down a blocked signal mask; make SIGTERM work, and exit when the test
# process goes away (our stdin pipe closes).
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, signal.SIG_DFL)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

counts = {}
counts_lock = threading.Lock()

def bump(key):
    with counts_lock:
        counts[key] = counts.get(key, 0) + 1

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Client-Port", str(self.client_address[1]))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        if path != "/counts":
            bump(path)
        if path == "/hang" or path.startswith("/hang/"):
            hold = float(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("hold", "30"))
            bump("hang_started")
            self.connection.settimeout(hold)
            try:
                # The client sends nothing more on this connection: b"" (or a reset) is it closing.
                while self.rfile.read(1):
                    pass
                bump("hang_closed")
                self.close_connection = True
            except TimeoutError:
                bump("hang_answered")
                self.connection.settimeout(None)
                self.reply(200, b"late")
            except OSError:
                bump("hang_closed")
                self.close_connection = True
        elif path == "/counts":
            with counts_lock:
                out = json.dumps(counts).encode()
            self.reply(200, out, [("Content-Type", "application/json")])
        elif path == "/ok":
            self.reply(200, b'{"ok":true}', [("Content-Type", "application/json"), ("X-Herald-Test", "yes")])
        elif path.startswith("/status/"):
            self.reply(int(path.split("/")[2]), b"status")
        elif path == "/retry":
            self.reply(429, b"slow down", [("Retry-After", "7")])
        elif path == "/slow" or path.startswith("/slow/"):
            time.sleep(2)
            self.reply(200, b"late")
        elif path == "/echo":
            out = json.dumps({
                "method": self.command,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_hex": data.hex(),
            }).encode()
            self.reply(200, out, [("Content-Type", "application/json")])
        elif path == "/reset":
            # Read the whole request, then reset the connection with no answer (SO_LINGER 0): a
            # receiver, or a proxy in front of it, that took the message and then failed.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/big":
            self.reply(200, b"x" * (1024 * 1024))
        else:
            self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""#

    init() throws {
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        process.standardOutput = stdout
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        let handle = stdout.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw ServerStartError()
        }
        self.port = port
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        try? stdin.fileHandleForWriting.close()
    }

    struct ServerStartError: Error {}

    /// What the server saw so far (see /counts), asked over a connection of its own.
    func counts() async throws -> [String: Int] {
        let client = CurlTransport()
        defer { client.shutdown() }
        let response = try await client.send(HTTPRequest(method: "GET", url: baseURL + "/counts", timeout: .seconds(30)))
        return try JSONDecoder().decode([String: Int].self, from: Data(response.body))
    }

    /// Polls /counts until `key` reaches `count`. `patience` only bounds a hang: the event it waits
    /// for is a consequence of what the test just did, not a measure of speed.
    func waitFor(_ key: String, count: Int = 1, patience: Duration = .seconds(60)) async throws -> Bool {
        let deadline = ContinuousClock.now + patience
        while ContinuousClock.now < deadline {
            if try await counts()[key, default: 0] >= count { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await counts()[key, default: 0] >= count
    }
}

/// What /echo answers.
struct Echo: Decodable {
    var method: String
    var headers: [[String]]
    var body_hex: String

    var body: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body_hex.utf8.count / 2)
        var iterator = body_hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c <= UInt8(ascii: "9") ? c - UInt8(ascii: "0") : c - UInt8(ascii: "a") + 10 }
        while let high = iterator.next(), let low = iterator.next() {
            bytes.append(nibble(high) << 4 | nibble(low))
        }
        return bytes
    }

    func header(_ name: String) -> String? {
        headers.first { $0.first?.caseInsensitiveCompare(name) == .orderedSame }?.last
    }
}

/// What every transport must do with a peer that answers nothing: a 300 ms timeout ends the
/// request as `.timeout`, naming nothing of the URL's path, and the peer sees the connection
/// closed (the request is not left behind to be answered later).
func expectATimeoutClosesTheConnection(_ transport: any HTTPTransport) async throws {
    let server = try LoopbackHTTPServer()
    defer { server.stop() }
    let started = ContinuousClock.now
    let error = await #expect(throws: TransportError.self) {
        try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/hang/secret-token-123?hold=25",
                                             timeout: .milliseconds(300)))
    }
    print("a 300 ms timeout ended the request after \(ContinuousClock.now - started)")
    #expect(error?.kind == .timeout)
    #expect(error?.message.contains("secret-token-123") == false)
    let closed = try await server.waitFor("hang_closed")
    let seen = try await server.counts()
    #expect(closed, "the peer never saw the connection closed: \(seen)")
    #expect(seen["hang_answered"] == nil, "\(seen)")
}

/// The secrets a failing request's URL and headers carried, none of which an error may repeat.
let requestSecrets = ["secret-token-123", "/services", "query-secret-456", "hook-user", "hook-pass", "header-secret-789"]

/// What every transport answers for `/ok`: the status, the headers by any case, the body, and how long it took.
func expectTheOKAnswer(_ transport: any HTTPTransport, from server: LoopbackHTTPServer) async throws -> HTTPResponse {
    let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/ok"))
    #expect(response.status == 200)
    #expect(response.bodyText == #"{"ok":true}"#)
    #expect(response.header("x-herald-test") == "yes")
    #expect(response.header("CONTENT-TYPE") == "application/json")
    #expect(response.header("content-length") == "11")
    #expect(!response.headers.contains { $0.name.hasPrefix("HTTP/") })
    #expect(response.duration > .zero)
    return response
}
