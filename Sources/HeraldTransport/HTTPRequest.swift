import Foundation

/// One outbound HTTP request. Bodies are bytes; the transport never logs them.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Upper bound for the whole exchange (connect, send, wait, read).
    public var timeout: Duration
    public var connectTimeout: Duration
    /// TLS peer and host verification. On unless a channel explicitly turns it off.
    public var verifyTLS: Bool

    public init(
        method: String = "POST", url: String, headers: [(name: String, value: String)] = [],
        body: [UInt8] = [], timeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10),
        verifyTLS: Bool = true
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.verifyTLS = verifyTLS
    }
}

/// What the peer answered. `body` holds at most the transport's response cap.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var duration: Duration

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], duration: Duration = .zero) {
        self.status = status
        self.headers = headers
        self.body = body
        self.duration = duration
    }

    /// The first header of that name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { HTTPHeaderName.equal($0.name, name) }?.value
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A request that got no HTTP answer.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case resolve, connect, timeout, tls, send, receive, invalidRequest, shutdown, other
    }
    public var kind: Kind
    /// libcurl's result code, or -1 when the error did not come from libcurl.
    public var code: Int32
    /// Human-readable text. Never contains the request URL's path, query or credentials.
    public var message: String
    /// The SMTP reply code when the server answered the failing command with one (e.g. 550).
    public var status: Int?

    public init(kind: Kind, code: Int32 = -1, message: String, status: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// Sends HTTP requests. `CurlTransport` is the real one.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// Header names are ASCII tokens: compared byte by byte, ignoring ASCII case (Foundation's
/// `caseInsensitiveCompare` bridges to NSString, about 2 % of a delivery's CPU in a profile).
public enum HTTPHeaderName {
    public static func equal(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { lower($0) == lower($1) }
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}
