import Foundation
import Synchronization
import Testing
import TestSupport
import HeraldTransport
@testable import HeraldChannels
@testable import HeraldCore

/// Bluesky and X adapters against loopback doubles that answer as the providers' references
/// describe (XRPC: https://docs.bsky.app/docs/advanced-guides/posts, X: https://docs.x.com).
@Suite(.serialized) struct MicroblogChannelTests {
    let transport = CurlTransport()

    func message(_ kind: DeliveryKind, id: String, title: String = "DNS resolution failing", thread: String? = nil) -> OutboundMessage {
        let at = RFC3339.parse("2026-11-25T10:02:00Z")!
        var event = makeEvent("dns", kind == .notice ? .triggered : .resolved, title: title, at: at)
        event.message = String(repeating: "Resolvers in eu-west time out — Störung. ", count: 20)
        event.link = "https://status.example.com/incidents/dns"
        let incident = Incident(key: "dns", status: kind == .notice ? .open : .resolved, cycle: 1, title: title, severity: .critical,
                                openedAt: at, resolvedAt: kind == .notice ? nil : at.addingTimeInterval(2340), updatedAt: at)
        let (t, text) = try! MessageRenderer().render(kind: kind, event: event, incident: incident)
        return OutboundMessage(deliveryId: id, kind: kind, event: event, incident: incident, title: t, text: text, thread: thread)
    }

    // MARK: Bluesky

    final class PDS: Sendable {
        struct State {
            var sessions = 0
            var refreshes = 0
            var expireNext = false
            var records: [String: String] = [:]
        }
        let state = Mutex(State())

