import Foundation
import HeraldCore
import HeraldTransport

/// `type: slack` — either a bot token and `chat.postMessage` (receipt: the message `ts`; follow-ups
/// of the same incident are posted in its thread with `thread_ts`, optionally broadcast back to the
/// channel), or a plain incoming-webhook URL (Slack gives no message reference for those, so
/// follow-ups cannot be threaded: they are new messages).
///
/// Keys: `token` / `token_file` + `channel` (an id like C0123 or a #name), or `webhook_url`;
/// `reply_broadcast` (default true: an all-clear in a thread is also shown in the channel),
/// `api_url` (default https://slack.com/api), `verify_tls`.
/// API reference: https://api.slack.com/methods/chat.postMessage (answers HTTP 200 with
/// `{"ok": false, "error": …}` on failure; 429 with `Retry-After` when rate limited).
public struct SlackChannel: Channel {
    public let name: String
    public let type = "slack"
    /// chat.postMessage: "1 message per second per channel" (its special rate limit).
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 150, maxBody: 3000, ratePerSecond: 1) }
    public var markup: TextMarkup { .slack }

    enum Mode {
        case api(token: Secret, channel: String, baseURL: String)
        case webhook(url: String)
    }
    let mode: Mode
    /// Written by the operator (`mention`, e.g. `<!subteam^S0123>` to page a team on purpose):
    /// put before a notice's text as it is.
    let mention: String?
    let replyBroadcast: Bool
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let token = try settings.secret("token")
        let webhook = try settings.optionalString("webhook_url")
        let mode: Mode
        switch (token, webhook) {
        case (let token?, nil):
            let channel = try settings.string("channel")
            let base = try settings.optionalString("api_url").map { _ in try settings.url("api_url", schemes: ["http", "https"]) }
            mode = .api(token: token, channel: channel, baseURL: base ?? "https://slack.com/api")
        case (nil, _?):
            mode = .webhook(url: try settings.url("webhook_url", schemes: ["https", "http"], secret: true))
        case (_?, _?):
            throw settings.error("webhook_url", "give either token and channel, or webhook_url, not both")
        case (nil, nil):
            throw settings.error("token", "missing required key (give token and channel, or webhook_url)")
        }
        return SlackChannel(name: settings.channel, mode: mode, mention: try settings.optionalString("mention"),
                            replyBroadcast: try settings.bool("reply_broadcast") ?? true,
                            verifyTLS: try settings.bool("verify_tls") ?? true, context: context)
    }

    public var redactedDescription: String {
        switch mode {
        case .api(_, let channel, let base): return "slack \(RedactedURL(base)) channel \(channel)"
        case .webhook(let url): return "slack webhook \(RedactedURL(url)) (no threading)"
        }
    }

    /// Text fallback plus blocks: a header line and a section (Block Kit limits: 150 and 3000). The
    /// header is plain text (Slack reads no markup or mention there); the section and the fallback
    /// are mrkdwn, so they carry the event's words escaped (`formattedText`), and the link is built
    /// with Slack's own syntax from the checked URL, escaped.
    func payload(_ m: OutboundMessage) -> [String: Any] {
        let title = "\(ChatText.marker(m)) \(m.title)".truncated(to: 150)
        let mentionLine = m.kind == .notice ? mention.map { $0 + " " } ?? "" : ""
        var blocks: [[String: Any]] = [
            ["type": "header", "text": ["type": "plain_text", "text": title, "emoji": true]],
            ["type": "section", "text": ["type": "mrkdwn", "text": (mentionLine + m.formattedText).truncated(to: 3000)]],
        ]
        if let link = m.event.link {
            blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": "<\(markup.escapeLink(link))|More information>"]]])
        }
        let fallback = "\(mentionLine)\(ChatText.marker(m)) \(m.formattedTitle)\n\(m.formattedText)"
        return ["text": fallback.truncated(to: 40_000), "blocks": blocks, "unfurl_links": false]
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        var body = payload(message)
        switch mode {
        case .webhook(let url):
            let (response, _) = try await JSONRequest.send(url: url, body: body, context: context, verifyTLS: verifyTLS)
            return Receipt(reference: nil, status: response.status)
        case .api(let token, let channel, let base):
            body["channel"] = channel
            if let thread = message.thread {
                body["thread_ts"] = thread
                // The all-clear is also shown in the channel; updates stay in the thread.
                if message.kind.isResolution { body["reply_broadcast"] = replyBroadcast }
            }
            let (response, json) = try await JSONRequest.send(
                url: base + "/chat.postMessage", headers: [("Authorization", "Bearer \(token.value)")],
                body: body, context: context, verifyTLS: verifyTLS, refine: Self.refine)
            guard let ts = json?["ts"] as? String else {
                throw DeliveryError.transient(.other, status: response.status, "Slack answered without a message ts")
            }
            return Receipt(reference: ts, status: response.status)
        }
    }

    /// Slack reports failures as HTTP 200 `{"ok": false, "error": "…"}`.
    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> DeliveryError? {
        guard response.status == 200, let json, json["ok"] as? Bool == false else { return nil }
        let error = json["error"] as? String ?? "unknown_error"
        let detail = "Slack error: \(error)"
        switch error {
        case "ratelimited", "rate_limited":
            return .transient(.rateLimited, status: 200, retryAfter: HTTPClassifier.retryAfter(response), detail)
        case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
            return .transient(.serverError, status: 200, detail)
        case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope", "no_permission":
            return .permanent(.auth, status: 200, detail)
        default:
            return .permanent(.rejected, status: 200, detail)
        }
    }
}
