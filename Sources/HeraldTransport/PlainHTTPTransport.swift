import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One request per connection over a plain socket, for a short-lived client talking to a Herald
/// server over `http://` (`herald send` in a monitoring hook): no libcurl, so a hook's process
/// never loads it and the thirty libraries it needs (about 5 ms of every start on this machine).
/// `https://` and proxies are libcurl's (`CurlTransport`): `handles(_:environment:)` says which.
///
/// It blocks the calling thread for the exchange (bounded by the request's timeouts): right for a
/// command that makes one call at a time, wrong for a server.
public struct PlainHTTPTransport: HTTPTransport {
    /// Response bodies are cut to this many bytes; the rest is read and discarded.
    public let maxResponseBytes: Int

    public init(maxResponseBytes: Int = 16 << 20) {
        self.maxResponseBytes = max(0, maxResponseBytes)
    }

    /// An `http://` URL, and no proxy that libcurl would use for it in the environment
    /// (`http_proxy`, `all_proxy`, `ALL_PROXY`; libcurl ignores `HTTP_PROXY`).
    public static func handles(_ url: String, environment: [String: String]) -> Bool {
        guard url.lowercased().hasPrefix("http://") else { return false }
        return ["http_proxy", "all_proxy", "ALL_PROXY"].allSatisfy { (environment[$0] ?? "").isEmpty }
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        if let problem = CurlTransport.validate(request) { throw problem }
        let clock = ContinuousClock()
        let start = clock.now
        let target = try Target(request.url)
        let deadline = start + request.timeout
        let fd = try connect(target, by: min(start + request.connectTimeout, deadline), clock: clock)
        defer { close(fd) }
        try write(head(request, target) + request.body, to: fd, by: deadline, clock: clock)
        var response = try read(from: fd, by: deadline, clock: clock)
        response.duration = clock.now - start
        return response
    }

    /// Where the URL points: the host to resolve, the port, the `Host` header and the request target.
    struct Target {
        var host: String
        var port: Int
        var authority: String
        var path: String

        init(_ url: String) throws {
            guard let c = URLComponents(string: url), c.scheme?.lowercased() == "http", let host = c.host, !host.isEmpty else {
                throw TransportError(kind: .invalidRequest, message: "not an http:// URL with a host")
            }
            guard c.user == nil, c.password == nil else {
                throw TransportError(kind: .invalidRequest, message: "credentials in the URL are not sent over plain HTTP")
            }
            self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            port = c.port ?? 80
            guard (1...65_535).contains(port) else { throw TransportError(kind: .invalidRequest, message: "port out of range") }
            let bare = self.host.contains(":") ? "[\(self.host)]" : self.host
            authority = c.port == nil ? bare : "\(bare):\(port)"
            path = (c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath) + (c.percentEncodedQuery.map { "?" + $0 } ?? "")
        }
    }

    func head(_ request: HTTPRequest, _ target: Target) -> [UInt8] {
        var text = "\(request.method) \(target.path) HTTP/1.1\r\nHost: \(target.authority)\r\nConnection: close\r\n"
        let owned: Set<String> = ["host", "connection", "content-length", "transfer-encoding"]
        for header in request.headers where !owned.contains(header.name.lowercased()) {
            text += "\(header.name): \(header.value)\r\n"
        }
        if !request.body.isEmpty || !["GET", "HEAD", "DELETE", "OPTIONS"].contains(request.method.uppercased()) {
            text += "Content-Length: \(request.body.count)\r\n"
        }
        return Array((text + "\r\n").utf8)
    }

