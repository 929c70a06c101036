import Foundation
import HeraldCore
import HeraldTransport

/// `type: subscribers` — email to the status page's subscribers: one delivery per confirmed
/// subscriber of a public incident (one routed to a `statuspage` channel), planned page by page
/// after the commit. Never named in routes: it hears what the status page hears. Each message is an
/// `email` channel's message (threading, receipts, retries alike) to the subscriber's address,
/// looked up at send time, with a footer linking to their preferences and the RFC 8058 one-click
/// unsubscribe headers. It also sends the sign-up confirmation.
///
/// Keys: those of `email` except `to` (`url`, `from`, `username`, `password` / `password_file`,
/// `starttls`, `verify_tls`), and
/// - `public_url` — where people reach Herald's `/status` (`https://status.example.com`), required:
///   every link in a message starts with it.
public struct SubscribersChannel: Channel {
    public let name: String
    public let type = "subscribers"
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 200) }
    let mail: EmailChannel
    /// Without a trailing slash.
    public let publicURL: String
    let directory: (any SubscriberDirectory)?

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let mail = try EmailChannel.make(settings, context, recipientsFromTo: false)
        var publicURL = try settings.url("public_url", schemes: ["http", "https"])
        while publicURL.hasSuffix("/") { publicURL.removeLast() }
        return SubscribersChannel(name: settings.channel, mail: mail, publicURL: publicURL, directory: context.subscribers)
    }

    public var redactedDescription: String {
        "subscribers by \(RedactedURL(mail.url)) from \(mail.fromAddress), links at \(publicURL)"
    }

    /// The page where a subscriber changes components or unsubscribes.
    public func manageLink(_ subscriber: Subscriber) -> String { "\(publicURL)/status/manage?token=\(subscriber.token)" }

    /// RFC 8058's one-click target: a POST unsubscribes, a GET shows a button.
    public func unsubscribeLink(_ subscriber: Subscriber) -> String { "\(publicURL)/status/unsubscribe?token=\(subscriber.token)" }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        guard let id = message.recipient, let directory else {
            throw DeliveryError.permanent(.configuration, "subscribers are only reached from herald serve")
        }
        let found: Subscriber?
        do {
            found = try await directory.subscriber(id: id)
        } catch {
            throw DeliveryError.transient(.other, "cannot read the subscriber: \(error)")
        }
        guard let subscriber = found else {
            throw DeliveryError.permanent(.rejected, "the subscriber has unsubscribed")
        }
        do {
            return try await mail.send(message, to: subscriber.address, extraHeaders: [
                ("List-Unsubscribe", "<\(unsubscribeLink(subscriber))>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Precedence", "bulk"),
            ], footer: """
                You receive this because you subscribed to these status updates.
                Choose components or unsubscribe: \(manageLink(subscriber))
                """)
        } catch var error as DeliveryError {
            // A mail server's refusal often quotes the address: the error is stored, shown and
            // logged, and a subscriber's address is never, so it names the subscriber instead.
            error.detail = error.detail.replacingOccurrences(of: subscriber.address, with: subscriber.id, options: .caseInsensitive)
            throw error
        }
    }

    /// The sign-up's confirmation mail, with the link that confirms it.
    public func sendConfirmation(to address: String, pageTitle: String, link: String) async throws {
        try await mail.sendPlain(to: address, subject: "Confirm your subscription to \(pageTitle)", text: """
            Someone, hopefully you, asked to receive \(pageTitle) updates at this address.

            To confirm, open this link within 24 hours:
            \(link)

            If it was not you, ignore this message: nothing will be sent to you.
            """)
    }
}
