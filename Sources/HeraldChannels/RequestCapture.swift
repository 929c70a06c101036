import Foundation
import HeraldCore
import HeraldTransport
import Synchronization

/// Records what a channel sends and answers with the least a provider would: enough for every
/// channel type to carry on (a session, an id), never a real delivery.
public final class RequestCapture: HTTPTransport, MailTransport, Sendable {
    private let log = Mutex<[String]>([])
    public var sent: [String] { log.withLock { $0 } }

    public init() {}

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var s = "request: \(request.method) \(RedactedURL(request.url))\n"
        for (name, value) in request.headers {
            let shown = ["authorization", "cookie"].contains(name.lowercased()) ? "****" : value
            s += "  \(name): \(shown)\n"
        }
        if !request.body.isEmpty {
            if let object = try? JSONSerialization.jsonObject(with: Data(request.body)),
               let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
                s += String(decoding: pretty, as: UTF8.self) + "\n"
            } else {
                s += String(decoding: request.body, as: UTF8.self) + "\n"
            }
        }
        log.withLock { $0.append(s) }
        let answer = #"{"ok":true,"ts":"0","id":"0","event_id":"$preview","result":{"message_id":1},"data":{"id":"0"},"#
            + #""uri":"at://did:plc:preview/app.bsky.feed.post/preview","cid":"preview","accessJwt":"preview","refreshJwt":"preview","#
            + #""did":"did:plc:preview","handle":"preview","url":"https://preview.invalid/0"}"#
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(answer.utf8))
    }

    public func send(_ mail: MailMessage) async throws -> MailResponse {
        let s = "SMTP \(RedactedURL(mail.url)) from \(mail.from) to \(mail.recipients.joined(separator: ", "))\n"
            + String(decoding: mail.data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n") + "\n"
        log.withLock { $0.append(s) }
        return MailResponse(code: 250)
    }

    public func console(_ line: String) {
        log.withLock { $0.append("console:\n" + line + "\n") }
    }
}
