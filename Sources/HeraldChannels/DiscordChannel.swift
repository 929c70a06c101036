import Foundation
import HeraldCore
import HeraldTransport

/// `type: discord` — a channel webhook, executed with `?wait=true` so Discord answers the created
/// message (receipt: its id). A follow-up of the same incident is a new message that quotes the
/// notice; an all-clear also edits the original notice to mark it resolved (best effort: a failed
/// edit does not fail the all-clear, which was already posted).
///
/// Keys: `webhook_url` (required; the URL is the credential), `username` (display name),
/// `verify_tls`. API reference: https://discord.com/developers/docs/resources/webhook
/// (execute: 2000-character `content`, embeds with a 256-character title and 4096-character
/// description; 429 answers `{"retry_after": seconds}`).
public struct DiscordChannel: Channel {
    public let name: String
    public let type = "discord"
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 256, maxBody: 4096) }
    let url: String
    let username: String?
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        DiscordChannel(name: settings.channel, url: try settings.url("webhook_url", schemes: ["https", "http"], secret: true),
                       username: try settings.optionalString("username"), verifyTLS: try settings.bool("verify_tls") ?? true,
                       context: context)
    }

    public var redactedDescription: String { "discord webhook \(RedactedURL(url))" }

    public var markup: TextMarkup { .markdown }

    static func color(_ m: OutboundMessage) -> Int {
        if m.kind.isResolution { return 0x2EB67D }
        switch m.event.severity {
        case .critical: return 0xE01E5A
        case .major: return 0xF2952F
        case .minor: return 0xECB22E
        case .info: return 0x36C5F0
        }
    }

    func payload(_ m: OutboundMessage) -> [String: Any] {
        var embed: [String: Any] = [
            "title": "\(ChatText.marker(m)) \(m.formattedTitle)".truncated(to: 256),
            "description": m.formattedText.truncated(to: 4096),
            "color": Self.color(m),
        ]
        if let link = m.event.link { embed["url"] = link }
        var body: [String: Any] = ["embeds": [embed], "allowed_mentions": ["parse": [String]()]]
        if m.thread != nil, m.kind != .notice {
            // Webhooks cannot reply to a message: quote the notice instead.
            body["content"] = "> \(markup.escape(m.incident.title))".truncated(to: 2000)
        }
        if let username { body["username"] = username.truncated(to: 80) }
        return body
    }

    func withQuery(_ base: String, _ item: String) -> String {
        base + (base.contains("?") ? "&" : "?") + item
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let (response, json) = try await JSONRequest.send(
            url: withQuery(url, "wait=true"), body: payload(message), context: context, verifyTLS: verifyTLS, refine: Self.refine)
        if message.kind.isResolution, let original = message.thread {
            await markResolved(original, message)
        }
        return Receipt(reference: json?["id"] as? String, status: response.status)
    }

    /// Edits the notice so that anyone scrolling back sees it is over.
    func markResolved(_ id: String, _ m: OutboundMessage) async {
        let (base, query) = url.firstIndex(of: "?").map { (String(url[..<$0]), String(url[$0...])) } ?? (url, "")
        let embed: [String: Any] = [
            "title": "✅ Resolved: \(markup.escape(m.incident.title))".truncated(to: 256),
            "description": m.formattedText.truncated(to: 4096),
            "color": 0x2EB67D,
        ]
        _ = try? await JSONRequest.send(method: "PATCH", url: base + "/messages/\(id)" + query, body: ["embeds": [embed]],
                                        context: context, verifyTLS: verifyTLS)
    }

    /// Discord's 429 body carries `retry_after` in seconds (read as `Retry-After` is: a value that
    /// is no wait counts as absent, a huge one is clamped).
    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> DeliveryError? {
        guard response.status == 429 else { return nil }
        let seconds = (json?["retry_after"] as? NSNumber)?.doubleValue
        let wait = HTTPClassifier.retryAfter(response) ?? seconds.flatMap { Duration(clampingSeconds: $0) }
        return .transient(.rateLimited, status: 429, retryAfter: wait,
                          "HTTP 429" + (HTTPClassifier.excerpt(response.body).map { ": \($0)" } ?? ""))
    }
}
