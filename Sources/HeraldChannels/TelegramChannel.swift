import Foundation
import HeraldCore
import HeraldTransport

/// `type: telegram` — Bot API `sendMessage` (receipt: `message_id`; follow-ups reply to the notice
/// with `reply_parameters`). Keys: `token` / `token_file` (the bot token; it is part of the URL,
/// so it is redacted everywhere), `chat_id` (a number or @channelname), `api_url` (default
/// https://api.telegram.org), `verify_tls`. API reference: https://core.telegram.org/bots/api#sendmessage
/// (4096-character text; failures answer `{"ok": false, "error_code", "description",
/// "parameters": {"retry_after"}}`).
public struct TelegramChannel: Channel {
    public let name: String
    public let type = "telegram"
    /// https://core.telegram.org/bots/faq: no more than one message per second in one chat.
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 256, maxBody: 3500, ratePerSecond: 1) }
    let token: Secret
    let chatID: String
    let baseURL: String
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let token = try settings.requiredSecret("token")
        let base = try settings.optionalString("api_url").map { _ in try settings.url("api_url", schemes: ["https", "http"]) }
        return TelegramChannel(name: settings.channel, token: token, chatID: try settings.string("chat_id"),
                               baseURL: base ?? "https://api.telegram.org", verifyTLS: try settings.bool("verify_tls") ?? true,
                               context: context)
    }

    public var redactedDescription: String { "telegram \(RedactedURL(baseURL)) chat \(chatID)" }

    /// `parse_mode: HTML`: the event's words arrive escaped (`formattedTitle`/`formattedText`);
    /// only Herald's own `<b>` is markup.
    public var markup: TextMarkup { .html }

    func payload(_ m: OutboundMessage) -> [String: Any] {
        var text = "<b>\(ChatText.marker(m)) \(m.formattedTitle)</b>\n\(m.formattedText)"
        if text.count > 4096 { text = String(text.prefix(4095)) + "…" }
        var body: [String: Any] = [
            "chat_id": Int64(chatID).map { $0 as Any } ?? chatID,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": ["is_disabled": true],
        ]
        if let thread = m.thread, let id = Int64(thread) {
            body["reply_parameters"] = ["message_id": id, "allow_sending_without_reply": true]
        }
        return body
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let (response, json) = try await JSONRequest.send(
            url: "\(baseURL)/bot\(token.value)/sendMessage", body: payload(message), context: context,
            verifyTLS: verifyTLS, refine: Self.refine)
        let id = ((json?["result"] as? [String: Any])?["message_id"] as? Int).map(String.init)
        return Receipt(reference: id, status: response.status)
    }

    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> DeliveryError? {
        guard let json, json["ok"] as? Bool == false else { return nil }
        let code = json["error_code"] as? Int ?? response.status
        let detail = "Telegram \(code): \(json["description"] as? String ?? "error")"
        if code == 429 {
            // Any JSON number, read as Retry-After is: no wait counts as absent, a huge one is clamped.
            let seconds = ((json["parameters"] as? [String: Any])?["retry_after"] as? NSNumber)?.doubleValue
            return .transient(.rateLimited, status: code, retryAfter: seconds.flatMap { Duration(clampingSeconds: $0) }, detail)
        }
        if code >= 500 { return .transient(.serverError, status: code, detail) }
        if code == 401 || code == 403 { return .permanent(.auth, status: code, detail) }
        return .permanent(.rejected, status: code, detail)
    }
}
