import Foundation
import HeraldCore
import HeraldTransport

/// `type: mastodon` — `POST /api/v1/statuses` with the delivery id as `Idempotency-Key` (a retry
/// never posts twice). Receipt: the status id; follow-ups reply to the notice with
/// `in_reply_to_id`. Keys: `url` (the instance), `token` / `token_file` (an access token with the
/// write:statuses scope), `visibility` (public | unlisted | private | direct; default public),
/// `max_characters` (default 500, the instance's limit), `verify_tls`.
/// API reference: https://docs.joinmastodon.org/methods/statuses/#create (429 carries
/// `X-RateLimit-Reset`).
public struct MastodonChannel: Channel {
    public let name: String
    public let type = "mastodon"
    /// 300 requests per 5 minutes per account: one per second.
    public var limits: ChannelLimits { ChannelLimits(maxTitle: maxCharacters, maxBody: maxCharacters, ratePerSecond: 1) }
    /// `@user@server` in a status mentions and notifies: event text cannot form one.
    public var markup: TextMarkup { .microblog }
    let instance: String
    let token: Secret
    let visibility: String
    let maxCharacters: Int
    let verifyTLS: Bool
    let context: ChannelContext

    static let visibilities: Set<String> = ["public", "unlisted", "private", "direct"]

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let url = try settings.url("url", schemes: ["https", "http"])
        let visibility = try settings.optionalString("visibility") ?? "public"
        guard visibilities.contains(visibility) else {
            throw settings.error("visibility", "expected one of: \(visibilities.sorted().joined(separator: ", "))")
        }
        let max = try settings.int("max_characters") ?? 500
        guard max >= 100 else { throw settings.error("max_characters", "must be at least 100") }
        return MastodonChannel(name: settings.channel, instance: url.hasSuffix("/") ? String(url.dropLast()) : url,
                               token: try settings.requiredSecret("token"), visibility: visibility, maxCharacters: max,
                               verifyTLS: try settings.bool("verify_tls") ?? true, context: context)
    }

    public var redactedDescription: String { "mastodon \(RedactedURL(instance)) (\(visibility))" }

    func payload(_ m: OutboundMessage) -> [String: Any] {
        var body: [String: Any] = [
            // Mastodon counts a URL as 23 characters, but not every server that speaks its API does
            // (GoToSocial, Akkoma, test doubles): counting the link at full length always fits.
            "status": MicroblogText.compose(m, limit: maxCharacters, markup: markup),
            "visibility": visibility,
        ]
        if let thread = m.thread { body["in_reply_to_id"] = thread }
        return body
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let (response, json) = try await JSONRequest.send(
            url: instance + "/api/v1/statuses",
            headers: [("Authorization", "Bearer \(token.value)"), ("Idempotency-Key", message.deliveryId)],
            body: payload(message), context: context, verifyTLS: verifyTLS, refine: Self.refine)
        return Receipt(reference: json?["id"] as? String, status: response.status)
    }

    /// 429 without Retry-After: wait until `X-RateLimit-Reset` (a past time is no wait; one more
    /// than 100 years away is clamped, see `Duration(until:now:)`).
    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> DeliveryError? {
        guard response.status == 429, response.header("Retry-After") == nil,
              let text = response.header("X-RateLimit-Reset"), let reset = RFC3339.parse(text),
              let wait = Duration(until: reset, now: Date()) else { return nil }
        // The provider's text, not RFC3339.format(reset): a reset before year 1 is parsed but not
        // something to format.
        return .transient(.rateLimited, status: 429, retryAfter: wait,
                          "HTTP 429: rate limited until \(text.trimmingCharacters(in: .whitespaces).truncated(to: 40))")
    }
}
