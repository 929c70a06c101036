import Foundation
import HeraldCore
import HeraldTransport

/// What every JSON-over-HTTP adapter does: encode a body, send it through the shared classifier,
/// and read the provider's JSON answer.
enum JSONRequest {
    static func encode(_ object: [String: Any]) throws -> [UInt8] {
        do {
            return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw DeliveryError.permanent(.other, "cannot encode the request body")
        }
    }

    /// Sends `body` and answers the response with its JSON object (nil when the answer is not a
    /// JSON object). Statuses are classified by `HTTPClassifier`; `refine` may turn a provider's
    /// own error shape into a more precise error first (a `DeliveryError`, or an adapter's own
    /// signal it handles itself, like an expired session).
    static func send(method: String = "POST", url: String, headers: [(name: String, value: String)] = [],
                     body: [String: Any]?, context: ChannelContext, verifyTLS: Bool,
                     refine: ((HTTPResponse, [String: Any]?) -> (any Error)?)? = nil) async throws -> (HTTPResponse, [String: Any]?) {
        var request = HTTPRequest(method: method, url: url, timeout: context.timeout, verifyTLS: verifyTLS)
        request.headers = [("User-Agent", "herald")] + headers
        if let body {
            request.body = try encode(body)
            request.headers.append(("Content-Type", "application/json; charset=utf-8"))
        }
        let response: HTTPResponse
        do {
            response = try await context.transport.send(request)
        } catch let error as TransportError {
            throw HTTPClassifier.classify(error)
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        if let refined = refine?(response, json) { throw refined }
        try HTTPClassifier.check(response)
        return (response, json)
    }
}

/// Text helpers for chat media.
enum ChatText {
    /// Escaped for HTML-ish markup (Telegram HTML, Matrix).
    static func html(_ s: String) -> String { s.htmlEscaped }

    /// An emoji that tells the state at a glance in a chat list.
    static func marker(_ m: OutboundMessage) -> String {
        switch m.kind {
        case .allClear, .summary: return "✅"
        case .update: return m.event.status == .acknowledged ? "👀" : "🔄"
        case .notice:
            switch m.event.severity {
            case .critical: return "🔴"
            case .major: return "🟠"
            case .minor: return "🟡"
            case .info: return "🔵"
            }
        }
    }
}