        func answer(_ r: TestSink.Received, _: Int) -> TestSink.Reply {
            let auth = r.headers["authorization"] ?? ""
            switch r.path.split(separator: "?").first.map(String.init) ?? "" {
            case "/xrpc/com.atproto.server.createSession":
                guard r.json?["password"] as? String == "app-pass-1234" else {
                    return .init(status: 401, body: #"{"error":"AuthenticationRequired","message":"Invalid identifier or password"}"#)
                }
                let n = state.withLock { $0.sessions += 1; return $0.sessions }
                return .init(body: #"{"accessJwt":"acc-\#(n)","refreshJwt":"ref-\#(n)","did":"did:plc:herald","handle":"herald.test"}"#)
            case "/xrpc/com.atproto.server.refreshSession":
                let n = state.withLock { $0.refreshes += 1; return $0.refreshes }
                return .init(body: #"{"accessJwt":"acc-r\#(n)","refreshJwt":"ref-r\#(n)","did":"did:plc:herald","handle":"herald.test"}"#)
            case "/xrpc/com.atproto.repo.createRecord":
                let expire = state.withLock { s -> Bool in defer { s.expireNext = false }; return s.expireNext }
                if expire || !auth.hasPrefix("Bearer acc-") {
                    return .init(status: 400, body: #"{"error":"ExpiredToken","message":"Token has expired"}"#)
                }
                let rkey = r.json?["rkey"] as? String ?? "none"
                let exists = state.withLock { s -> Bool in
                    if s.records[rkey] != nil { return true }
                    s.records[rkey] = "bafy-\(rkey)"
                    return false
                }
                if exists { return .init(status: 400, body: #"{"error":"InvalidRequest","message":"Record already exists"}"#) }
                return .init(body: #"{"uri":"at://did:plc:herald/app.bsky.feed.post/\#(rkey)","cid":"bafy-\#(rkey)"}"#)
            case "/xrpc/com.atproto.repo.getRecord":
                let rkey = r.path.components(separatedBy: "rkey=").last ?? ""
                return .init(body: #"{"uri":"at://did:plc:herald/app.bsky.feed.post/\#(rkey)","cid":"bafy-\#(rkey)","value":{}}"#)
            default:
                return .init(status: 404, body: #"{"error":"MethodNotImplemented"}"#)
            }
        }
    }

    func bluesky(_ url: String, password: String = "app-pass-1234") throws -> any Channel {
        let settings = ChannelSettings(channel: "sky", type: "bluesky", values: ["identifier": "herald.test", "app_password": password, "service": url])
        let c = try BlueskyChannel.make(settings, ChannelContext(transport: transport, timeout: .seconds(5)))
        try settings.finish()
        return c
    }

    @Test func blueskyPostsWithALinkFacetAndRepliesToTheNotice() async throws {
        let pds = PDS()
        let sink = TestSink { pds.answer($0, $1) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let sky = try bluesky(sink.url)
        let notice = try await sky.deliver(message(.notice, id: "dlv_sky_1"))
        let ref = try #require(notice.reference)
        #expect(ref.hasPrefix("at://did:plc:herald/app.bsky.feed.post/"))
        _ = try await sky.deliver(message(.allClear, id: "dlv_sky_2", thread: ref))
        #expect(pds.state.withLock { $0.sessions } == 1, "one session serves both posts")
        let posts = sink.received.filter { $0.path.hasSuffix("createRecord") }
        let first = try #require(posts.first?.json?["record"] as? [String: Any])
        let text = try #require(first["text"] as? String)
        #expect(text.count <= 300)
        #expect(text.hasSuffix("https://status.example.com/incidents/dns"))
        let facet = try #require((first["facets"] as? [[String: Any]])?.first)
        let index = try #require(facet["index"] as? [String: Int])
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[index["byteStart"]!..<index["byteEnd"]!], as: UTF8.self) == "https://status.example.com/incidents/dns")
        let reply = try #require((posts[1].json?["record"] as? [String: Any])?["reply"] as? [String: [String: String]])
        let parts = ref.split(separator: " ").map(String.init)
        #expect(reply["root"] == ["uri": parts[0], "cid": parts[1]])
        #expect(reply["parent"] == reply["root"])
    }

    @Test func blueskyRefreshesAnExpiredSessionAndNeverPostsTwice() async throws {
        let pds = PDS()
        let sink = TestSink { pds.answer($0, $1) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let sky = try bluesky(sink.url)
        let first = try await sky.deliver(message(.notice, id: "dlv_sky_a"))
        pds.state.withLock { $0.expireNext = true }
        _ = try await sky.deliver(message(.notice, id: "dlv_sky_b"))
        #expect(pds.state.withLock { $0.refreshes } == 1)
        // The same delivery again (an answer lost after the write): the record is found, not duplicated.
        let again = try await sky.deliver(message(.notice, id: "dlv_sky_a"))
        #expect(again.reference == first.reference)
        #expect(pds.state.withLock { $0.records.count } == 2)
    }

    @Test func blueskyWrongPasswordIsPermanentAndSecretFree() async throws {
        let pds = PDS()
        let sink = TestSink { pds.answer($0, $1) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let sky = try bluesky(sink.url, password: "wrong-app-pass")
        do {
            _ = try await sky.deliver(message(.notice, id: "dlv_sky_x"))
            Issue.record("expected an error")
        } catch let e as DeliveryError {
            #expect(!e.isTransient && e.reason == .auth)
            #expect(!e.detail.contains("wrong-app-pass"))
        }
    }

    // MARK: X

    /// The worked example of X's "Creating a signature" page.
    @Test func oauthSignatureMatchesThePublishedExample() {
        let o = OAuth1(consumerKey: "xvz1evFS4wEEPTGEFPHBog", consumerSecret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                       token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", tokenSecret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE")
        let oauth = [
            "oauth_consumer_key": "xvz1evFS4wEEPTGEFPHBog", "oauth_nonce": "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": "1318622958",
            "oauth_token": "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "oauth_version": "1.0",
        ]
        let sig = o.signature(method: "POST", url: "https://api.twitter.com/1.1/statuses/update.json", oauth: oauth,
                              parameters: ["status": "Hello Ladies + Gentlemen, a signed OAuth request!", "include_entities": "true"])
        #expect(sig == "hCtSmYh+iHYCEqBWrE7C7hYmtUk=")
    }

    func x(_ url: String) throws -> any Channel {
        let settings = ChannelSettings(channel: "x", type: "x", values: [
            "consumer_key": "ck-1", "consumer_secret": "cs-secret-1", "access_token": "at-1", "access_token_secret": "ats-secret-1", "api_url": url,
        ])
        let c = try XChannel.make(settings, ChannelContext(transport: transport, timeout: .seconds(5)))
        try settings.finish()
        return c
    }

    @Test func xPostsSignedAndRepliesWithinTheWeightedLimit() async throws {
        let sink = TestSink { _, n in .init(status: 201, body: #"{"data":{"id":"18000000000000000\#(n)","text":"…"}}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let channel = try x(sink.url)
        let notice = try await channel.deliver(message(.notice, id: "dlv_x_1", title: "東京リージョンで DNS 障害"))
        #expect(notice.reference == "180000000000000000")
        _ = try await channel.deliver(message(.allClear, id: "dlv_x_2", thread: notice.reference))
        let first = sink.received[0]
        #expect(first.path == "/2/tweets")
        let auth = try #require(first.headers["authorization"])
        #expect(auth.hasPrefix("OAuth "))
        // Recompute the signature from the header's own nonce and timestamp.
        var fields: [String: String] = [:]
        for part in auth.dropFirst(6).components(separatedBy: ", ") {
            let kv = part.split(separator: "=", maxSplits: 1)
            fields[String(kv[0])] = String(kv[1].dropFirst().dropLast()).removingPercentEncoding
        }
        let oauth = fields.filter { $0.key != "oauth_signature" }
        let expected = OAuth1(consumerKey: "ck-1", consumerSecret: "cs-secret-1", token: "at-1", tokenSecret: "ats-secret-1")
            .signature(method: "POST", url: sink.url + "/2/tweets", oauth: oauth, parameters: [:])
        #expect(fields["oauth_signature"] == expected)
        #expect(!auth.contains("cs-secret-1") && !auth.contains("ats-secret-1"))
        let text = try #require(first.json?["text"] as? String)
        #expect(XChannel.weightedLength(text, link: "https://status.example.com/incidents/dns") <= 280)
        #expect(text.hasSuffix("https://status.example.com/incidents/dns"))
        #expect((sink.received[1].json?["reply"] as? [String: String])?["in_reply_to_tweet_id"] == "180000000000000000")
    }

    @Test func xRateLimitWaitsForTheReset() async throws {
        let reset = Int(Date().timeIntervalSince1970) + 60
        let sink = TestSink { _, _ in .init(status: 429, headers: [("x-rate-limit-reset", "\(reset)")], body: #"{"title":"Too Many Requests"}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        do {
            _ = try await x(sink.url).deliver(message(.notice, id: "dlv_x_rl"))
            Issue.record("expected an error")
        } catch let e as DeliveryError {
            #expect(e.isTransient && e.reason == .rateLimited)
            let wait = try #require(e.retryAfter)
            #expect(wait > .seconds(50) && wait <= .seconds(61))
        }
    }
}
