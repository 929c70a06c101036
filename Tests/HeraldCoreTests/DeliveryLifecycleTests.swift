import Foundation
import Testing
@testable import HeraldCore

/// The delivery state machine the stores run: the dispatcher's verdict on a failed attempt, and
/// what an outcome, a release or a replay does to the stored delivery.
@Suite struct DeliveryLifecycleTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = RetryPolicy(initial: .seconds(1), max: .seconds(60), maxAttempts: 3, maxAge: .seconds(3600))

    func current(_ state: DeliveryState = .inFlight, _ kind: DeliveryKind = .notice, lease: String? = "L", closed: Bool = false,
                 attempts: Int = 0) -> DeliveryLifecycle.Current {
        .init(state: state, kind: kind, lease: lease, cycleClosed: closed, attempts: attempts)
    }

    // MARK: The dispatcher's verdict

    @Test func transientErrorRetriesWithinTheBackoffCeiling() {
        let now = t0.addingTimeInterval(5)
        #expect(DeliveryLifecycle.judge(.transient(.serverError, status: 503, "HTTP 503"), attempts: 1, since: t0, now: now,
                                        policy: policy, random: 1) == .retry(at: now.addingTimeInterval(1)))
        // Second failure: ceiling doubles to 2 s; random 0.5 gives 1 s.
        #expect(DeliveryLifecycle.judge(.transient(.network, "reset"), attempts: 2, since: t0, now: now, policy: policy,
                                        random: 0.5) == .retry(at: now.addingTimeInterval(1)))
    }

    @Test func retryAfterIsHonouredUpToMax() {
        #expect(DeliveryLifecycle.judge(.transient(.rateLimited, status: 429, retryAfter: .seconds(7), "slow down"), attempts: 1,
                                        since: t0, now: t0, policy: policy, random: 0) == .retry(at: t0.addingTimeInterval(7)))
        #expect(DeliveryLifecycle.judge(.transient(.rateLimited, status: 429, retryAfter: .seconds(600), "slow down"), attempts: 2,
                                        since: t0, now: t0, policy: policy, random: 0) == .retry(at: t0.addingTimeInterval(60)))
    }

    @Test func permanentErrorFailsAtOnceWithReason() {
        #expect(DeliveryLifecycle.judge(.permanent(.clientError, status: 404, "HTTP 404: no such hook"), attempts: 1, since: t0,
                                        now: t0, policy: policy, random: 0.3) == .failed(reason: "clientError 404: HTTP 404: no such hook"))
    }

    @Test func exhaustedAttemptsAndMaxAgeFail() {
        #expect(DeliveryLifecycle.judge(.transient(.serverError, status: 500, "HTTP 500"), attempts: 3, since: t0, now: t0,
                                        policy: policy, random: 0)
                == .failed(reason: "gave up after 3 attempts; last error: serverError 500: HTTP 500"))
        #expect(DeliveryLifecycle.judge(.transient(.timeout, "timed out"), attempts: 1, since: t0, now: t0.addingTimeInterval(3599.5),
                                        policy: policy, random: 1)
                == .failed(reason: "gave up: older than max_age 1h; last error: timeout: timed out"))
        // A clock that went backwards, or a budget from the far past, never traps.
        _ = DeliveryLifecycle.judge(.transient(.timeout, "x"), attempts: 1, since: .distantFuture, now: t0, policy: policy, random: 1)
        _ = DeliveryLifecycle.judge(.transient(.timeout, "x"), attempts: 1, since: .distantPast, now: t0, policy: policy, random: 1)
    }

    // MARK: Outcomes, fenced by the lease

    /// One row per rule: (what is stored, what arrives) → (new state, effects).
    @Test(arguments: [
        // The lease holder's answer while the cycle is open.
        ("notice delivered", DeliveryKind.notice, false, DeliveryOutcome.delivered(reference: "r"), DeliveryState?.some(.delivered), [DeliveryLifecycle.Effect.updatesDue]),
        ("update delivered", .update, false, .delivered(reference: "r"), .delivered, []),
        ("all-clear delivered", .allClear, true, .delivered(reference: "r"), .delivered, []),
        ("notice retries", .notice, false, .retry(at: Date(timeIntervalSince1970: 1_800_000_060)), .retrying, []),
        ("notice fails", .notice, false, .failed(reason: "gone"), .failed, [.supersedeUpdates, .fallback]),
        ("update fails", .update, false, .failed(reason: "gone"), .failed, []),
        // After the resolve: a notice or update that did not arrive is never sent again.
        ("notice retries after the resolve", .notice, true, .retry(at: Date(timeIntervalSince1970: 1_800_000_060)), .superseded,
         [.supersedeUpdates, .allClearBecomesSummary]),
        ("notice fails after the resolve", .notice, true, .failed(reason: "gone"), .superseded, [.supersedeUpdates, .allClearBecomesSummary]),
        ("update retries after the resolve", .update, true, .retry(at: Date(timeIntervalSince1970: 1_800_000_060)), .superseded, []),
        ("all-clear retries", .allClear, true, .retry(at: Date(timeIntervalSince1970: 1_800_000_060)), .retrying, []),
        ("summary fails", .summary, true, .failed(reason: "gone"), .failed, []),
        ("notice released after the resolve", .notice, true, .released, .superseded, [.supersedeUpdates, .allClearBecomesSummary]),
        ("notice released", .notice, false, .released, .queued, []),
    ] as [(String, DeliveryKind, Bool, DeliveryOutcome, DeliveryState?, [DeliveryLifecycle.Effect])])
    func outcome(_ name: String, _ kind: DeliveryKind, _ closed: Bool, _ outcome: DeliveryOutcome, _ state: DeliveryState?,
                 _ effects: [DeliveryLifecycle.Effect]) {
        let change = DeliveryLifecycle.outcome(outcome, lease: "L", current: current(.inFlight, kind, closed: closed))
        #expect(change.state == state, "\(name)")
        #expect(change.effects == effects, "\(name)")
        if case .retry(let at) = outcome, state == .retrying { #expect(change.dueAt == at) }
        if case .released = outcome { #expect(!change.countsAttempt) } else { #expect(change.countsAttempt) }
    }

    @Test func onlyTheLeaseHolderChangesADelivery() {
        // Another claim's answer (its lease expired and passed on), or any answer once it is not in flight.
        for c in [current(.inFlight, lease: "NEW"), current(.delivered, lease: nil), current(.queued, lease: nil),
                  current(.superseded, lease: nil)] {
            let change = DeliveryLifecycle.outcome(.failed(reason: "late"), lease: "OLD", current: c)
            #expect(change.isLate && change.state == nil && change.effects.isEmpty)
        }
    }

    @Test func releaseReturnsToWaitingWithoutCountingAnAttempt() {
        #expect(DeliveryLifecycle.release(current(attempts: 0)).state == .queued)
        #expect(DeliveryLifecycle.release(current(attempts: 2)).state == .retrying)
        #expect(DeliveryLifecycle.release(current(.inFlight, .update, closed: true, attempts: 1)).state == .superseded)
        #expect(DeliveryLifecycle.release(current(.inFlight, .allClear, closed: true, attempts: 1)).state == .retrying)
        #expect(DeliveryLifecycle.release(current(.delivered)).isLate)
    }

    @Test func replayOnlyFromFailedAndNeverANoticeOfAClosedCycle() {
        #expect(DeliveryLifecycle.replayable(current(.failed, .notice, lease: nil)))
        #expect(DeliveryLifecycle.replayable(current(.failed, .allClear, lease: nil, closed: true)))
        #expect(DeliveryLifecycle.replayable(current(.failed, .summary, lease: nil, closed: true)))
        #expect(!DeliveryLifecycle.replayable(current(.failed, .notice, lease: nil, closed: true)))
        #expect(!DeliveryLifecycle.replayable(current(.failed, .update, lease: nil, closed: true)))
        #expect(!DeliveryLifecycle.replayable(current(.delivered, .notice, lease: nil)))
    }
}
