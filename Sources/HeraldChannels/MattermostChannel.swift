import Foundation
import HeraldCore
import HeraldTransport

/// `type: mattermost` — an incoming webhook (no message reference, so no threading), or an API
/// token and `POST /api/v4/posts` (receipt: the post id; follow-ups are replies with `root_id`).
///
/// Keys: `webhook_url`, or `url` (the server) + `token` / `token_file` + `channel_id`; `username`
/// (webhook only), `verify_tls`. API reference: https://api.mattermost.com/#tag/posts/operation/CreatePost
/// and https://developers.mattermost.com/integrate/webhooks/incoming/ (16383-character posts).
public struct MattermostChannel: Channel {
    public let name: String
    public let type = "mattermost"
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 256, maxBody: 16_000) }
    public var markup: TextMarkup { .markdown }

    enum Mode {
        case api(server: String, token: Secret, channelID: String)
        case webhook(url: String, username: String?)
    }
    let mode: Mode
    /// Written by the operator (`mention`, e.g. `@oncall`): put before a notice's text as it is.
    let mention: String?
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let token = try settings.secret("token")
        let webhook = try settings.optionalString("webhook_url")
        let mode: Mode
        switch (token, webhook) {
        case (let token?, nil):
            let server = try settings.url("url", schemes: ["https", "http"])
            mode = .api(server: server.hasSuffix("/") ? String(server.dropLast()) : server, token: token,
                        channelID: try settings.string("channel_id"))
        case (nil, _?):
            mode = .webhook(url: try settings.url("webhook_url", schemes: ["https", "http"], secret: true),
                            username: try settings.optionalString("username"))
        case (_?, _?):
            throw settings.error("webhook_url", "give either url, token and channel_id, or webhook_url, not both")
        case (nil, nil):
            throw settings.error("token", "missing required key (give url, token and channel_id, or webhook_url)")
        }
        return MattermostChannel(name: settings.channel, mode: mode, mention: try settings.optionalString("mention"),
                                 verifyTLS: try settings.bool("verify_tls") ?? true, context: context)
    }

    public var redactedDescription: String {
        switch mode {
        case .api(let server, _, let channel): return "mattermost \(RedactedURL(server)) channel \(channel)"
        case .webhook(let url, _): return "mattermost webhook \(RedactedURL(url)) (no threading)"
        }
    }

    /// The event's words escaped (`@` followed by a zero-width space, Markdown backslash-escaped);
    /// the operator's `mention`, if any, before a notice as written.
    func text(_ m: OutboundMessage) -> String {
        let mentionLine = m.kind == .notice ? mention.map { $0 + "\n" } ?? "" : ""
        return "\(mentionLine)#### \(ChatText.marker(m)) \(m.formattedTitle)\n\(m.formattedText)".truncated(to: 16_383)
    }

    /// Without an operator's mention, the post also asks the server not to treat anything in it as
    /// a channel-wide (`@all`, `@channel`, `@here`) or group mention.
    var props: [String: Any] {
        mention == nil ? ["mentionHighlightDisabled": true, "disable_group_highlight": true] : [:]
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        switch mode {
        case .webhook(let url, let username):
            var body: [String: Any] = ["text": text(message)]
            if !props.isEmpty { body["props"] = props }
            if let username { body["username"] = username }
            let (response, _) = try await JSONRequest.send(url: url, body: body, context: context, verifyTLS: verifyTLS)
            return Receipt(reference: nil, status: response.status)
        case .api(let server, let token, let channelID):
            var body: [String: Any] = ["channel_id": channelID, "message": text(message)]
            if !props.isEmpty { body["props"] = props }
            if let root = message.thread { body["root_id"] = root }
            let (response, json) = try await JSONRequest.send(
                url: server + "/api/v4/posts", headers: [("Authorization", "Bearer \(token.value)")],
                body: body, context: context, verifyTLS: verifyTLS)
            return Receipt(reference: json?["id"] as? String, status: response.status)
        }
    }
}
