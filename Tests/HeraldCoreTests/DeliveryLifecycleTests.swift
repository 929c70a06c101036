import Foundation
import Testing
@testable import HeraldCore

@Suite struct DeliveryLifecycleTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = RetryPolicy(initial: .seconds(1), max: .seconds(60), maxAttempts: 3, maxAge: .seconds(3600))

    @Test func successFromClaimIsDelivered() {
        var m = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        let r1 = m.claim()
        #expect(r1)
        let s86 = m.succeeded(reference: "ref-1")
        #expect(s86 == .markDelivered(reference: "ref-1"))
        #expect(m.state == .delivered)
        #expect(m.attempts == 1)
        // A final state ignores late answers and cannot be claimed again.
        let r2 = m.claim()
        #expect(!r2)
        let s55 = m.succeeded(reference: "x")
        #expect(s55 == .ignore)
    }

    @Test func transientErrorSchedulesRetryWithinBackoffCeiling() {
        var m = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        _ = m.claim()
        let now = t0.addingTimeInterval(5)
        let action = m.failed(.transient(.serverError, status: 503, "HTTP 503"), now: now, policy: policy, random: 1)
        #expect(action == .scheduleRetry(at: now.addingTimeInterval(1)))
        #expect(m.state == .retrying)
        _ = m.claim()
        // Second failure: ceiling doubles to 2 s; random 0.5 gives 1 s.
        let f1356 = m.failed(.transient(.network, "reset"), now: now, policy: policy, random: 0.5)
        #expect(f1356 == .scheduleRetry(at: now.addingTimeInterval(1)))
    }

    @Test func retryAfterIsHonouredUpToMax() {
        var m = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        _ = m.claim()
        let now = t0
        let g1698 = m.failed(.transient(.rateLimited, status: 429, retryAfter: .seconds(7), "slow down"), now: now, policy: policy, random: 0)
        #expect(g1698 == .scheduleRetry(at: now.addingTimeInterval(7)))
        _ = m.claim()
        let g1925 = m.failed(.transient(.rateLimited, status: 429, retryAfter: .seconds(600), "slow down"), now: now, policy: policy, random: 0)
        #expect(g1925 == .scheduleRetry(at: now.addingTimeInterval(60)))
    }

    @Test func permanentErrorFailsAtOnceWithReason() {
        var m = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        _ = m.claim()
        let action = m.failed(.permanent(.clientError, status: 404, "HTTP 404: no such hook"), now: t0, policy: policy, random: 0.3)
        #expect(action == .markFailed(reason: "clientError 404: HTTP 404: no such hook"))
        #expect(m.state == .failed)
    }

    @Test func exhaustedAttemptsFail() {
        var m = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        for _ in 0..<2 {
            _ = m.claim()
            guard case .scheduleRetry = m.failed(.transient(.serverError, status: 500, "HTTP 500"), now: t0, policy: policy, random: 0) else {
                Issue.record("expected a retry")
                return
            }
        }
        _ = m.claim()
        let action = m.failed(.transient(.serverError, status: 500, "HTTP 500"), now: t0, policy: policy, random: 0)
        #expect(action == .markFailed(reason: "gave up after 3 attempts; last error: serverError 500: HTTP 500"))
    }

    @Test func maxAgeStopsRetries() {
        var m = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        _ = m.claim()
        let late = t0.addingTimeInterval(3599.5)
        let action = m.failed(.transient(.timeout, "timed out"), now: late, policy: policy, random: 1)
        #expect(action == .markFailed(reason: "gave up: older than max_age 1h; last error: timeout: timed out"))
    }

    @Test func replayResetsBudgetOnlyFromFailed() {
        var m = DeliveryLifecycle(state: .failed, attempts: 3, since: t0)
        let later = t0.addingTimeInterval(7200)
        let r3 = m.replay(now: later)
        #expect(r3)
        #expect(m.state == .queued && m.attempts == 0 && m.since == later)
        let r4 = m.replay(now: later)
        #expect(!r4)
    }

    @Test func releaseReturnsToWaitingWithoutCountingAnAttempt() {
        var fresh = DeliveryLifecycle(state: .queued, attempts: 0, since: t0)
        _ = fresh.claim()
        fresh.release()
        #expect(fresh.state == .queued && fresh.attempts == 0)
        var retried = DeliveryLifecycle(state: .retrying, attempts: 2, since: t0)
        _ = retried.claim()
        retried.release()
        #expect(retried.state == .retrying && retried.attempts == 2)
    }

    @Test func supersedeOnlyWhileWaiting() {
        var waiting = DeliveryLifecycle(state: .retrying, attempts: 1, since: t0)
        let r5 = waiting.supersede()
        #expect(r5)
        #expect(waiting.state == .superseded)
        var sent = DeliveryLifecycle(state: .delivered, attempts: 1, since: t0)
        let r6 = sent.supersede()
        #expect(!r6)
    }
}
