import Foundation
@testable import HeraldChannels
import HeraldCore
import HeraldTransport
import Testing

/// The Matrix channel against a real Synapse on loopback (see `SynapsePeer`). Every assertion
/// reads the room back through the client-server API, as a member's client would show it.
@Suite(.serialized, .synapse) struct MatrixChannelTests {
    let transport = CurlTransport()

    func peer() throws -> SynapsePeer {
        try #require(SynapsePeer.current, "the .synapse trait starts the homeserver")
    }

    func channel(_ peer: SynapsePeer, token: String, room: String, notice: Bool? = nil) throws -> any Channel {
        var values = ["homeserver": peer.baseURL + "/", "access_token": token, "room": room]
        if let notice { values["notice"] = notice ? "true" : "false" }
        let settings = ChannelSettings(channel: "ops-matrix", type: "matrix", values: values)
        let factory = try #require(ChannelRegistry.factories["matrix"])
        let made = try factory(settings, ChannelContext(transport: transport, timeout: .seconds(20)))
        try settings.finish()
        return made
    }

    func expectError(_ body: () async throws -> Receipt) async -> DeliveryError? {
        do {
            _ = try await body()
            Issue.record("expected a delivery error")
            return nil
        } catch let error as DeliveryError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func noticeArrivesWithPlainAndHTMLBodiesAndTheReceiptIsItsEventID() async throws {
        let peer = try peer()
        let ops = try await peer.register("ops-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(ops)
        let message = matrixMessage(.notice)
        let receipt = try await channel(peer, token: ops.token, room: room).deliver(message)

        let seen = try await peer.messages(room, as: ops)
        #expect(seen.count == 1)
        let event = try #require(seen.first)
        #expect(receipt.reference == event["event_id"] as? String)
        #expect(receipt.status == 200)
        #expect(event["sender"] as? String == ops.id)
        let content = try #require(event["content"] as? [String: Any])
        #expect(content["msgtype"] as? String == "m.text")
        #expect(content["body"] as? String == "\(message.title)\n\n\(message.text)")
        #expect(message.title == #"[CRITICAL] DNS <resolvers> & "caches" failing"#)
        #expect(content["format"] as? String == "org.matrix.custom.html")
        let html = try #require(content["formatted_body"] as? String)
        #expect(html.hasPrefix("<strong>[CRITICAL] DNS &lt;resolvers&gt; &amp; &quot;caches&quot; failing</strong><br><br>"))
        #expect(html.contains(#"<a href="https://status.example.com/dns?a=1&amp;b=2">https://status.example.com/dns?a=1&amp;b=2</a>"#))
        #expect(html.contains("<br>"))
        #expect(!html.contains("\n"))
        #expect(content["m.relates_to"] == nil)

        // The same event, fetched by the id in the receipt.
        let byID = try await peer.event(try #require(receipt.reference), in: room, as: ops)
        #expect((byID["content"] as? [String: Any])?["body"] as? String == content["body"] as? String)
    }

    @Test func allClearGoesIntoTheNoticesThreadAsAMatrixNotice() async throws {
        let peer = try peer()
        let ops = try await peer.register("bot-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(ops)
        let matrix = try channel(peer, token: ops.token, room: room, notice: true)
        let notice = try await matrix.deliver(matrixMessage(.notice))
        let root = try #require(notice.reference)
        let clear = try await matrix.deliver(matrixMessage(.allClear, thread: root))

        let event = try await peer.event(try #require(clear.reference), in: room, as: ops)
        let content = try #require(event["content"] as? [String: Any])
        #expect(content["msgtype"] as? String == "m.notice")
        #expect((content["body"] as? String)?.hasPrefix("[RESOLVED]") == true)
        let relation = try #require(content["m.relates_to"] as? [String: Any])
        #expect(relation["rel_type"] as? String == "m.thread")
        #expect(relation["event_id"] as? String == root)
        #expect(relation["is_falling_back"] as? Bool == true)
        #expect((relation["m.in_reply_to"] as? [String: Any])?["event_id"] as? String == root)

        // The homeserver itself lists it as the thread's reply.
        let replies = try await peer.thread(root, in: room, as: ops)
        #expect(replies.compactMap { $0["event_id"] as? String } == [clear.reference])
    }

    @Test func aRetryWithTheSameDeliveryIDPostsOnce() async throws {
        let peer = try peer()
        let ops = try await peer.register("retry-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(ops)
        let matrix = try channel(peer, token: ops.token, room: room)
        let message = matrixMessage(.notice)
        let first = try await matrix.deliver(message)
        let second = try await matrix.deliver(message)
        #expect(first.reference != nil)
        #expect(first.reference == second.reference)
        let seen = try await peer.messages(room, as: ops)
        #expect(seen.compactMap { $0["event_id"] as? String } == [first.reference])

        // A different delivery of the same text is a new message.
        var other = message
        other.deliveryId = Identifier.make(prefix: "dlv")
        let third = try await matrix.deliver(other)
        #expect(third.reference != first.reference)
        #expect(try await peer.messages(room, as: ops).count == 2)
    }

    @Test func roomIDsWithAServerPartAreEncodedIntoThePath() async throws {
        // Room versions up to 11 have `!opaque:server` ids; the `:` must not split the path.
        let peer = try peer()
        let ops = try await peer.register("v11-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(ops, version: "11")
        #expect(room.hasPrefix("!") && room.hasSuffix(":\(peer.serverName)"))
        let receipt = try await channel(peer, token: ops.token, room: room).deliver(matrixMessage(.notice))
        #expect(try await peer.messages(room, as: ops).compactMap { $0["event_id"] as? String } == [receipt.reference])
    }

    @Test func aWrongTokenIsAPermanentAuthErrorThatDoesNotQuoteIt() async throws {
        let peer = try peer()
        let ops = try await peer.register("owner-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(ops)
        let wrong = "syt_herald_wrong_token_\(SynapsePeer.randomToken())"
        let matrix = try channel(peer, token: wrong, room: room)
        let error = try #require(await expectError { try await matrix.deliver(matrixMessage(.notice)) })
        #expect(!error.isTransient)
        #expect(error.reason == .auth)
        #expect(error.status == 401)
        #expect(error.detail.contains("M_UNKNOWN_TOKEN"))
        #expect(!error.description.contains(wrong))
        #expect(!matrix.redactedDescription.contains(wrong))
        #expect(matrix.redactedDescription == "matrix \(peer.baseURL) room \(room)")
        #expect(try await peer.messages(room, as: ops).isEmpty)
    }

    @Test func aRoomTheUserIsNotInIsAPermanentError() async throws {
        let peer = try peer()
        let owner = try await peer.register("own-\(SynapsePeer.randomToken().prefix(6))")
        let outsider = try await peer.register("out-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(owner)
        let matrix = try channel(peer, token: outsider.token, room: room)
        let error = try #require(await expectError { try await matrix.deliver(matrixMessage(.notice)) })
        #expect(!error.isTransient)
        #expect(error.status == 403)
        #expect(error.detail.contains("M_FORBIDDEN"))
        #expect(!error.description.contains(outsider.token))
        #expect(try await peer.messages(room, as: owner).isEmpty)

        let nowhere = try channel(peer, token: outsider.token, room: "!nosuchroom:\(peer.serverName)")
        let missing = try #require(await expectError { try await nowhere.deliver(matrixMessage(.notice)) })
        #expect(!missing.isTransient)
    }

    @Test func aRateLimitIsTransientWithTheHomeserversWait() async throws {
        let peer = try peer()
        let admin = try await peer.register("admin-\(SynapsePeer.randomToken().prefix(6))", admin: true)
        let ops = try await peer.register("slow-\(SynapsePeer.randomToken().prefix(6))")
        let room = try await peer.createRoom(ops)
        try await peer.throttle(ops, perSecond: 1, burst: 1, admin: admin)
        let matrix = try channel(peer, token: ops.token, room: room)
        var limited: DeliveryError?
        for _ in 0..<10 where limited == nil {
            do {
                _ = try await matrix.deliver(matrixMessage(.notice))
            } catch let error as DeliveryError {
                limited = error
            }
        }
        let error = try #require(limited, "ten quick messages at 1/s with a burst of 1 are throttled")
        #expect(error.isTransient)
        #expect(error.reason == .rateLimited)
        #expect(error.status == 429)
        #expect(error.detail.contains("M_LIMIT_EXCEEDED"))
        let wait = try #require(error.retryAfter)
        #expect(wait > .zero && wait <= .seconds(2))
    }
}

/// What the factory accepts and how errors name the key, one row per case.
@Suite struct MatrixConfigTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var label: String
        var values: [String: String]
        /// nil: accepted.
        var key: String?
        var says: String = ""
        var testDescription: String { label }
    }

    static let good = ["homeserver": "https://matrix.example.org", "access_token": "syt_config_secret_token", "room": "!abc:example.org"]

    static let rows: [Row] = [
        Row(label: "complete", values: good, key: nil),
        Row(label: "room v12 id", values: good.merging(["room": "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"]) { $1 }, key: nil),
        Row(label: "notice", values: good.merging(["notice": "true", "verify_tls": "false"]) { $1 }, key: nil),
        Row(label: "no room", values: good.filter { $0.key != "room" }, key: "room", says: "missing required key"),
        Row(label: "alias", values: good.merging(["room": "#ops:example.org"]) { $1 }, key: "room", says: "room alias"),
        Row(label: "not an id", values: good.merging(["room": "ops"]) { $1 }, key: "room", says: "starting with \"!\""),
        Row(label: "ftp homeserver", values: good.merging(["homeserver": "ftp://matrix.example.org"]) { $1 }, key: "homeserver",
            says: "scheme http or https"),
        Row(label: "no homeserver", values: good.filter { $0.key != "homeserver" }, key: "homeserver", says: "missing"),
        Row(label: "no token", values: good.filter { $0.key != "access_token" }, key: "access_token", says: "access_token_file"),
        Row(label: "notice not a bool", values: good.merging(["notice": "loud"]) { $1 }, key: "notice", says: "true or false"),
        Row(label: "unknown key", values: good.merging(["user": "@bot:example.org"]) { $1 }, key: "user", says: "unknown key"),
    ]

    @Test(arguments: rows) func factory(_ row: Row) throws {
        let settings = ChannelSettings(channel: "m", type: "matrix", values: row.values)
        let context = ChannelContext(transport: CurlTransport())
        do {
            let channel = try MatrixChannel.make(settings, context)
            try settings.finish()
            #expect(row.key == nil, "accepted, but expected an error about \(row.key ?? "")")
            #expect(channel.type == "matrix")
            #expect(!channel.redactedDescription.contains("syt_config_secret_token"))
        } catch let error as ConfigError {
            #expect(error.keyPath == "channels.m.\(row.key ?? "-")", "\(error)")
            #expect(error.message.contains(row.says), "\(error)")
            #expect(!error.description.contains("syt_config_secret_token"))
        } catch let errors as ConfigErrors {
            #expect(errors.errors.map(\.keyPath) == ["channels.m.\(row.key ?? "-")"], "\(errors)")
            #expect(errors.description.contains(row.says), "\(errors)")
        }
    }

    @Test func descriptionShowsHostAndRoomButNotTheTokenOrPath() throws {
        let settings = ChannelSettings(channel: "m", type: "matrix", values: [
            "homeserver": "https://chat.example.org/matrix-proxy/", "access_token": "syt_config_secret_token", "room": "!abc:example.org",
        ])
        let channel = try MatrixChannel.make(settings, ChannelContext(transport: CurlTransport()))
        #expect(channel.redactedDescription == "matrix https://chat.example.org/**** room !abc:example.org")
        #expect(settings.secretValues == ["syt_config_secret_token"])
    }

    @Test func tokenFromAFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("matrix-token-\(UUID().uuidString)")
        try "syt_from_file_token\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let settings = ChannelSettings(channel: "m", type: "matrix", values: [
            "homeserver": "http://127.0.0.1:8008", "access_token_file": file.path, "room": "!abc:example.org",
        ])
        let channel = try #require(try MatrixChannel.make(settings, ChannelContext(transport: CurlTransport())) as? MatrixChannel)
        #expect(channel.token.value == "syt_from_file_token")
    }

    /// Answers the homeserver can give that a test server cannot easily be made to give.
    @Test func errorAnswersAreClassified() {
        func answer(_ status: Int, _ json: String, headers: [(name: String, value: String)] = []) -> DeliveryError? {
            let body = Array(json.utf8)
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            return MatrixChannel.refine(HTTPResponse(status: status, headers: headers, body: body), object)
        }
        let limited = #"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":2500}"#
        #expect(answer(429, limited)?.retryAfter == .milliseconds(2500))
        #expect(answer(429, limited)?.reason == .rateLimited)
        #expect(answer(429, limited, headers: [("Retry-After", "7")])?.retryAfter == .seconds(7))
        #expect(answer(429, "")?.isTransient == true)
        let forbidden = answer(403, #"{"errcode":"M_FORBIDDEN","error":"User not in room"}"#)
        #expect(forbidden?.reason == .auth)
        #expect(forbidden?.isTransient == false)
        #expect(forbidden?.detail == "HTTP 403 Matrix M_FORBIDDEN: User not in room")
        #expect(answer(502, "<html>bad gateway</html>")?.reason == .serverError)
        #expect(answer(502, "<html>bad gateway</html>")?.detail == "HTTP 502: <html>bad gateway</html>")
        #expect(answer(400, #"{"errcode":"M_TOO_LARGE","error":"event too large"}"#)?.reason == .clientError)
        #expect(answer(200, #"{"event_id":"$x"}"#) == nil)
    }
}

/// A notice or all-clear rendered by the default templates, with markup-significant characters
/// in the title and a link with a query, so escaping shows.
func matrixMessage(_ kind: DeliveryKind, thread: String? = nil) -> OutboundMessage {
    let at = RFC3339.parse("2026-11-25T10:02:00Z")!
    let event = Event(id: Identifier.make(prefix: "evt", at: at), incident: "dns", status: kind == .notice ? .triggered : .resolved,
                      severity: .critical, title: #"DNS <resolvers> & "caches" failing"#, message: "resolvers time out\nsince 10:02",
                      components: ["web"], link: "https://status.example.com/dns?a=1&b=2", occurredAt: at, receivedAt: at)
    let incident = Incident(key: "dns", status: kind == .notice ? .open : .resolved, cycle: 1, title: event.title,
                            severity: .critical, openedAt: at, resolvedAt: kind == .notice ? nil : at.addingTimeInterval(2340), updatedAt: at)
    let (title, text) = try! MessageRenderer().render(kind: kind, event: event, incident: incident)
    let html = try! MessageRenderer().render(kind: kind, event: event, incident: incident, markup: .html)
    return OutboundMessage(deliveryId: Identifier.make(prefix: "dlv"), kind: kind, event: event, incident: incident,
                           title: title, text: text, thread: thread, formattedTitle: html.title, formattedText: html.text)
}
