/// Why an attempt did not deliver, as a channel adapter classifies it. Adapters never retry or
/// sleep themselves: they say whether a retry could help, and the dispatcher decides.
public struct DeliveryError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A bounded set, usable as a metrics label.
    public enum Reason: String, Sendable, CaseIterable {
        case clientError, rateLimited, serverError, network, timeout, tls, configuration, auth, rejected, other
    }

    /// Whether another attempt may succeed.
    public var isTransient: Bool
    public var reason: Reason
    /// The provider's status (HTTP status, SMTP reply code) when there was one.
    public var status: Int?
    /// When the provider said to come back (`Retry-After`, `retry_after`).
    public var retryAfter: Duration?
    /// What happened, with the start of the provider's answer. Secrets are removed before it is
    /// stored or shown, but adapters must not put them here in the first place.
    public var detail: String

    public init(isTransient: Bool, reason: Reason, status: Int? = nil, retryAfter: Duration? = nil, detail: String) {
        self.isTransient = isTransient
        self.reason = reason
        self.status = status
        self.retryAfter = retryAfter
        self.detail = detail
    }

    public static func transient(_ reason: Reason, status: Int? = nil, retryAfter: Duration? = nil, _ detail: String) -> DeliveryError {
        DeliveryError(isTransient: true, reason: reason, status: status, retryAfter: retryAfter, detail: detail)
    }

    public static func permanent(_ reason: Reason, status: Int? = nil, _ detail: String) -> DeliveryError {
        DeliveryError(isTransient: false, reason: reason, status: status, detail: detail)
    }

    public var description: String {
        var s = reason.rawValue
        if let status { s += " \(status)" }
        if !detail.isEmpty { s += ": \(detail)" }
        return s
    }
}
