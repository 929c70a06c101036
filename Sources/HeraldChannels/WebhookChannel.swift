import Crypto
import Foundation
import HeraldCore
import HeraldTransport

/// `type: webhook` — POSTs the event as JSON; with `secret`, signs it per the Standard Webhooks
/// scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`). With several secrets (a list, while a key is rotated) every one signs
/// and the header carries one `v1,<sig>` per secret, separated by spaces, as the scheme allows:
/// a receiver holding any one of the keys accepts the request. `webhook-id` is the delivery id, the same on every retry, so receivers
/// can drop repeats. The receipt reference is the delivery id: an all-clear names its notice's
/// delivery id in `thread`; `kind` is `notice`, `update` (an update or acknowledgement, to a
/// receiver already told), `all_clear` or `summary` (for a receiver that never got the notice).
///
/// Keys: `url` (http/https, required; treated as a secret since webhook URLs often carry tokens),
/// `secret` / `secret_file` (a `whsec_`-prefixed base64 key as Standard Webhooks issues them, or
/// any other string used as raw bytes; either may be a list), `headers` (extra request headers), `verify_tls` (default true).
public struct WebhookChannel: Channel {
    public let name: String
    public let type = "webhook"
    let url: String
    /// In configuration order; empty: unsigned.
    let keys: [SymmetricKey]
    let headers: [(name: String, value: String)]
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let url = try settings.url("url", schemes: ["http", "https"], secret: true)
        let keys = try settings.secretList("secret").map(signingKey)
        var headers: [(name: String, value: String)] = []
        for (name, value) in try settings.stringMap("headers")?.sorted(by: { $0.key < $1.key }) ?? [] {
            guard isToken(name) else { throw settings.error("headers", "invalid header name \"\(name)\"") }
            guard !value.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw settings.error("headers", "header \(name) contains a line break")
            }
            if isSensitiveHeader(name) { settings.recordSecret(value) }
            headers.append((name, value))
        }
        let verifyTLS = try settings.bool("verify_tls") ?? true
        return WebhookChannel(name: settings.channel, url: url, keys: keys, headers: headers, verifyTLS: verifyTLS, context: context)
    }

    /// Standard Webhooks keys are `whsec_` + base64; anything else is used as its UTF-8 bytes.
    static func signingKey(_ secret: Secret) -> SymmetricKey {
        if secret.value.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.value.dropFirst(6))) {
            return SymmetricKey(data: data)
        }
        return SymmetricKey(data: Data(secret.value.utf8))
    }

    /// Headers whose values are credentials: redacted wherever they could appear.
    static func isSensitiveHeader(_ name: String) -> Bool {
        let n = name.lowercased()
        return n == "authorization" || n == "cookie" || ["token", "key", "secret", "auth", "signature", "password"].contains { n.contains($0) }
    }

    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "-_.!#$%&'*+^`|~".utf8.contains(c)
        }
    }

    public var redactedDescription: String {
        "webhook \(RedactedURL(url))\(keys.isEmpty ? "" : keys.count == 1 ? " signed" : " signed with \(keys.count) keys")"
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let body = Self.payload(message)
        var request = HTTPRequest(method: "POST", url: url, body: body, timeout: context.timeout, verifyTLS: verifyTLS)
        request.headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "herald"),
            ("webhook-id", message.deliveryId),
            ("Idempotency-Key", message.deliveryId),
        ] + headers
        if !keys.isEmpty {
            let timestamp = String(Int(Date().timeIntervalSince1970))
            request.headers.append(("webhook-timestamp", timestamp))
            request.headers.append(("webhook-signature", Self.signatures(id: message.deliveryId, timestamp: timestamp, body: body, keys: keys)))
        }
        let response = try await HTTPClassifier.send(request, via: context.transport)
        return Receipt(reference: message.deliveryId, status: response.status)
    }

    /// One `v1,<sig>` per key, separated by spaces (Standard Webhooks' list of signatures).
    public static func signatures(id: String, timestamp: String, body: [UInt8], keys: [SymmetricKey]) -> String {
        keys.map { signature(id: id, timestamp: timestamp, body: body, key: $0) }.joined(separator: " ")
    }

    /// `v1,<base64 HMAC-SHA256("id.timestamp.body")>`.
    public static func signature(id: String, timestamp: String, body: [UInt8], key: SymmetricKey) -> String {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return "v1," + Data(hmac.finalize()).base64EncodedString()
    }

    /// The body: the delivery, the event and the incident, keys sorted (one shape for every
    /// webhook, documented in channels.yaml.example).
    static func payload(_ m: OutboundMessage) -> [UInt8] {
        let e = m.event
        var w = JSONWriter(capacity: 768 + e.title.utf8.count + (e.message?.utf8.count ?? 0) + m.text.utf8.count)
        w.beginObject()
        w.field("delivery_id", m.deliveryId)
        w.key("event")
        w.beginObject()
        w.field("actor", e.actor)
        w.field("components", e.components)
        w.field("id", e.id)
        w.field("incident", e.incident)
        w.field("labels", e.labels)
        w.field("link", e.link)
        w.field("message", e.message)
        w.field("occurred_at", RFC3339.format(e.occurredAt))
        w.field("received_at", RFC3339.format(e.receivedAt))
        w.field("severity", e.severity.rawValue)
        w.field("status", e.status.rawValue)
        w.field("title", e.title)
        w.endObject()
        w.key("incident")
        w.beginObject()
        w.field("acknowledged_at", m.incident.acknowledgedAt.map(RFC3339.format))
        w.field("acknowledged_by", m.incident.acknowledgedBy)
        w.field("cycle", m.incident.cycle)
        w.field("key", m.incident.key)
        w.field("opened_at", RFC3339.format(m.incident.openedAt))
        w.field("resolved_at", m.incident.resolvedAt.map(RFC3339.format))
        w.field("status", m.incident.status.rawValue)
        w.endObject()
        w.field("kind", m.kind.rawValue)
        w.field("text", m.text)
        w.field("thread", m.threadDeliveryId)
        w.field("title", m.title)
        w.endObject()
        return w.bytes
    }
}

/// A URL as it may be shown: scheme, host and port only; path, query and credentials masked.
public struct RedactedURL: CustomStringConvertible, Sendable {
    let url: String
    public init(_ url: String) { self.url = url }
    public var description: String {
        guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return "****" }
        let port = c.port.map { ":\($0)" } ?? ""
        let hidden = (c.path.isEmpty || c.path == "/") && c.query == nil ? "" : "/****"
        return "\(scheme)://\(c.user == nil ? "" : "****@")\(host)\(port)\(hidden)"
    }
}
