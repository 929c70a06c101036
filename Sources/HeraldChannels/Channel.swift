import HeraldCore
import HeraldTransport

/// A provider's answer to a delivered message.
public struct Receipt: Sendable, Equatable {
    /// The provider's reference (status id, Message-ID, `ts`, event id…) that later messages of
    /// the same incident thread onto. Nil when the provider gives none.
    public var reference: String?
    /// The provider's status (HTTP status, SMTP reply code).
    public var status: Int?

    public init(reference: String?, status: Int?) {
        self.reference = reference
        self.status = status
    }
}

/// Limits a provider documents, declared as data; rendering fits messages to them.
public struct ChannelLimits: Sendable, Equatable {
    public var maxTitle: Int?
    public var maxBody: Int?
    /// Messages per second the provider documents for one destination; the channel's
    /// `rate_per_second` defaults to it.
    public var ratePerSecond: Double?
    public init(maxTitle: Int? = nil, maxBody: Int? = nil, ratePerSecond: Double? = nil) {
        self.maxTitle = maxTitle
        self.maxBody = maxBody
        self.ratePerSecond = ratePerSecond
    }
    public static let none = ChannelLimits()
}

/// One configured destination. An adapter turns a message into its provider's request and the
/// provider's answer into a `Receipt` or a `DeliveryError` that says whether to retry. It never
/// loops or sleeps: retries belong to the dispatcher.
public protocol Channel: Sendable {
    var name: String { get }
    var type: String { get }
    var limits: ChannelLimits { get }
    /// The separate recipients this channel delivers to (email addresses), one delivery each so
    /// that receipts, retries and the all-clear are per recipient. Empty: the channel is one
    /// destination.
    var recipients: [String] { get }
    /// Sends one message. Throws `DeliveryError` only.
    func deliver(_ message: OutboundMessage) async throws -> Receipt
    /// The configuration as it may be shown (`herald check`, logs): secrets masked.
    var redactedDescription: String { get }
    /// The markup the provider reads: event text in `OutboundMessage.formattedTitle` and
    /// `formattedText` is escaped for it. Default: plain.
    var markup: TextMarkup { get }
}

extension Channel {
    public var limits: ChannelLimits { .none }
    public var recipients: [String] { [] }
    public var markup: TextMarkup { .plain }
}

/// What a channel factory gets besides its settings.
public struct ChannelContext: Sendable {
    public var transport: any HTTPTransport
    public var timeout: Duration
    /// Where the console channel writes; defaults to standard output.
    public var console: @Sendable (String) -> Void
    /// Where the statuspage channel publishes (nil outside `herald serve`).
    public var statusBoard: (any StatusBoard)?
    /// Where the subscribers channel finds its recipients (nil outside `herald serve`).
    public var subscribers: (any SubscriberDirectory)?

    public init(transport: any HTTPTransport, timeout: Duration = .seconds(30),
                console: @escaping @Sendable (String) -> Void = ConsoleChannel.standardOutput,
                statusBoard: (any StatusBoard)? = nil, subscribers: (any SubscriberDirectory)? = nil) {
        self.transport = transport
        self.timeout = timeout
        self.console = console
        self.statusBoard = statusBoard
        self.subscribers = subscribers
    }
}

extension Channel {
    /// Rendered words cut to this channel's limits (title and body).
    public func fitted(_ rendered: (title: String, text: String)) -> (title: String, text: String) {
        (limits.maxTitle.map { rendered.title.truncated(to: $0) } ?? rendered.title,
         limits.maxBody.map { rendered.text.truncated(to: $0) } ?? rendered.text)
    }
}
