import Foundation
import HeraldCore
import HeraldTransport

/// `type: teams` — a Microsoft Teams Workflows (or legacy incoming-webhook) URL, sent an Adaptive
/// Card. Teams webhooks answer no message reference, so follow-ups cannot be threaded: each is a
/// new card. Keys: `webhook_url` (required; the URL is the credential), `verify_tls`.
/// Reference: https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
/// (Adaptive Card 1.4 in a `message` with one attachment; payloads up to 28 KB).
public struct TeamsChannel: Channel {
    public let name: String
    public let type = "teams"
    /// Connector rate limiting: 4 requests per second per webhook.
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 256, maxBody: 20_000, ratePerSecond: 4) }
    let url: String
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        TeamsChannel(name: settings.channel, url: try settings.url("webhook_url", schemes: ["https", "http"], secret: true),
                     verifyTLS: try settings.bool("verify_tls") ?? true, context: context)
    }

    public var redactedDescription: String { "teams webhook \(RedactedURL(url)) (no threading)" }

    public var markup: TextMarkup { .teams }

    func payload(_ m: OutboundMessage) -> [String: Any] {
        var body: [[String: Any]] = [
            ["type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
             "color": m.kind.isResolution ? "Good" : m.kind == .update ? "Accent" : (m.event.severity >= .major ? "Attention" : "Warning"),
             "text": "\(ChatText.marker(m)) \(m.formattedTitle)"],
            ["type": "TextBlock", "wrap": true, "text": m.formattedText],
        ]
        if !m.event.components.isEmpty {
            body.append(["type": "FactSet", "facts": [["title": "Affected", "value": m.event.components.joined(separator: ", ")]]])
        }
        var card: [String: Any] = [
            "type": "AdaptiveCard", "version": "1.4",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body,
        ]
        if let link = m.event.link {
            card["actions"] = [["type": "Action.OpenUrl", "title": "More information", "url": link]]
        }
        return ["type": "message", "attachments": [[
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": NSNull(), "content": card,
        ]]]
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let (response, _) = try await JSONRequest.send(url: url, body: payload(message), context: context, verifyTLS: verifyTLS)
        return Receipt(reference: nil, status: response.status)
    }
}
