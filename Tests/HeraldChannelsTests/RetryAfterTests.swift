import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport
import Testing

/// `Retry-After` as the shared classifier reads it for every HTTP channel (RFC 9110 §10.2.3:
/// delay-seconds or an HTTP-date). Values that are no wait are ignored; huge ones are clamped to
/// `Duration.longestAccepted` — before, `1e30`, `9223372036854775808` and `99999999999999999999`
/// stopped the process converting to Int64, on every restart, since the delivery was re-queued.
@Suite struct RetryAfterTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000) // 2027-01-15T08:00:00Z
    static let cap = Duration.longestAccepted

    static func answer(_ value: String, status: Int = 429) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Retry-After", value)], body: Array("slow down".utf8))
    }

    static let cases: [(String, Duration?)] = [
        ("7", .seconds(7)),
        (" 7 ", .seconds(7)),
        ("0", .zero),
        ("1.5", .milliseconds(1500)),
        ("nan", nil),
        ("NaN", nil),
        ("-inf", nil),
        ("inf", nil),
        ("+infinity", nil),
        ("1e30", cap),
        ("9223372036854775808", cap),
        ("99999999999999999999", cap),
        ("-5", nil),
        ("abc", nil),
        ("", nil),
        // HTTP dates: 90 s ahead, far ahead, in the past.
        ("Fri, 15 Jan 2027 08:01:30 GMT", .seconds(90)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", cap),
        ("Thu, 01 Jan 1970 00:00:00 GMT", .zero),
        ("Sun, 06 Nov 1994 08:49:37 GMT", .zero),
    ]

    @Test(arguments: cases.indices)
    func retryAfterIsIgnoredOrClampedNeverATrap(_ i: Int) {
        let (value, expected) = Self.cases[i]
        #expect(HTTPClassifier.retryAfter(Self.answer(value), now: Self.now) == expected, "Retry-After: \(value)")
    }

    /// What a channel hands the dispatcher: still a transient rate limit, with the wait or without.
    @Test func aHostileRetryAfterStillClassifiesAsARetry() {
        for (value, expected) in Self.cases {
            for status in [429, 503, 408] {
                do {
                    try HTTPClassifier.check(Self.answer(value, status: status), now: Self.now)
                    Issue.record("HTTP \(status) passed the classifier")
                } catch let error as DeliveryError {
                    #expect(error.isTransient && error.status == status && error.retryAfter == expected, "\(status) Retry-After: \(value)")
                } catch {
                    Issue.record("unexpected \(error)")
                }
            }
        }
    }
}