    /// The first address that accepts, trying each the name resolves to.
    func connect(_ target: Target, by deadline: ContinuousClock.Instant, clock: ContinuousClock) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw TransportError(kind: .resolve, message: "cannot resolve host \"\(target.host)\"")
        }
        defer { freeaddrinfo(first) }
        var problem = TransportError(kind: .connect, message: "no address to connect to")
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if fd < 0 { continue }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                problem = TransportError(kind: .connect, message: "connect to \(target.authority) failed: \(Self.describe(errno))")
                close(fd)
                continue
            }
            do {
                try wait(fd, for: Int16(POLLOUT), by: deadline, clock: clock, what: "connecting to \(target.authority)")
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 { return fd }
                problem = TransportError(kind: .connect, message: "connect to \(target.authority) failed: \(Self.describe(error))")
            } catch let error as TransportError {
                problem = error
            }
            close(fd)
            if case .timeout = problem.kind { break }
        }
        throw problem
    }

    func write(_ bytes: [UInt8], to fd: Int32, by deadline: ContinuousClock.Instant, clock: ContinuousClock) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            guard n < 0, errno == EAGAIN || errno == EINTR else {
                throw TransportError(kind: .send, message: "sending the request failed: \(Self.describe(errno))")
            }
            try wait(fd, for: Int16(POLLOUT), by: deadline, clock: clock, what: "sending the request")
        }
    }

    /// Reads until the answer is complete: its `Content-Length`, its last chunk, or the end of
    /// the connection (asked for with `Connection: close`). Informational answers are skipped.
    func read(from fd: Int32, by deadline: ContinuousClock.Instant, clock: ContinuousClock) throws -> HTTPResponse {
        var parser = ResponseParser(maxBody: maxResponseBytes)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                if let response = try parser.feed(buffer[0..<n]) { return response }
                continue
            }
            if n == 0 {
                if let response = try parser.finish() { return response }
                throw TransportError(kind: .receive, message: "the server closed the connection before a complete answer")
            }
            guard errno == EAGAIN || errno == EINTR else {
                throw TransportError(kind: .receive, message: "reading the answer failed: \(Self.describe(errno))")
            }
            try wait(fd, for: Int16(POLLIN), by: deadline, clock: clock, what: "waiting for the answer")
        }
    }

    func wait(_ fd: Int32, for events: Int16, by deadline: ContinuousClock.Instant, clock: ContinuousClock, what: String) throws {
        while true {
            let left = deadline - clock.now
            guard left > .zero else { throw TransportError(kind: .timeout, message: "timed out \(what)") }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(clamping: max(1, (left.components.seconds * 1000) + left.components.attoseconds / 1_000_000_000_000_000))
            let rc = poll(&p, 1, ms)
            if rc > 0 { return }
            if rc < 0 && errno != EINTR {
                throw TransportError(kind: .other, message: "poll failed: \(Self.describe(errno))")
            }
        }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// An HTTP/1.1 answer read piece by piece.
struct ResponseParser {
    let maxBody: Int
    private var buffer: [UInt8] = []
    /// The status line and headers, once read (the body is added at the end).
    private var head: HTTPResponse?
    private var body: [UInt8] = []
    /// Body bytes received, kept or not.
    private var received = 0
    private var length: Int?
    private var chunked = false
    private var done = false

    init(maxBody: Int) { self.maxBody = maxBody }

    /// The answer, once these bytes complete it.
    mutating func feed(_ bytes: ArraySlice<UInt8>) throws -> HTTPResponse? {
        buffer.append(contentsOf: bytes)
        while head == nil {
            guard let end = buffer.firstRange(of: [13, 10, 13, 10]) else {
                if buffer.count > 65_536 { throw TransportError(kind: .receive, message: "the answer's header is too long") }
                return nil
            }
            let parsed = try Self.parseHead(buffer[..<end.lowerBound])
            buffer.removeSubrange(..<end.upperBound)
            // 100 Continue and other informational answers precede the real one.
            if (100..<200).contains(parsed.status) { continue }
            head = parsed
            chunked = parsed.header("transfer-encoding")?.lowercased().contains("chunked") == true
            if !chunked, let text = parsed.header("content-length") {
                guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                    throw TransportError(kind: .receive, message: "the answer's Content-Length is not a number")
                }
                length = n
            }
        }
        if chunked { try takeChunks() } else { take(buffer); buffer.removeAll() }
        if chunked ? done : length.map({ received >= $0 }) == true { return response() }
        return nil
    }

    /// The connection ended: the answer if it was complete (an answer without length ends there).
    func finish() throws -> HTTPResponse? {
        guard head != nil else { return nil }
        if chunked ? done : length.map({ received >= $0 }) ?? true { return response() }
        return nil
    }

    private mutating func take(_ bytes: some Collection<UInt8>) {
        received += bytes.count
        let room = maxBody - body.count
        if room > 0 { body.append(contentsOf: bytes.prefix(room)) }
    }

    private mutating func takeChunks() throws {
        while !done {
            guard let lineEnd = buffer.firstRange(of: [13, 10])?.lowerBound else { return }
            let sizeText = String(decoding: buffer[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw TransportError(kind: .receive, message: "the answer's chunk size is not a number")
            }
            if size == 0 {
                done = true
                return
            }
            guard buffer.count >= lineEnd + 2 + size + 2 else { return }
            take(buffer[(lineEnd + 2)..<(lineEnd + 2 + size)])
            buffer.removeFirst(lineEnd + 2 + size + 2)
        }
    }

    private func response() -> HTTPResponse {
        var response = head ?? HTTPResponse(status: 0)
        response.body = body
        return response
    }

    static func parseHead(_ bytes: ArraySlice<UInt8>) throws -> HTTPResponse {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]), (100...999).contains(status) else {
            throw TransportError(kind: .receive, message: "the answer is not HTTP/1.x")
        }
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return HTTPResponse(status: status, headers: headers)
    }
}
