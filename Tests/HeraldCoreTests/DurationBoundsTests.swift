import Foundation
import Testing
import HeraldCore

/// Durations from outside never trap: a provider's wait is ignored when it is no wait and clamped
/// when huge; a config or API duration above 100 years is refused. Before the bounds, every
/// "huge" row here stopped the process converting a Double to Int64.
@Suite struct DurationBoundsTests {
    static let cap = Duration.longestAccepted

    @Test func longestAcceptedIsOneHundredYearsOfDays() {
        #expect(Self.cap == .seconds(36_500 * 86_400))
        #expect(Duration(parsing: "36500d") == Self.cap)
    }

    /// (seconds as a provider writes them, the wait Herald takes; nil: as if no wait was given)
    static let providerSeconds: [(String, Duration?)] = [
        ("0", .zero),
        ("2.5", .milliseconds(2500)),
        ("120", .seconds(120)),
        ("nan", nil),
        ("-nan", nil),
        ("inf", nil),
        ("-inf", nil),
        ("infinity", nil),
        ("-5", nil),
        ("-0.001", nil),
        ("1e30", cap),
        ("9223372036854775808", cap),
        ("99999999999999999999", cap),
        ("3153600001", cap),
        ("3153599999", .seconds(3_153_599_999)),
        ("1e-300", .zero),
    ]

    @Test(arguments: providerSeconds.indices)
    func aProviderWaitInSecondsIsIgnoredOrClamped(_ i: Int) throws {
        let (text, expected) = Self.providerSeconds[i]
        let seconds = try #require(Double(text), "\(text) is a Double")
        #expect(Duration(clampingSeconds: seconds) == expected, "\(text)")
    }

    @Test func aSmallerCapClampsAndNeverExceedsLongestAccepted() {
        #expect(Duration(clampingSeconds: 1e30, cap: .seconds(300)) == .seconds(300))
        #expect(Duration(clampingSeconds: 12, cap: .seconds(300)) == .seconds(12))
        #expect(Duration(clampingSeconds: 1e30, cap: .seconds(Int64.max)) == Self.cap)
        #expect(Duration(clampingSeconds: 5, cap: .seconds(-1)) == .zero)
    }

    @Test func aResetTimeIsAWaitFromNow() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(Duration(untilEpochSeconds: 1_800_000_030, now: now) == .seconds(30))
        #expect(Duration(untilEpochSeconds: 1_799_999_000, now: now) == .zero, "a past reset: no wait")
        #expect(Duration(untilEpochSeconds: 0, now: now) == .zero)
        #expect(Duration(untilEpochSeconds: 1e30, now: now) == Self.cap)
        #expect(Duration(untilEpochSeconds: 99999999999999999999, now: now) == Self.cap)
        for nonsense in [Double.nan, .infinity, -.infinity, -5] {
            #expect(Duration(untilEpochSeconds: nonsense, now: now) == nil, "\(nonsense)")
        }
        #expect(Duration(until: now.addingTimeInterval(90), now: now) == .seconds(90))
        #expect(Duration(until: now.addingTimeInterval(-90), now: now) == .zero)
        #expect(Duration(until: Date(timeIntervalSince1970: 1e30), now: now) == Self.cap)
        #expect(Duration(until: .distantFuture, now: now) == Self.cap)
        #expect(Duration(until: Date(timeIntervalSince1970: .infinity), now: now) == nil)
        #expect(Duration(until: Date(timeIntervalSince1970: .nan), now: now) == nil)
    }

    @Test func parsingRefusesDurationsAboveTheCapWithoutOverflowing() {
        #expect(Duration(parsing: "99999999999999999999d") == nil)
        #expect(Duration(parsing: "9223372036854775808ms") == nil)
        #expect(Duration(parsing: "36501d") == nil)
        #expect(Duration(parsing: "36500d1ms") == nil)
        #expect(Duration(parsing: "876001h") == nil)
        #expect(Duration(parsing: String(repeating: "9", count: 400) + "s") == nil, "a run of digits that is +inf as a Double")
        #expect(Duration(parsing: "1e30s") == nil)
        #expect(Duration(parsing: "inf") == nil)
        #expect(Duration(parsing: "nan") == nil)
        #expect(Duration(parsing: "36499d23h59m59s999ms") == Self.cap - .milliseconds(1))
    }

    @Test func everyDurationFormatsWithoutOverflowing() {
        #expect(Self.cap.formatted == "\(36_500 * 24)h")
        #expect(Duration.seconds(Int64.max).formatted == "\(Int64.max)s")
        #expect(Duration.seconds(Int64.min).formatted == "\(Int64.min)s")
        #expect(Duration.milliseconds(1500).formatted == "1.5s")
    }

    @Test func backoffNeverOverflowsWhateverThePolicy() {
        let huge = RetryPolicy(initial: .seconds(Int64.max / 2), max: .seconds(Int64.max), maxAttempts: 5, maxAge: .seconds(Int64.max))
        #expect(huge.delay(afterAttempts: 50, random: 1) == Self.cap)
        #expect(huge.delay(afterAttempts: 1, random: .nan) == .zero)
        #expect(RetryPolicy.default.delay(afterAttempts: 1, retryAfter: Self.cap, random: 0) == RetryPolicy.default.max)
    }
}
