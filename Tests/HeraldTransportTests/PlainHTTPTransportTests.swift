import Foundation
@testable import HeraldTransport
import Testing

/// The socket client `herald send` uses for an `http://` server, against the same scripted server
/// as libcurl's transport: what a caller sees must be the same.
@Suite("PlainHTTPTransport against a loopback server")
struct PlainHTTPTransportTests {
    @Test func anAnswerHasItsStatusHeadersAndBody() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = PlainHTTPTransport()
        _ = try await expectTheOKAnswer(transport, from: server)
        // Statuses are answers, not errors.
        let unavailable = try await transport.send(HTTPRequest(url: server.baseURL + "/status/503", body: Array("x".utf8)))
        #expect(unavailable.status == 503 && unavailable.bodyText == "status")
        let retry = try await transport.send(HTTPRequest(url: server.baseURL + "/retry"))
        #expect(retry.status == 429 && retry.header("retry-after") == "7")
    }

    @Test func bodiesAndHeadersArriveExactly() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = PlainHTTPTransport()
        let text = Array(#"{"text":"Störung — 数据库 🔥 down","n":1}"#.utf8)
        var large = [UInt8](repeating: 0, count: 200 * 1024)
        for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8) }
        for body in [text, large, []] {
            let response = try await transport.send(HTTPRequest(
                url: server.baseURL + "/echo?x=1",
                headers: [("Content-Type", "application/json"), ("User-Agent", "herald/cli"), ("X-Empty", ""),
                          ("Content-Length", "999"), ("Connection", "keep-alive")],
                body: body))
            #expect(response.status == 200)
            let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
            #expect(echo.method == "POST")
            #expect(echo.body == body)
            #expect(echo.header("content-type") == "application/json")
            #expect(echo.header("user-agent") == "herald/cli")
            #expect(echo.header("x-empty") == "")
            // The transport owns the framing: the caller's Content-Length and Connection are not sent.
            #expect(echo.header("content-length") == String(body.count))
            #expect(echo.header("connection") == "close")
            #expect(echo.header("host") == "127.0.0.1:\(server.port)")
        }
        let get = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/echo"))
        let echo = try JSONDecoder().decode(Echo.self, from: Data(get.body))
        #expect(echo.method == "GET" && echo.header("content-length") == nil)
    }

    @Test func aLongAnswerIsReadWholeUpToTheCap() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let whole = try await PlainHTTPTransport().send(HTTPRequest(method: "GET", url: server.baseURL + "/big"))
        #expect(whole.body.count == 1024 * 1024 && whole.body.allSatisfy { $0 == UInt8(ascii: "x") })
        let cut = try await PlainHTTPTransport(maxResponseBytes: 1000).send(HTTPRequest(method: "GET", url: server.baseURL + "/big"))
        #expect(cut.status == 200 && cut.body.count == 1000)
    }

    @Test func aSilentPeerTimesOutAndTheConnectionIsClosed() async throws {
        try await expectATimeoutClosesTheConnection(PlainHTTPTransport())
    }

    @Test func failuresSayWhichAndNameNoSecret() async throws {
        let server = try LoopbackHTTPServer()
        let closedPort = server.port
        server.stop()
        let transport = PlainHTTPTransport()
        let refused = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "http://127.0.0.1:\(closedPort)/services/secret-token-123?key=query-secret-456",
                                                 headers: [("Authorization", "Bearer header-secret-789")], body: Array("{}".utf8)))
        }
        #expect(refused?.kind == .connect)
        let unresolvable = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "http://herald-test.invalid/secret-token-123", timeout: .seconds(10)))
        }
        #expect(unresolvable?.kind == .resolve)
        for error in [refused, unresolvable] {
            let message = error.map { "\($0)" } ?? ""
            for secret in requestSecrets {
                #expect(!message.contains(secret), "\(message)")
            }
        }
    }

    @Test func requestsItCannotSendAreRefusedBeforeConnecting() async throws {
        let transport = PlainHTTPTransport()
        for (request, leak) in [
            (HTTPRequest(url: "https://127.0.0.1/secret-token-123"), "secret-token-123"),
            (HTTPRequest(url: "http://hook-user:hook-pass@127.0.0.1:1/"), "hook-pass"),
            (HTTPRequest(method: "GET /x", url: "http://127.0.0.1:1/"), "/x"),
            (HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-A", "v\r\nX-Injected: 1")]), "Injected"),
        ] {
            let error = await #expect(throws: TransportError.self) { try await transport.send(request) }
            #expect(error?.kind == .invalidRequest)
            #expect(error?.message.contains(leak) == false)
        }
    }

    /// libcurl keeps https:// and anything a proxy in the environment would carry.
    @Test func plainHTTPWithoutAProxyIsAllItTakes() {
        #expect(PlainHTTPTransport.handles("http://127.0.0.1:8080", environment: [:]))
        #expect(PlainHTTPTransport.handles("HTTP://herald.internal", environment: ["HTTP_PROXY": "http://proxy:3128", "https_proxy": "x"]))
        #expect(!PlainHTTPTransport.handles("https://herald.example", environment: [:]))
        #expect(!PlainHTTPTransport.handles("http://herald.internal", environment: ["http_proxy": "http://proxy:3128"]))
        #expect(!PlainHTTPTransport.handles("http://herald.internal", environment: ["ALL_PROXY": "socks5://proxy"]))
        #expect(PlainHTTPTransport.handles("http://herald.internal", environment: ["http_proxy": ""]))
    }

    /// Framings the scripted server never sends: chunked bodies, informational answers first, a
    /// body that ends with the connection, all fed a few bytes at a time.
    @Test func chunkedInformationalAndCloseDelimitedAnswersAreRead() throws {
        func parse(_ wire: String, maxBody: Int = 1 << 20, step: Int = 3) throws -> HTTPResponse? {
            var parser = ResponseParser(maxBody: maxBody)
            let bytes = Array(wire.utf8)
            var i = 0
            while i < bytes.count {
                if let done = try parser.feed(bytes[i..<min(i + step, bytes.count)]) { return done }
                i += step
            }
            return try parser.finish()
        }
        let chunked = try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
        #expect(chunked?.status == 202 && chunked?.bodyText == "hello, world")
        let closed = try parse("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        #expect(closed?.status == 200 && closed?.bodyText == "until the end" && closed?.header("content-type") == "text/plain")
        let capped = try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", maxBody: 4)
        #expect(capped?.bodyText == "0123")
        // Cut short: no answer, and the caller says the connection closed early.
        #expect(try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234") == nil)
        #expect(try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel") == nil)
        #expect(throws: TransportError.self) { try parse("SSH-2.0-OpenSSH\r\n\r\n") }
        #expect(throws: TransportError.self) { try parse("HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n") }
    }
}
