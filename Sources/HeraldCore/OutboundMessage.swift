import Foundation

/// What a channel is given for one delivery: the data, the rendered words, and the thread to
/// reply to. Channels turn this into their provider's request.
public struct OutboundMessage: Sendable {
    /// Stable across retries: the idempotency key receivers use to drop repeats.
    public var deliveryId: String
    public var kind: DeliveryKind
    /// The recipient within the channel (see `Channel.recipients`), or nil.
    public var recipient: String?
    public var event: Event
    public var incident: Incident
    /// Rendered from the templates as plain text (event values as they came), cut to the
    /// channel's limits.
    public var title: String
    public var text: String
    /// The same rendered for the channel's markup (`Channel.markup`): every value from the event
    /// escaped so it cannot mention, link or format; the templates' own words as written. Equal to
    /// `title`/`text` for a plain channel.
    public var formattedTitle: String
    public var formattedText: String
    /// The provider reference of the notice this follows up, when there was one.
    public var thread: String?
    /// The delivery id of the notice this follows up.
    public var threadDeliveryId: String?
    /// For a follow-up: the title its target's notice was (or would have been) sent with, so a
    /// reply can keep the conversation's subject (`Re: …`), and that notice's delivery id.
    public var noticeTitle: String?
    public var noticeDeliveryId: String?
    /// For a follow-up: the provider references of the notice and the follow-ups delivered to the
    /// same target before, oldest first (an email's `References` chain).
    public var references: [String]

    public init(deliveryId: String, kind: DeliveryKind, recipient: String? = nil, event: Event, incident: Incident,
                title: String, text: String, thread: String? = nil, threadDeliveryId: String? = nil,
                noticeTitle: String? = nil, noticeDeliveryId: String? = nil, references: [String] = [],
                formattedTitle: String? = nil, formattedText: String? = nil) {
        self.deliveryId = deliveryId
        self.kind = kind
        self.recipient = recipient
        self.event = event
        self.incident = incident
        self.title = title
        self.text = text
        self.formattedTitle = formattedTitle ?? title
        self.formattedText = formattedText ?? text
        self.thread = thread
        self.threadDeliveryId = threadDeliveryId
        self.noticeTitle = noticeTitle
        self.noticeDeliveryId = noticeDeliveryId
        self.references = references
    }
}

extension String {
    /// At most `limit` characters (grapheme clusters), cut on a grapheme boundary with `…`.
    public func truncated(to limit: Int) -> String {
        guard limit > 0 else { return "" }
        guard count > limit else { return self }
        return String(prefix(limit - 1)) + "…"
    }
}
