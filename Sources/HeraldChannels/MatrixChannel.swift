import Foundation
import HeraldCore
import HeraldTransport

/// `type: matrix` — sends an `m.room.message` to one room through the client-server API:
/// `PUT {homeserver}/_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`
/// (https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid).
/// The transaction id is the delivery id: the homeserver answers a retry of the same delivery
/// with the event it already created, so a retry never posts twice. The receipt reference is the
/// `event_id`; a follow-up (`thread` set) goes into that event's thread (`m.thread` relation, with
/// an `m.in_reply_to` fallback for clients without threads).
///
/// Keys:
/// - `homeserver` — http/https base URL of the client API, required (e.g. https://matrix.example.org)
/// - `access_token` / `access_token_file` — the sending user's access token, required; the user
///   must already be joined to the room
/// - `room` — a room id (`!opaque:server`, or `!opaque` from room version 12), required; aliases
///   (`#name:server`) are not resolved, so they are refused
/// - `notice` — `true` sends `m.notice` (what bots should send; clients show it muted), default
///   `false`: `m.text`
/// - `verify_tls` — default true
///
/// Errors (https://spec.matrix.org/v1.16/client-server-api/#standard-error-response): statuses go
/// through `HTTPClassifier`; a 429 `M_LIMIT_EXCEEDED` waits `Retry-After`, else `retry_after_ms`.
public struct MatrixChannel: Channel {
    public let name: String
    public let type = "matrix"
    /// Matrix caps a whole event at 65,536 bytes of JSON and the text travels twice (plain and
    /// HTML, which escaping makes longer), so the body is held well under that.
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 256, maxBody: 16_000) }

    let homeserver: String
    let token: Secret
    let room: String
    let msgtype: String
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        var homeserver = try settings.url("homeserver", schemes: ["http", "https"])
        while homeserver.hasSuffix("/") { homeserver.removeLast() }
        let token = try settings.requiredSecret("access_token")
        let room = try settings.string("room").trimmingCharacters(in: .whitespaces)
        if room.hasPrefix("#") {
            throw settings.error("room", "is a room alias; give the room id (starts with \"!\", shown in the room's settings)")
        }
        guard room.hasPrefix("!"), room.count > 1, !room.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw settings.error("room", "expected a room id starting with \"!\" (such as !abc123:example.org)")
        }
        let notice = try settings.bool("notice") ?? false
        return MatrixChannel(name: settings.channel, homeserver: homeserver, token: token, room: room,
                             msgtype: notice ? "m.notice" : "m.text",
                             verifyTLS: try settings.bool("verify_tls") ?? true, context: context)
    }

    public var redactedDescription: String { "matrix \(RedactedURL(homeserver)) room \(room)" }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let url = "\(homeserver)/_matrix/client/v3/rooms/\(Self.pathSegment(room))/send/m.room.message/\(Self.pathSegment(message.deliveryId))"
        let (response, json) = try await JSONRequest.send(
            method: "PUT", url: url, headers: [("Authorization", "Bearer \(token.value)")],
            body: content(message), context: context, verifyTLS: verifyTLS, refine: Self.refine)
        guard let eventID = json?["event_id"] as? String, !eventID.isEmpty else {
            throw DeliveryError.transient(.other, status: response.status, "Matrix answered without an event_id")
        }
        return Receipt(reference: eventID, status: response.status)
    }

    /// `formatted_body` is HTML: the event's words arrive escaped in `formattedTitle`/`formattedText`.
    public var markup: TextMarkup { .html }

    /// The event content: plain `body` for every client, `formatted_body` HTML for those that
    /// render it, and the thread relation for follow-ups.
    func content(_ m: OutboundMessage) -> [String: Any] {
        let link = m.event.link.flatMap { m.text.contains($0) ? nil : $0 }
        var body = "\(m.title)\n\n\(m.text)"
        if let link { body += "\n\(link)" }

        var html = "<strong>\(m.formattedTitle)</strong><br><br>\(Self.htmlText(m.formattedText, link: m.event.link))"
        if let link {
            let href = markup.escapeLink(link)
            html += "<br><a href=\"\(href)\">\(href)</a>"
        }
        var content: [String: Any] = [
            "msgtype": msgtype,
            "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": html,
        ]
        if let root = m.thread {
            content["m.relates_to"] = [
                "rel_type": "m.thread",
                "event_id": root,
                "is_falling_back": true,
                "m.in_reply_to": ["event_id": root],
            ] as [String: Any]
        }
        return content
    }

    /// Text already escaped for HTML, line breaks kept, the event's link made clickable.
    static func htmlText(_ html: String, link: String?) -> String {
        var html = html
        if let link, isWebURL(link) {
            let escaped = TextMarkup.html.escapeLink(link)
            html = html.replacingOccurrences(of: escaped, with: "<a href=\"\(escaped)\">\(escaped)</a>")
        }
        return html.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "<br>")
    }

    /// Only http(s) links become anchors; anything else stays text.
    static func isWebURL(_ s: String) -> Bool {
        let lower = s.lowercased()
        return lower.hasPrefix("https://") || lower.hasPrefix("http://")
    }

    /// Everything but RFC 3986 unreserved characters percent-encoded (`!` and `:` in room ids
    /// included), so an id is always exactly one path segment.
    static func pathSegment(_ s: String) -> String {
        s.percentEncodedUnreserved
    }

    /// Matrix errors are `{"errcode": "M_…", "error": "…"}`. A rate limit gives its wait as
    /// `retry_after_ms`, which counts when no `Retry-After` header came; everything else is the
    /// shared classifier's, with the Matrix error code in the detail.
    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> DeliveryError? {
        let status = response.status
        guard !(200..<300).contains(status) else { return nil }
        let errcode = json?["errcode"] as? String
        let detail: String
        if let errcode {
            let text = (json?["error"] as? String).map { ": \($0.truncated(to: HTTPClassifier.excerptLength))" } ?? ""
            detail = "HTTP \(status) Matrix \(errcode)\(text)"
        } else {
            detail = "HTTP \(status)" + (HTTPClassifier.excerpt(response.body).map { ": \($0)" } ?? "")
        }
        if status == 429 || errcode == "M_LIMIT_EXCEEDED" {
            let wait = HTTPClassifier.retryAfter(response)
                ?? (json?["retry_after_ms"] as? NSNumber).flatMap { Duration(clampingSeconds: $0.doubleValue / 1000) }
            return .transient(.rateLimited, status: status, retryAfter: wait, detail)
        }
        do {
            try HTTPClassifier.check(response)
        } catch let error as DeliveryError {
            var refined = error
            refined.detail = detail
            return refined
        } catch {}
        return nil
    }
}
