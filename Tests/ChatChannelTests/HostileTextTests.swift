import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport
import Testing
import TestSupport

/// Event text is text on every chat and microblog channel: a title, message and link written to
/// page a room, form a link or change the message's look arrive inert in what each provider's
/// double receives. What an operator writes on purpose (a channel's `mention`, a template's own
/// words) still works.
@Suite(.serialized) struct HostileTextTests {
    let transport = CurlTransport()

    static let hostileTitle = "@all <!channel> <@U0123> [click](https://evil.example/x) **bold** <b>x</b> @here"
    static let hostileMessage = "@channel ping <script>alert(1)</script> [login](https://evil.example/) <!here|here> @everyone @elon"
    static let hostileLink = "https://status.example.com/dns?q=a|b&u=@all"

    func channel(_ type: String, _ values: [String: String]) throws -> any Channel {
        let settings = ChannelSettings(channel: "hostile-\(type)", type: type, values: values)
        let made = try ChannelRegistry.factories[type]!(settings, ChannelContext(transport: transport, timeout: .seconds(5)))
        try settings.finish()
        return made
    }

    /// The message as the dispatcher builds it for `channel`: plain words, and words rendered for
    /// its markup.
    func message(for channel: any Channel, templates: MessageRenderer.Templates = .defaults) throws -> OutboundMessage {
        let at = RFC3339.parse("2026-11-25T10:02:00Z")!
        let event = Event(id: "evt_hostile", incident: "dns <!channel>", status: .triggered, severity: .critical, title: Self.hostileTitle,
                          message: Self.hostileMessage, components: ["web @all"], link: Self.hostileLink, occurredAt: at, receivedAt: at)
        let incident = Incident(key: event.incident, status: .open, cycle: 1, title: event.title, severity: .critical, openedAt: at,
                                resolvedAt: nil, updatedAt: at)
        let renderer = try MessageRenderer(templates: templates)
        let plain = renderer.render(kind: .notice, event: event, incident: incident)
        let formatted = renderer.render(kind: .notice, event: event, incident: incident, markup: channel.markup)
        return OutboundMessage(deliveryId: "dlv_hostile", kind: .notice, event: event, incident: incident, title: plain.title,
                               text: plain.text, formattedTitle: formatted.title, formattedText: formatted.text)
    }

