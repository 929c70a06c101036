import Foundation
import HeraldCore

/// `type: console` — prints each delivery to standard output: the ready-to-run config uses it so
/// a newcomer sees a delivery without any external service. Keys: `format`: `text` (default) or
/// `json` (one line per delivery).
public struct ConsoleChannel: Channel {
    public let name: String
    public let type = "console"
    let json: Bool
    let write: @Sendable (String) -> Void

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let format = try settings.optionalString("format") ?? "text"
        guard format == "text" || format == "json" else {
            throw settings.error("format", "expected text or json")
        }
        return ConsoleChannel(name: settings.channel, json: format == "json", write: context.console)
    }

    /// Writes each delivery straight to file descriptor 1: `print` would sit in a buffer when
    /// standard output is a pipe or a file, and a demo would show nothing.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    public var redactedDescription: String { "console (\(json ? "json" : "text"))" }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        if json {
            let line: [String: Any] = [
                "channel": name, "delivery_id": message.deliveryId, "kind": message.kind.rawValue,
                "incident": message.event.incident, "status": message.event.status.rawValue,
                "title": message.title, "text": message.text,
            ]
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
            write(String(decoding: data, as: UTF8.self))
        } else {
            let indented = message.text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
            write("── \(name) · \(message.kind.rawValue) · \(message.deliveryId)\n\(message.title)\n\(indented)")
        }
        return Receipt(reference: message.deliveryId, status: nil)
    }
}
