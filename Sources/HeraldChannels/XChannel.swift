import Foundation
import HeraldCore
import HeraldTransport

/// `type: x` — `POST /2/tweets` signed with OAuth 1.0a user context (HMAC-SHA1). Receipt: the
/// post id; follow-ups reply with `reply.in_reply_to_tweet_id`. Posts fit X's weighted 280 (most
/// CJK and emoji count 2, a URL 23). Keys: `consumer_key`, `consumer_secret`, `access_token`,
/// `access_token_secret` (each also as `KEY_file`), `api_url` (default https://api.x.com),
/// `verify_tls`. Reference: https://docs.x.com/x-api/posts/creation-of-a-post (429 carries
/// `x-rate-limit-reset`, epoch seconds).
public struct XChannel: Channel {
    public let name: String
    public let type = "x"
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 280, maxBody: 280) }
    /// `@user` in a post mentions and notifies: event text cannot form one.
    public var markup: TextMarkup { .microblog }
    let oauth: OAuth1
    let baseURL: String
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let oauth = OAuth1(consumerKey: try settings.requiredSecret("consumer_key").value,
                           consumerSecret: try settings.requiredSecret("consumer_secret").value,
                           token: try settings.requiredSecret("access_token").value,
                           tokenSecret: try settings.requiredSecret("access_token_secret").value)
        let base = try settings.optionalString("api_url").map { _ in try settings.url("api_url", schemes: ["https", "http"]) }
        return XChannel(name: settings.channel, oauth: oauth,
                        baseURL: (base ?? "https://api.x.com").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                        verifyTLS: try settings.bool("verify_tls") ?? true, context: context)
    }

    public var redactedDescription: String { "x \(RedactedURL(baseURL))" }

    /// X's weighted length: code points in the Latin, general punctuation and similar ranges
    /// count 1, the rest 2; each URL counts 23 (twitter-text v3).
    static func weightedLength(_ s: String, link: String?) -> Int {
        var text = s
        var total = 0
        if let link, text.contains(link) {
            text = text.replacingOccurrences(of: link, with: "")
            total += 23
        }
        for scalar in text.unicodeScalars {
            let v = scalar.value
            let light = v <= 4351 || (8192...8205).contains(v) || (8208...8223).contains(v) || (8242...8247).contains(v)
            total += light ? 1 : 2
        }
        return total
    }

    static func text(_ m: OutboundMessage) -> String {
        var limit = 280
        while limit > 40 {
            let candidate = MicroblogText.compose(m, limit: limit, urlLength: 23, markup: .microblog)
            if weightedLength(candidate, link: m.event.link) <= 280 { return candidate }
            limit -= 10
        }
        return MicroblogText.compose(m, limit: 40, urlLength: 23, markup: .microblog)
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        var body: [String: Any] = ["text": Self.text(message)]
        if let thread = message.thread { body["reply"] = ["in_reply_to_tweet_id": thread] }
        let url = baseURL + "/2/tweets"
        let (response, json) = try await JSONRequest.send(
            url: url, headers: [("Authorization", oauth.header(method: "POST", url: url))],
            body: body, context: context, verifyTLS: verifyTLS, refine: Self.refine)
        return Receipt(reference: (json?["data"] as? [String: Any])?["id"] as? String, status: response.status)
    }

    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> (any Error)? {
        guard response.status == 429, response.header("Retry-After") == nil,
              let reset = response.header("x-rate-limit-reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }),
              let wait = Duration(untilEpochSeconds: reset, now: Date()) else { return nil }
        return DeliveryError.transient(.rateLimited, status: 429, retryAfter: wait, "HTTP 429: rate limited")
    }
}
