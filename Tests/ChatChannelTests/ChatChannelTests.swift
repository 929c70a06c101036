import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport
import Testing
import TestSupport

/// Chat adapters against a real HTTP server on loopback that answers as each provider's published
/// API reference says (cited in each adapter's documentation). Assertions are on the bytes the
/// provider received and on the receipt or error Herald gets back.
@Suite(.serialized) struct ChatChannelTests {
    let transport = CurlTransport()

    func channel(_ type: String, _ values: [String: String]) throws -> any Channel {
        let settings = ChannelSettings(channel: "chat-\(type)", type: type, values: values)
        let made = try ChannelRegistry.factories[type]!(settings, ChannelContext(transport: transport, timeout: .seconds(5)))
        try settings.finish()
        return made
    }

    func message(_ kind: DeliveryKind = .notice, thread: String? = nil) -> OutboundMessage {
        let at = RFC3339.parse("2026-11-25T10:02:00Z")!
        var event = makeEvent("dns", kind == .notice ? .triggered : .resolved, severity: .critical, at: at)
        event.link = "https://status.example.com/dns"
        let incident = Incident(key: "dns", status: kind == .notice ? .open : .resolved, cycle: 1, title: event.title,
                                severity: .critical, openedAt: at, resolvedAt: kind == .notice ? nil : at.addingTimeInterval(2340), updatedAt: at)
        let (title, text) = try! MessageRenderer().render(kind: kind, event: event, incident: incident)
        return OutboundMessage(deliveryId: "dlv_test_\(kind.rawValue)", kind: kind, event: event, incident: incident,
                               title: title, text: text, thread: thread)
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

    // MARK: Slack — https://api.slack.com/methods/chat.postMessage (HTTP 200 with ok/error,
    // 429 + Retry-After), https://api.slack.com/messaging/webhooks (incoming webhooks answer "ok").

    @Test func slackPostsWithTheBotTokenAndThreadsTheAllClear() async throws {
        let sink = TestSink { _, n in .init(body: #"{"ok":true,"channel":"C0123","ts":"1764064920.00010\#(n)"}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let slack = try channel("slack", ["token": "xoxb-slack-secret-1", "channel": "#ops", "api_url": sink.url + "/api"])
        let notice = try await slack.deliver(message())
        #expect(notice.reference == "1764064920.000100")
        let clear = try await slack.deliver(message(.allClear, thread: notice.reference))
        #expect(clear.reference == "1764064920.000101")
        let first = sink.received[0]
        #expect(first.path == "/api/chat.postMessage")
        #expect(first.headers["authorization"] == "Bearer xoxb-slack-secret-1")
        #expect(first.headers["content-type"] == "application/json; charset=utf-8")
        let body = try #require(first.json)
        #expect(body["channel"] as? String == "#ops")
        #expect((body["text"] as? String)?.contains("[CRITICAL] DNS resolution failing") == true)
        #expect(body["thread_ts"] == nil)
        let blocks = try #require(body["blocks"] as? [[String: Any]])
        #expect(blocks.first?["type"] as? String == "header")
        let second = try #require(sink.received[1].json)
        #expect(second["thread_ts"] as? String == "1764064920.000100")
        #expect(second["reply_broadcast"] as? Bool == true)
        #expect((second["text"] as? String)?.contains("[RESOLVED]") == true)
    }

    @Test func slackErrorsAreClassified() async throws {
        let sink = TestSink { r, _ in
            switch r.json?["channel"] as? String {
            case "auth": return .init(body: #"{"ok":false,"error":"invalid_auth"}"#)
            case "gone": return .init(body: #"{"ok":false,"error":"channel_not_found"}"#)
            default: return .init(status: 429, headers: [("Retry-After", "3")], body: "")
            }
        }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let auth = try channel("slack", ["token": "xoxb-slack-secret-2", "channel": "auth", "api_url": sink.url])
        var e = await expectError { try await auth.deliver(message()) }
        #expect(e == .permanent(.auth, status: 200, "Slack error: invalid_auth"))
        let gone = try channel("slack", ["token": "xoxb-slack-secret-2", "channel": "gone", "api_url": sink.url])
        e = await expectError { try await gone.deliver(message()) }
        #expect(e?.isTransient == false && e?.reason == .rejected)
        let limited = try channel("slack", ["token": "xoxb-slack-secret-2", "channel": "busy", "api_url": sink.url])
        e = await expectError { try await limited.deliver(message()) }
        #expect(e?.isTransient == true && e?.reason == .rateLimited && e?.retryAfter == .seconds(3))
    }

    @Test func slackWebhookCannotThread() async throws {
        let sink = TestSink { _, _ in .init(body: "ok") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let slack = try channel("slack", ["webhook_url": sink.url + "/services/T0/B0/secretpath"])
        let r = try await slack.deliver(message())
        #expect(r.reference == nil)
        #expect(sink.received[0].path == "/services/T0/B0/secretpath")
        #expect(sink.received[0].json?["thread_ts"] == nil)
        #expect(!slack.redactedDescription.contains("secretpath"))
    }

    @Test func slackNeedsTokenOrWebhook() throws {
        #expect(throws: ConfigError.self) { try channel("slack", [:]) }
        #expect(throws: ConfigError.self) { try channel("slack", ["token": "x", "webhook_url": "https://hooks.slack.com/x"]) }
        #expect(throws: (any Error).self) { try channel("slack", ["token": "xoxb-1", "channel": "#a", "surprise": "1"]) }
    }

    // MARK: Discord — https://discord.com/developers/docs/resources/webhook#execute-webhook (?wait=true
    // answers the message), …#edit-webhook-message, https://discord.com/developers/docs/topics/rate-limits

    @Test func discordWaitsForTheMessageAndMarksTheNoticeResolved() async throws {
        let sink = TestSink { r, n in .init(body: r.method == "PATCH" ? "{}" : #"{"id":"11110000\#(n)","channel_id":"42"}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let discord = try channel("discord", ["webhook_url": sink.url + "/api/webhooks/42/tok-secret", "username": "Herald"])
        let notice = try await discord.deliver(message())
        #expect(notice.reference == "111100000")
        #expect(sink.received[0].path == "/api/webhooks/42/tok-secret?wait=true")
        let body = try #require(sink.received[0].json)
        #expect((body["allowed_mentions"] as? [String: Any])?["parse"] as? [String] == [])
        let embed = try #require((body["embeds"] as? [[String: Any]])?.first)
        #expect((embed["title"] as? String)?.hasSuffix("[CRITICAL] DNS resolution failing") == true)
        _ = try await discord.deliver(message(.allClear, thread: notice.reference))
        #expect(sink.received.count == 3)
        #expect((sink.received[1].json?["content"] as? String) == "> DNS resolution failing")
        #expect(sink.received[2].method == "PATCH")
        #expect(sink.received[2].path == "/api/webhooks/42/tok-secret/messages/111100000")
    }

    @Test func discordRateLimitCarriesRetryAfter() async throws {
        let sink = TestSink { _, _ in .init(status: 429, body: #"{"message":"You are being rate limited.","retry_after":2.5,"global":false}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let discord = try channel("discord", ["webhook_url": sink.url + "/api/webhooks/1/t"])
        let e = await expectError { try await discord.deliver(message()) }
        #expect(e?.isTransient == true && e?.reason == .rateLimited && e?.retryAfter == .milliseconds(2500))
    }

    // MARK: Telegram — https://core.telegram.org/bots/api#sendmessage, #making-requests (ok/error_code,
    // parameters.retry_after), #replyparameters

    @Test func telegramRepliesToTheNotice() async throws {
        let sink = TestSink { _, n in .init(body: #"{"ok":true,"result":{"message_id":\#(700 + n),"chat":{"id":-100}}}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let telegram = try channel("telegram", ["token": "123456:tg-secret-token", "chat_id": "-1001234", "api_url": sink.url])
        let notice = try await telegram.deliver(message())
        #expect(notice.reference == "700")
        _ = try await telegram.deliver(message(.allClear, thread: notice.reference))
        #expect(sink.received[0].path == "/bot123456:tg-secret-token/sendMessage")
        let first = try #require(sink.received[0].json)
        #expect(first["chat_id"] as? Int == -1001234)
        #expect(first["parse_mode"] as? String == "HTML")
        #expect((first["text"] as? String)?.hasPrefix("<b>🔴 [CRITICAL] DNS resolution failing</b>") == true)
        let reply = try #require(sink.received[1].json?["reply_parameters"] as? [String: Any])
        #expect(reply["message_id"] as? Int == 700)
    }

    @Test func telegramErrorsAreClassifiedWithoutTheToken() async throws {
        let sink = TestSink { r, _ in
            (r.json?["chat_id"] as? Int) == 1
                ? .init(status: 429, body: #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#)
                : .init(status: 400, body: #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)
        }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let busy = try channel("telegram", ["token": "99:tg-secret", "chat_id": "1", "api_url": sink.url])
        var e = await expectError { try await busy.deliver(message()) }
        #expect(e?.reason == .rateLimited && e?.retryAfter == .seconds(7))
        let lost = try channel("telegram", ["token": "99:tg-secret", "chat_id": "2", "api_url": sink.url])
        e = await expectError { try await lost.deliver(message()) }
        #expect(e == .permanent(.rejected, status: 400, "Telegram 400: Bad Request: chat not found"))
        // Unreachable: the transport's error must not quote the URL, whose path holds the token.
        let down = try channel("telegram", ["token": "99:tg-secret", "chat_id": "2", "api_url": "http://127.0.0.1:\(closedPort())"])
        e = await expectError { try await down.deliver(message()) }
        #expect(e?.isTransient == true && e?.detail.contains("tg-secret") == false)
    }

    // MARK: Mattermost — https://api.mattermost.com/#tag/posts/operation/CreatePost (201 with the post),
    // https://developers.mattermost.com/integrate/webhooks/incoming/

    @Test func mattermostAPIRepliesWithRootID() async throws {
        let sink = TestSink { _, n in .init(status: 201, body: #"{"id":"post\#(n)","channel_id":"ch1"}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let mm = try channel("mattermost", ["url": sink.url, "token": "mm-secret-token", "channel_id": "ch1"])
        let notice = try await mm.deliver(message())
        #expect(notice.reference == "post0")
        _ = try await mm.deliver(message(.allClear, thread: "post0"))
        #expect(sink.received[0].path == "/api/v4/posts")
        #expect(sink.received[0].headers["authorization"] == "Bearer mm-secret-token")
        #expect(sink.received[0].json?["channel_id"] as? String == "ch1")
        #expect(sink.received[0].json?["root_id"] == nil)
        #expect(sink.received[1].json?["root_id"] as? String == "post0")
    }

    @Test func mattermostWebhook() async throws {
        let sink = TestSink { _, _ in .init(body: "ok") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let mm = try channel("mattermost", ["webhook_url": sink.url + "/hooks/xyz-secret", "username": "herald"])
        #expect(try await mm.deliver(message()).reference == nil)
        #expect((sink.received[0].json?["text"] as? String)?.hasPrefix("#### 🔴 [CRITICAL]") == true)
        #expect(sink.received[0].json?["username"] as? String == "herald")
    }

    // MARK: Teams — https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
    // (a message with one Adaptive Card attachment; Workflows answer 202)

    @Test func teamsSendsAnAdaptiveCard() async throws {
        let sink = TestSink { _, _ in .init(status: 202, body: "") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let teams = try channel("teams", ["webhook_url": sink.url + "/workflows/abc/secret-sig"])
        #expect(try await teams.deliver(message(.allClear)).reference == nil)
        let body = try #require(sink.received[0].json)
        #expect(body["type"] as? String == "message")
        let attachment = try #require((body["attachments"] as? [[String: Any]])?.first)
        #expect(attachment["contentType"] as? String == "application/vnd.microsoft.card.adaptive")
        let card = try #require(attachment["content"] as? [String: Any])
        #expect(card["type"] as? String == "AdaptiveCard")
        let blocks = try #require(card["body"] as? [[String: Any]])
        #expect((blocks[0]["text"] as? String)?.contains("[RESOLVED] DNS resolution failing") == true)
        #expect(blocks[0]["color"] as? String == "Good")
        #expect((card["actions"] as? [[String: Any]])?.first?["url"] as? String == "https://status.example.com/dns")
    }
}

/// Each provider's rate-limit answer, as its reference describes it, becomes a transient error
/// with the provider's wait.
@Suite(.serialized) struct ProviderRateLimitTests {
    let transport = CurlTransport()

    func deliver(_ type: String, _ values: [String: String]) async -> DeliveryError? {
        let settings = ChannelSettings(channel: "rl-\(type)", type: type, values: values)
        let at = Date()
        let event = makeEvent("rl", at: at)
        let incident = Incident(key: "rl", status: .open, cycle: 1, title: event.title, severity: .critical, openedAt: at, resolvedAt: nil, updatedAt: at)
        let message = OutboundMessage(deliveryId: "dlv_rl", kind: .notice, event: event, incident: incident, title: "t", text: "x")
        do {
            let channel = try ChannelRegistry.factories[type]!(settings, ChannelContext(transport: transport, timeout: .seconds(5)))
            _ = try await channel.deliver(message)
            return nil
        } catch {
            return error as? DeliveryError
        }
    }

    /// Mattermost: https://api.mattermost.com/#section/Rate-limiting — 429 with X-Ratelimit-Reset
    /// and Retry-After.
    @Test func mattermost() async throws {
        let sink = TestSink { _, _ in .init(status: 429, headers: [("Retry-After", "4"), ("X-Ratelimit-Reset", "4")],
                                            body: #"{"id":"api.context.rate_limit.app_error","status_code":429}"#) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let e = await deliver("mattermost", ["url": sink.url, "token": "mm-token", "channel_id": "c1"])
        #expect(e?.isTransient == true && e?.reason == .rateLimited && e?.retryAfter == .seconds(4))
    }

    /// Teams: https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors
    /// — throttled requests answer 429.
    @Test func teams() async throws {
        let sink = TestSink { _, _ in .init(status: 429, headers: [("Retry-After", "2")], body: "Microsoft Teams endpoint returned HTTP error 429") }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let e = await deliver("teams", ["webhook_url": sink.url + "/workflows/x"])
        #expect(e?.isTransient == true && e?.reason == .rateLimited && e?.retryAfter == .seconds(2))
    }

    /// Bluesky: https://docs.bsky.app/docs/advanced-guides/rate-limits — 429 with
    /// `{"error":"RateLimitExceeded"}` and a `RateLimit-Reset` header (epoch seconds).
    @Test func bluesky() async throws {
        let reset = Int(Date().timeIntervalSince1970) + 30
        let sink = TestSink { r, _ in
            r.path.hasSuffix("createSession")
                ? .init(body: #"{"accessJwt":"a","refreshJwt":"r","did":"did:plc:x"}"#)
                : .init(status: 429, headers: [("RateLimit-Reset", "\(reset)"), ("RateLimit-Remaining", "0")],
                        body: #"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#)
        }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let e = await deliver("bluesky", ["identifier": "h.test", "app_password": "p-1234", "service": sink.url])
        #expect(e?.isTransient == true && e?.reason == .rateLimited)
        let wait = try #require(e?.retryAfter)
        #expect(wait > .seconds(20) && wait <= .seconds(31))
    }
}
