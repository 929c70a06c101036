import Foundation
import HeraldCore

/// One test message through a channel, to each of its recipients: what `herald test-channel` and
/// the console's "Send a test message" do. Nothing is stored and no route is consulted.
public enum TestMessage {
    public struct Outcome: Sendable {
        public var recipient: String?
        /// The provider's reference and status when delivered.
        public var reference: String?
        public var status: Int?
        /// The error when it was not (not yet redacted: the caller masks secrets).
        public var error: DeliveryError?
        public var delivered: Bool { error == nil }
    }

    public static func send(through channel: any Channel, name: String, renderer: MessageRenderer, now: Date = Date()) async -> [Outcome] {
        let event = Event(id: Identifier.make(prefix: "evt"), incident: "herald-test", status: .triggered, severity: .info,
                          title: "Herald test message", message: "This is a test of the \(name) channel. No action is needed.",
                          occurredAt: now, receivedAt: now)
        let incident = Incident(key: "herald-test", status: .open, cycle: 1, title: event.title, severity: .info,
                                openedAt: now, resolvedAt: nil, updatedAt: now)
        let (title, text) = channel.fitted(renderer.render(kind: .notice, event: event, incident: incident))
        let formatted = channel.fitted(renderer.render(kind: .notice, event: event, incident: incident, markup: channel.markup))
        let recipients = channel.recipients.isEmpty ? [nil] : channel.recipients.map(Optional.some)
        var outcomes: [Outcome] = []
        for recipient in recipients {
            let message = OutboundMessage(deliveryId: Identifier.make(prefix: "dlv"), kind: .notice, recipient: recipient,
                                          event: event, incident: incident, title: title, text: text,
                                          formattedTitle: formatted.title, formattedText: formatted.text)
            do {
                let receipt = try await channel.deliver(message)
                outcomes.append(Outcome(recipient: recipient, reference: receipt.reference, status: receipt.status))
            } catch {
                let failure = (error as? DeliveryError) ?? .transient(.other, "\(error)")
                outcomes.append(Outcome(recipient: recipient, error: failure))
            }
        }
        return outcomes
    }
}