    /// Posts one hostile notice through `channel` to a double answering `reply`, and answers the
    /// JSON bodies the double received.
    func deliver(_ type: String, _ values: (String) -> [String: String], reply: String,
                 templates: MessageRenderer.Templates = .defaults) async throws -> [[String: Any]] {
        let sink = TestSink { _, _ in .init(body: reply) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let c = try channel(type, values(sink.url))
        _ = try await c.deliver(try message(for: c, templates: templates))
        return sink.received.compactMap(\.json)
    }

    /// A mention that would notify: `@` followed directly by a name.
    static func liveAtMention(_ s: String) -> Bool {
        s.range(of: #"@(all|here|channel|everyone|elon|U0123)"#, options: .regularExpression) != nil
    }

    /// A Markdown link or image an event could have formed: `](` not escaped.
    static func liveMarkdownLink(_ s: String) -> Bool {
        s.range(of: #"(?<!\\)\]\("#, options: .regularExpression) != nil
    }

    @Test func slack() async throws {
        let bodies = try await deliver("slack", { ["token": "xoxb-hostile-1", "channel": "#ops", "api_url": $0] },
                                       reply: #"{"ok":true,"ts":"1.1"}"#)
        let body = try #require(bodies.first)
        let blocks = try #require(body["blocks"] as? [[String: Any]])
        let section = try #require((blocks[1]["text"] as? [String: Any])?["text"] as? String)
        for text in [try #require(body["text"] as? String), section] {
            // Nothing from the event forms Slack markup: no <!channel>, <@U…>, <url|label>.
            #expect(!text.contains("<"), "\(text)")
            #expect(text.contains("&lt;!channel&gt;") && text.contains("&lt;@U0123&gt;"))
        }
        // The header is plain_text, where Slack reads no markup: the words as they came.
        #expect((blocks[0]["text"] as? [String: Any])?["text"] as? String == "🔴 [CRITICAL] \(Self.hostileTitle)".truncated(to: 150))
        // The link is Slack's own syntax around the checked URL, which cannot close it early.
        let context = try #require(((blocks[2]["elements"] as? [[String: Any]])?.first)?["text"] as? String)
        #expect(context == "<https://status.example.com/dns?q=a%7Cb&amp;u=@all|More information>")
    }

    @Test func slackKeepsTheOperatorsMentionsFromConfigAndTemplates() async throws {
        var templates = MessageRenderer.Templates()
        templates.noticeText = "<!here> {{title}}"
        let bodies = try await deliver("slack", { ["token": "xoxb-hostile-1", "channel": "#ops", "api_url": $0, "mention": "<!subteam^S0123|oncall>"] },
                                       reply: #"{"ok":true,"ts":"1.1"}"#, templates: templates)
        let text = try #require(bodies.first?["text"] as? String)
        #expect(text.hasPrefix("<!subteam^S0123|oncall> "), "\(text)")
        #expect(text.contains("<!here> @all &lt;!channel&gt;"), "\(text)")
    }

    @Test func mattermost() async throws {
        for values in [{ (url: String) in ["url": url, "token": "mm-hostile-1", "channel_id": "c1"] },
                       { (url: String) in ["webhook_url": url + "/hooks/x"] }] {
            let bodies = try await deliver("mattermost", values, reply: #"{"id":"p1"}"#)
            let body = try #require(bodies.first)
            let text = try #require((body["message"] ?? body["text"]) as? String)
            #expect(!Self.liveAtMention(text), "\(text)")
            #expect(!Self.liveMarkdownLink(text), "\(text)")
            #expect(!text.contains("<script>"))
            let props = try #require(body["props"] as? [String: Any])
            #expect(props["mentionHighlightDisabled"] as? Bool == true && props["disable_group_highlight"] as? Bool == true)
        }
        // With the operator's own mention, it is there as written (and the server is not told to mute it).
        let bodies = try await deliver("mattermost", { ["url": $0, "token": "mm-hostile-1", "channel_id": "c1", "mention": "@oncall"] },
                                       reply: #"{"id":"p1"}"#)
        let text = try #require(bodies.first?["message"] as? String)
        #expect(text.hasPrefix("@oncall\n") && bodies.first?["props"] == nil)
    }

    @Test func discord() async throws {
        let bodies = try await deliver("discord", { ["webhook_url": $0 + "/api/webhooks/1/x"] }, reply: #"{"id":"m1"}"#)
        let body = try #require(bodies.first)
        #expect((body["allowed_mentions"] as? [String: Any])?["parse"] as? [String] == [])
        let embed = try #require((body["embeds"] as? [[String: Any]])?.first)
        for key in ["title", "description"] {
            let text = try #require(embed[key] as? String)
            #expect(!Self.liveAtMention(text) && !Self.liveMarkdownLink(text) && !text.contains("<@U0123>"), "\(key): \(text)")
        }
    }

    @Test func teams() async throws {
        let bodies = try await deliver("teams", { ["webhook_url": $0 + "/webhook"] }, reply: "1")
        let card = try #require(((bodies.first?["attachments"] as? [[String: Any]])?.first)?["content"] as? [String: Any])
        let blocks = try #require(card["body"] as? [[String: Any]])
        for text in blocks.compactMap({ $0["text"] as? String }) {
            #expect(!Self.liveMarkdownLink(text) && !text.contains("**bold**"), "\(text)")
        }
    }

    @Test func telegram() async throws {
        let bodies = try await deliver("telegram", { ["token": "123:hostile", "chat_id": "42", "api_url": $0] },
                                       reply: #"{"ok":true,"result":{"message_id":7}}"#)
        let text = try #require(bodies.first?["text"] as? String)
        #expect(bodies.first?["parse_mode"] as? String == "HTML")
        // Herald's own <b> around the title is the only markup.
        #expect(text.components(separatedBy: "<b>").count == 2 && !text.contains("<script>") && !text.contains("<b>x</b>"), "\(text)")
        #expect(text.contains("&lt;script&gt;"))
    }

    @Test func matrix() async throws {
        let bodies = try await deliver("matrix", { ["homeserver": $0, "access_token": "syt_hostile", "room": "!r:example.org"] },
                                       reply: #"{"event_id":"$e1"}"#)
        let body = try #require(bodies.first)
        let html = try #require(body["formatted_body"] as? String)
        #expect(!html.contains("<script>") && !html.contains("<b>x</b>") && !html.contains("href=\"https://evil"), "\(html)")
        // The plain body is for clients that show text: the words as they came.
        #expect((body["body"] as? String)?.contains(Self.hostileTitle) == true)
    }

    @Test func mastodonAndX() async throws {
        let toot = try await deliver("mastodon", { ["url": $0, "token": "mock_token"] }, reply: #"{"id":"1","url":"https://x/1"}"#)
        let status = try #require(toot.first?["status"] as? String)
        #expect(!Self.liveAtMention(status), "\(status)")
        let tweets = try await deliver("x", { ["api_url": $0, "consumer_key": "ck", "consumer_secret": "cs", "access_token": "at",
                                               "access_token_secret": "ats"] }, reply: #"{"data":{"id":"1"}}"#)
        let text = try #require(tweets.first?["text"] as? String)
        #expect(!Self.liveAtMention(text), "\(text)")
    }

    @Test func blueskyHasOnlyLinkFacets() async throws {
        let pds = MicroblogChannelTests.PDS()
        let sink = TestSink { pds.answer($0, $1) }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let sky = try channel("bluesky", ["identifier": "herald.test", "app_password": "app-pass-1234", "service": sink.url])
        _ = try await sky.deliver(try message(for: sky))
        let record = try #require(sink.received.first { $0.path.hasSuffix("createRecord") }?.json?["record"] as? [String: Any])
        // A mention on Bluesky is a facet, which Herald only ever makes for its link.
        for facet in record["facets"] as? [[String: Any]] ?? [] {
            let features = facet["features"] as? [[String: Any]] ?? []
            #expect(features.allSatisfy { $0["$type"] as? String == "app.bsky.richtext.facet#link" })
            #expect(features.allSatisfy { ($0["uri"] as? String)?.hasPrefix("https://status.example.com/") == true })
        }
    }
}
