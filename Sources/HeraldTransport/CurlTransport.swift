import CCurl
import Foundation

/// The real `HTTPTransport` and `MailTransport`: one libcurl multi handle driven by one dedicated thread.
///
/// Callers submit requests from any thread; the loop thread adds them to the multi handle, drives all
/// transfers with `curl_multi_poll`/`curl_multi_perform`, and resumes each caller when its transfer ends.
/// Connections, DNS results and TLS sessions are kept and reused across requests.
///
/// Create one per process (or per purpose) and pass it around. Call `shutdown()` when done: it fails
/// whatever is still in flight with `.shutdown` and releases every libcurl handle.
public final class CurlTransport: HTTPTransport, Sendable {
    /// Connections at once to one host, and in all (0: no limit). A transfer over a limit waits
    /// inside libcurl for a connection while its timeout runs, so a caller with caps of its own
    /// (the dispatcher's lanes) passes 0.
    public let maxConnectionsPerHost: Int
    public let maxTotalConnections: Int
    /// Response bodies are cut to this many bytes; the rest is read and discarded.
    public let maxResponseBytes: Int
    public let userAgent: String

    /// Internal so that `send(_: MailMessage)` (CurlTransport+Mail.swift) shares it.
    let engine: Engine

    public init(
        maxConnectionsPerHost: Int = 64,
        maxTotalConnections: Int = 512,
        maxResponseBytes: Int = 65_536,
        userAgent: String = "herald/0.1"
    ) {
        self.maxConnectionsPerHost = max(0, maxConnectionsPerHost)
        self.maxTotalConnections = max(0, maxTotalConnections)
        self.maxResponseBytes = max(0, maxResponseBytes)
        self.userAgent = userAgent
        engine = Engine(
            maxConnectionsPerHost: self.maxConnectionsPerHost,
            maxTotalConnections: self.maxTotalConnections,
            userAgent: userAgent
        )
    }

    deinit {
        engine.shutdown()
    }

    /// Why libcurl cannot be used in this process (it is loaded on first use: not installed, too
    /// old, or its global initialisation failed), or nil once it is loaded and initialised.
    public static var unavailable: String? {
        let rc = hc_global_init_once()
        if let problem = hc_load_problem() { return String(cString: problem) }
        return rc == CURLE_OK ? nil : "curl_global_init failed: " + String(cString: hc_easy_strerror(rc))
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        if let problem = Self.validate(request) {
            throw problem
        }
        let cap = maxResponseBytes
        let engine = self.engine
        return try await withCheckedThrowingContinuation { continuation in
            engine.submit(Transfer(request: request, maxResponseBytes: cap, continuation: continuation))
        }
    }

    /// Stops the loop thread, fails pending and in-flight requests with `.shutdown`, and frees all
    /// libcurl handles. Returns once that is done (unless called on the loop thread itself).
    /// Idempotent; `send` afterwards throws `.shutdown`.
    public func shutdown() {
        engine.shutdown()
    }

    /// Rejects what libcurl would misinterpret or what could inject header lines.
    /// Messages never quote header values or the URL.
    static func validate(_ request: HTTPRequest) -> TransportError? {
        let method = request.method
        let tokenOK = !method.isEmpty && method.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                return true
            default:
                return false
            }
        }
        if !tokenOK {
            return TransportError(kind: .invalidRequest, message: "invalid HTTP method")
        }
        if request.url.isEmpty || request.url.utf8.contains(where: Self.isLineBreakOrNul) {
            return TransportError(kind: .invalidRequest, message: "URL is empty or contains CR, LF or NUL")
        }
        for header in request.headers {
            if header.name.isEmpty || header.name.utf8.contains(where: { $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7F }) {
                return TransportError(kind: .invalidRequest, message: "invalid header name")
            }
            if header.value.utf8.contains(where: Self.isLineBreakOrNul) {
                return TransportError(
                    kind: .invalidRequest, message: "value of header \(header.name) contains CR, LF or NUL")
            }
        }
        return nil
    }

    private static func isLineBreakOrNul(_ byte: UInt8) -> Bool {
        byte == 0 || byte == 0x0D || byte == 0x0A
    }
}
