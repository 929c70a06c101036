import Crypto
import Foundation
import HeraldCore
import HeraldTransport

/// `type: webhook` — POSTs the event as JSON; with `secret`, signs it per the Standard Webhooks
/// scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`). `webhook-id` is the delivery id, the same on every retry, so receivers
/// can drop repeats. The receipt reference is the delivery id: an all-clear names its notice's
/// delivery id in `thread`; `kind` is `notice`, `all_clear` or `summary` (for a recipient that
/// never got the notice).
///
/// Keys: `url` (http/https, required; treated as a secret since webhook URLs often carry tokens),
/// `secret` / `secret_file` (a `whsec_`-prefixed base64 key as Standard Webhooks issues them, or
/// any other string used as raw bytes), `headers` (extra request headers), `verify_tls` (default true).
public struct WebhookChannel: Channel {
    public let name: String
    public let type = "webhook"
    let url: String
    let key: SymmetricKey?
    let headers: [(name: String, value: String)]
    let verifyTLS: Bool
    let context: ChannelContext

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let url = try settings.url("url", schemes: ["http", "https"], secret: true)
        let key = try settings.secret("secret").map(signingKey)
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
        return WebhookChannel(name: settings.channel, url: url, key: key, headers: headers, verifyTLS: verifyTLS, context: context)
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
        "webhook \(RedactedURL(url))\(key == nil ? "" : " signed")"
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        let body = try Self.payload(message)
        var request = HTTPRequest(method: "POST", url: url, body: body, timeout: context.timeout, verifyTLS: verifyTLS)
        request.headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "herald"),
            ("webhook-id", message.deliveryId),
            ("Idempotency-Key", message.deliveryId),
        ] + headers
        if let key {
            let timestamp = String(Int(Date().timeIntervalSince1970))
            request.headers.append(("webhook-timestamp", timestamp))
            request.headers.append(("webhook-signature", Self.signature(id: message.deliveryId, timestamp: timestamp, body: body, key: key)))
        }
        let response = try await HTTPClassifier.send(request, via: context.transport)
        return Receipt(reference: message.deliveryId, status: response.status)
    }

    /// `v1,<base64 HMAC-SHA256("id.timestamp.body")>`.
    public static func signature(id: String, timestamp: String, body: [UInt8], key: SymmetricKey) -> String {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return "v1," + Data(hmac.finalize()).base64EncodedString()
    }

    struct Payload: Encodable {
        var delivery_id: String
        var kind: String
        var event: EventBody
        var incident: IncidentBody
        var thread: String?
        var title: String
        var text: String
    }
    struct EventBody: Encodable {
        var id: String
        var incident: String
        var status: String
        var severity: String
        var title: String
        var message: String?
        var components: [String]
        var labels: [String: String]
        var link: String?
        var occurred_at: String
        var received_at: String
    }
    struct IncidentBody: Encodable {
        var key: String
        var status: String
        var cycle: Int
        var opened_at: String
        var resolved_at: String?
    }

    static func payload(_ m: OutboundMessage) throws -> [UInt8] {
        let e = m.event
        let payload = Payload(
            delivery_id: m.deliveryId, kind: m.kind.rawValue,
            event: EventBody(id: e.id, incident: e.incident, status: e.status.rawValue, severity: e.severity.rawValue,
                             title: e.title, message: e.message, components: e.components, labels: e.labels, link: e.link,
                             occurred_at: RFC3339.format(e.occurredAt), received_at: RFC3339.format(e.receivedAt)),
            incident: IncidentBody(key: m.incident.key, status: m.incident.status.rawValue, cycle: m.incident.cycle,
                                   opened_at: RFC3339.format(m.incident.openedAt),
                                   resolved_at: m.incident.resolvedAt.map(RFC3339.format)),
            thread: m.threadDeliveryId, title: m.title, text: m.text)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(payload))
        } catch {
            throw DeliveryError.permanent(.other, "cannot encode payload: \(error)")
        }
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
