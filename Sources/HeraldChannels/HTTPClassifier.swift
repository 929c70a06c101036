import Foundation
import HeraldCore
import HeraldTransport

/// The one place that turns an HTTP exchange into success, retry or failure, for every
/// HTTP-based channel: 2xx succeeds; 408, 425, 429 and 5xx retry (honouring `Retry-After`);
/// any other status fails now. The error carries the status and the start of the answer.
public enum HTTPClassifier {
    /// How much of a provider's answer goes into an error.
    public static let excerptLength = 300

    /// Sends and classifies. Transport failures are transient, except a request that can never
    /// work (malformed URL, unsupported scheme).
    public static func send(_ request: HTTPRequest, via transport: any HTTPTransport) async throws -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch let error as TransportError {
            throw classify(error)
        }
        try check(response)
        return response
    }

    public static func classify(_ error: TransportError) -> DeliveryError {
        switch error.kind {
        case .invalidRequest:
            return .permanent(.configuration, error.message)
        case .timeout:
            return .transient(.timeout, error.message)
        case .tls:
            return .transient(.tls, error.message)
        case .shutdown:
            return .transient(.other, "herald is shutting down")
        default:
            return .transient(.network, error.message)
        }
    }

    public static func check(_ response: HTTPResponse, now: Date = Date()) throws {
        let status = response.status
        if (200..<300).contains(status) { return }
        let detail = "HTTP \(status)" + excerpt(response.body).map { ": \($0)" }.orEmpty
        switch status {
        case 429:
            throw DeliveryError.transient(.rateLimited, status: status, retryAfter: retryAfter(response, now: now), detail)
        case 408, 425:
            throw DeliveryError.transient(.timeout, status: status, retryAfter: retryAfter(response, now: now), detail)
        case 500...599:
            throw DeliveryError.transient(.serverError, status: status, retryAfter: retryAfter(response, now: now), detail)
        case 401, 403:
            throw DeliveryError.permanent(.auth, status: status, detail)
        default:
            throw DeliveryError.permanent(.clientError, status: status, detail)
        }
    }

    /// `Retry-After` as seconds or as an HTTP date. A value that is no wait (NaN, ±infinity,
    /// negative, unparseable) counts as absent; a wait longer than `Duration.longestAccepted`
    /// (100 years) is that long, and a past date is zero. `RetryPolicy.delay` then caps it at the
    /// channel's `retry.max`.
    public static func retryAfter(_ response: HTTPResponse, now: Date = Date()) -> Duration? {
        guard let value = response.header("Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(value) {
            return Duration(clampingSeconds: seconds)
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return Duration(until: date, now: now)
    }

    /// The start of a body as one line of text, or nil when empty.
    public static func excerpt(_ body: [UInt8]) -> String? {
        guard !body.isEmpty else { return nil }
        let text = String(decoding: body.prefix(excerptLength * 4), as: UTF8.self)
            .split(whereSeparator: \.isNewline).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? nil : text.truncated(to: excerptLength)
    }
}

extension Optional where Wrapped == String {
    var orEmpty: String { self ?? "" }
}
