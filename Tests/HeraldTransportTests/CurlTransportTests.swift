import Foundation
import HeraldTransport
import Testing

@Suite("CurlTransport against a loopback server")
struct CurlTransportTests {
    @Test func okResponseHasStatusHeadersAndBody() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        _ = try await expectTheOKAnswer(transport, from: server)
    }

    @Test func nonSuccessStatusesAreResponsesNotErrors() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let unavailable = try await transport.send(HTTPRequest(url: server.baseURL + "/status/503", body: Array("x".utf8)))
        #expect(unavailable.status == 503)
        let retry = try await transport.send(HTTPRequest(url: server.baseURL + "/retry"))
        #expect(retry.status == 429)
        #expect(retry.header("retry-after") == "7")
        let missing = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/nothing-here"))
        #expect(missing.status == 404)
    }

    @Test func echoesBodyBytesAndHeadersExactly() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport(maxResponseBytes: 4 << 20)
        defer { transport.shutdown() }

        let text = Array(#"{"text":"Störung — 数据库 🔥 down","n":1}"#.utf8)
        var large = [UInt8](repeating: 0, count: 200 * 1024)
        for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8) }

        for body in [text, large] {
            let response = try await transport.send(HTTPRequest(
                url: server.baseURL + "/echo",
                headers: [("Content-Type", "application/json"), ("X-Signature", "sha256=abc"), ("X-Empty", "")],
                body: body))
            #expect(response.status == 200)
            let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
            #expect(echo.method == "POST")
            #expect(echo.body == body)
            #expect(echo.header("content-type") == "application/json")
            #expect(echo.header("x-signature") == "sha256=abc")
            #expect(echo.header("x-empty") == "")
            #expect(echo.header("content-length") == String(body.count))
            #expect(echo.header("expect") == nil)
            #expect(echo.header("user-agent") == "herald/0.1")
        }
    }

    @Test func methodsOtherThanPost() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let put = try await transport.send(HTTPRequest(method: "PUT", url: server.baseURL + "/echo", body: Array("put-body".utf8)))
        let putEcho = try JSONDecoder().decode(Echo.self, from: Data(put.body))
        #expect(putEcho.method == "PUT")
        #expect(putEcho.body == Array("put-body".utf8))

        let delete = try await transport.send(HTTPRequest(method: "DELETE", url: server.baseURL + "/echo"))
        #expect(try JSONDecoder().decode(Echo.self, from: Data(delete.body)).method == "DELETE")

        let get = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/echo"))
        let getEcho = try JSONDecoder().decode(Echo.self, from: Data(get.body))
        #expect(getEcho.method == "GET")
        #expect(getEcho.body.isEmpty)

        let head = try await transport.send(HTTPRequest(method: "HEAD", url: server.baseURL + "/ok"))
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
    }

    /// The peer holds its answer for 25 s; the request's own timeout is 300 ms. A timeout error, not
    /// the peer's late 200, shows the request's timeout was applied — without timing anything: a
    /// transport that ignored it (or used the 30 s default) would get the answer. The peer then
    /// sees the connection closed. (A bound on the elapsed time failed under the suite's own load:
    /// 2.7 s for 300 ms on 2 cores; with the test process starved by busy loops at nice -15 the
    /// timeout has ended the request after 9 s, well before the peer answers.)
    @Test func timeoutOnSlowPeer() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        try await expectATimeoutClosesTheConnection(transport)
    }

    @Test func connectionRefusedIsConnectAndMessageHasNoSecrets() async throws {
        let server = try LoopbackHTTPServer()
        let closedPort = server.port
        server.stop()
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let error = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(
                url: "http://hook-user:hook-pass@127.0.0.1:\(closedPort)/services/secret-token-123?key=query-secret-456",
                headers: [("Authorization", "Bearer header-secret-789")],
                body: Array("{}".utf8)))
        }
        #expect(error?.kind == .connect)
        let message = error.map { "\($0)" } ?? ""
        print("connect error: \(message)")
        for secret in requestSecrets {
            #expect(!message.contains(secret))
        }
    }

    @Test func tlsToPlainHTTPPeerIsTLS() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let error = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "https://127.0.0.1:\(server.port)/secret-token-123", timeout: .seconds(5)))
        }
        #expect(error?.kind == .tls)
        #expect(error?.message.contains("secret-token-123") == false)
    }

    @Test func unresolvableHostIsResolve() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        let error = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "http://herald-test.invalid/secret-token-123", timeout: .seconds(10)))
        }
        #expect(error?.kind == .resolve)
        #expect(error?.message.contains("secret-token-123") == false)
    }

    @Test func invalidRequestsAreRejected() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let ftp = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "ftp://127.0.0.1/secret-token-123"))
        }
        #expect(ftp?.kind == .invalidRequest)
        #expect(ftp?.message.contains("secret-token-123") == false)

        let method = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(method: "GET /x", url: "http://127.0.0.1/"))
        }
        #expect(method?.kind == .invalidRequest)

        let injected = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "http://127.0.0.1/", headers: [("X-A", "v\r\nX-Injected: 1")]))
        }
        #expect(injected?.kind == .invalidRequest)
        #expect(injected?.message.contains("Injected") == false)
    }

    @Test func responseBodyIsCapped() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/big"))
        #expect(response.status == 200)
        #expect(response.body.count == 65_536)
        #expect(response.body.allSatisfy { $0 == UInt8(ascii: "x") })
        #expect(response.header("content-length") == String(1024 * 1024))

        // The connection stays usable after the discarded remainder.
        let next = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/ok"))
        #expect(next.status == 200)
        #expect(next.header("x-client-port") == response.header("x-client-port"))
    }

    @Test func fiveHundredConcurrentRequests() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        let url = server.baseURL + "/echo"
        let started = ContinuousClock.now
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<500 {
                group.addTask {
                    let body = Array("request \(index)".utf8)
                    let response = try await transport.send(HTTPRequest(url: url, body: body, timeout: .seconds(60)))
                    let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
                    return echo.body == body ? response.status : -1
                }
            }
            var all: [Int] = []
            for try await status in group { all.append(status) }
            return all
        }
        let elapsed = ContinuousClock.now - started
        print("500 concurrent requests took \(elapsed)")
        #expect(statuses.count == 500)
        #expect(statuses.allSatisfy { $0 == 200 })
    }

    /// The server's transport has no connection limit of its own (each channel's concurrency is
    /// the cap): 80 requests to one slow host are all at the peer at once. With libcurl's
    /// per-host limit of 64 the last 16 would wait for a connection, their timeouts running,
    /// until the first ones were answered; with `PIPEWAIT` on plain HTTP, all but the first
    /// waited for the first answer (found by this test) — an attempt could time out without
    /// ever having been sent.
    @Test func withoutALimitOfItsOwnEveryRequestReachesThePeerAtOnce() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport(maxConnectionsPerHost: 0, maxTotalConnections: 0)
        defer { transport.shutdown() }
        let url = server.baseURL + "/hang/at-once?hold=5"
        async let statuses = withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<80 {
                group.addTask { try await transport.send(HTTPRequest(method: "GET", url: url, timeout: .seconds(60))).status }
            }
            var all: [Int] = []
            for try await status in group { all.append(status) }
            return all
        }
        #expect(try await server.waitFor("hang_started", count: 80))
        // All 80 arrived while none had been answered: none waited for another's connection.
        let seen = try await server.counts()
        #expect(seen["hang_answered"] == nil, "\(seen)")
        #expect(try await statuses == Array(repeating: 200, count: 80))
    }

    @Test func keepAliveReusesConnections() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }

        var ports = Set<String>()
        for _ in 0..<200 {
            let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/ok"))
            #expect(response.status == 200)
            ports.insert(response.header("x-client-port") ?? "?")
        }
        print("200 sequential requests used \(ports.count) connection(s)")
        #expect(ports.count <= 5)
    }

    /// A receiver that reads a request and then resets the connection, with no answer: libcurl
    /// would send it again on up to 5 more kept-alive connections (each one more copy of the
    /// message). It gets one resend (the keep-alive race, where the receiver closed the idle
    /// connection before reading, needs that), then the transfer fails as a send error that says so.
    @Test func aRequestIsSentAtMostTwiceWhenReusedConnectionsResetAfterReadingIt() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()
        defer { transport.shutdown() }
        // Eight connections kept alive, each a candidate for libcurl's resend.
        let slow = server.baseURL + "/slow"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var warm = HTTPRequest(method: "POST", url: slow)
                    warm.body = Array("warm".utf8)
                    let status = try await transport.send(warm).status
                    #expect(status == 200)
                }
            }
            try await group.waitForAll()
        }
        var request = HTTPRequest(method: "POST", url: server.baseURL + "/reset", timeout: .seconds(30))
        request.body = Array(#"{"kind":"notice"}"#.utf8)
        let error = await #expect(throws: TransportError.self) { try await transport.send(request) }
        #expect(error?.kind == .send, "\(String(describing: error))")
        #expect(error?.message.contains("not sent a third time") == true, "\(String(describing: error))")
        let seen = try await server.counts()["/reset"] ?? 0
        #expect(seen == 2, "the receiver got the request \(seen) times")

        // A body still goes out whole, and a fresh request after the failure works.
        var echo = HTTPRequest(method: "POST", url: server.baseURL + "/echo")
        echo.body = Array(repeating: UInt8(ascii: "x"), count: 20_000)
        let answer = try await transport.send(echo)
        let echoed = try JSONDecoder().decode(Echo.self, from: Data(answer.body))
        #expect(echoed.body == echo.body)
    }

    /// Shutdown fails a request the peer is holding (not one that never started: the test waits
    /// until the peer has it) and closes its connection, and fails later requests without sending
    /// them. The peer would answer the held request after 30 s; the request's timeout is longer,
    /// so only the shutdown can end it with an error.
    @Test func shutdownFailsInFlightAndLaterRequests() async throws {
        let server = try LoopbackHTTPServer()
        defer { server.stop() }
        let transport = CurlTransport()

        let heldURL = server.baseURL + "/hang?hold=30"
        let held = Task { try await transport.send(HTTPRequest(method: "GET", url: heldURL, timeout: .seconds(120))) }
        let started = try await server.waitFor("hang_started")
        #expect(started, "the request never reached the peer")
        transport.shutdown()
        let inFlight = await #expect(throws: TransportError.self) { try await held.value }
        #expect(inFlight?.kind == .shutdown)
        let closed = try await server.waitFor("hang_closed")
        let seen = try await server.counts()
        #expect(closed, "the peer never saw the connection closed: \(seen)")

        let later = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/ok"))
        }
        #expect(later?.kind == .shutdown)
        transport.shutdown() // idempotent
        // Asked after the later request returned: had it been sent, the peer would have answered
        // it (and counted it) before that.
        let counts = try await server.counts()
        #expect(counts["/ok"] == nil && counts["hang_answered"] == nil, "\(counts)")
    }
}
