import Foundation
import Testing
@testable import HeraldDispatcher

/// A lane sleeps until the next retry or rate token is due. However far that is — a provider's
/// wait of 100 years, a rate of one start a century, a date no clock reaches — the sleep neither
/// traps converting the deadline nor stops the lane from answering a wake-up. (Before, a deadline
/// 1e30 s away stopped the process converting it to whole milliseconds.)
@Suite struct FarDeadlineTests {
    @Test(arguments: [1e12, 1e30, Double.greatestFiniteMagnitude, .infinity, .nan])
    func aWaitForAFarDeadlineStillEndsOnASignal(_ seconds: Double) async {
        let wakeup = Wakeup()
        let deadline = Date(timeIntervalSinceNow: seconds)
        // The waiter's own signal ends the wait: the positive event that must come after the
        // timer was set up (a trap in that setup would have ended the process before it).
        let waiting = Task { await wakeup.wait(until: deadline) }
        wakeup.signal()
        await waiting.value
        // A signal sent before the wait is kept, so a second wait also returns at once.
        wakeup.signal()
        await wakeup.wait(until: deadline)
    }

    @Test func aPastDeadlineReturnsAtOnce() async {
        // Nothing signals: only the deadline can end these waits.
        await Wakeup().wait(until: Date(timeIntervalSinceNow: -1))
        await Wakeup().wait(until: Date(timeIntervalSinceNow: -.infinity))
        await Wakeup().wait(until: .distantPast)
    }

    @Test func aHugeRateCountsTokensWithoutOverflowing() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var limiter = RateLimiter(rate: 1e300, now: now)
        #expect(limiter.available(now) > 1_000_000)
        limiter.take(5, now)
        #expect(limiter.available(now.addingTimeInterval(1)) > 1_000_000)
    }

    @Test func aTinyRateGivesAFarButRealNextStart() async {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var limiter = RateLimiter(rate: 1e-300, now: now)
        #expect(limiter.available(now) == 1)
        limiter.take(1, now)
        #expect(limiter.available(now) == 0)
        let next = limiter.nextStart(now)
        #expect(next > now.addingTimeInterval(1e12))
        // The lane would wait for it; a signal still ends that wait.
        let wakeup = Wakeup()
        wakeup.signal()
        await wakeup.wait(until: next)
    }
}
