import Foundation
import Testing
@testable import HeraldCore
@testable import HeraldStore

/// Retention checks, run on every store by `StoreConformanceTests` (see `ConformanceCheck`).
extension Conformance {
    static let day: TimeInterval = 86_400

    func days(_ n: Double) -> Date { t0.addingTimeInterval(n * Self.day) }

    /// Default periods (90d deliveries, 48h keys, 365d posts and incidents) at `now`.
    func prune(at now: Date, limit: Int = 500, retention: RetentionConfig = RetentionConfig()) async throws -> [String: Int] {
        try await store.pruneAll(retention.cutoffs(now: now), limit: limit)
    }

    /// Every delivery of an incident, whatever its cycle, as `kind:state`.
    func allStates(_ incident: String) async throws -> [String] {
        try await store.deliveries(DeliveryFilter(incident: incident, limit: 1000))
            .map { "\($0.kind.rawValue):\($0.state.rawValue)" }.sorted()
    }

    /// Old finished history goes (deliveries with their attempts); an open incident's deliveries,
    /// work still waiting or in flight, and every delivery of a cycle with such work stay, however
    /// old; the pass walks past what stays (a batch of 2 rows at a time).
    func pruningRemovesFinishedHistoryAndKeepsOpenWaitingAndInFlightWork() async throws {
        // "done": told on a, failed on b, resolved a minute later: all-clear and summary delivered.
        _ = try await store.enqueue([EnqueueRequest(event: event("done", .triggered, at: t0), channels: ["a", "b"])], now: t0)
        let toldA = try await claim("a", limit: 1)
        try await answer(toldA[0], .delivered(reference: "m-a"), status: 200)
        let failedB = try await claim("b", limit: 1)
        try await answer(failedB[0], .failed(reason: "clientError 404"), status: 404)
        let t1 = t0.addingTimeInterval(60)
        _ = try await store.enqueue([EnqueueRequest(event: event("done", .resolved, at: t1), channels: ["a", "b"])], now: t1)
        for ch in ["a", "b"] {
            let c = try await claim(ch, limit: 1, at: t1)
            try await answer(c[0], .delivered(reference: "r-\(ch)"), status: 200, at: t1)
        }
        // "open": told, never resolved.
        _ = try await store.enqueue([EnqueueRequest(event: event("open", .triggered, at: t0), channels: ["o"])], now: t0)
        try await answer(try await claim("o", limit: 1)[0], .delivered(reference: "m-o"), status: 200)
        // "waiting": resolved, but its all-clear on w never went out (queued).
        _ = try await store.enqueue([EnqueueRequest(event: event("waiting", .triggered, at: t0), channels: ["w"])], now: t0)
        try await answer(try await claim("w", limit: 1)[0], .delivered(reference: "m-w"), status: 200)
        _ = try await store.enqueue([EnqueueRequest(event: event("waiting", .resolved, at: t1), channels: ["w"])], now: t1)
        // "flying": resolved, its all-clear on f claimed and never answered (in flight).
        _ = try await store.enqueue([EnqueueRequest(event: event("flying", .triggered, at: t0), channels: ["f"])], now: t0)
        try await answer(try await claim("f", limit: 1)[0], .delivered(reference: "m-f"), status: 200)
        _ = try await store.enqueue([EnqueueRequest(event: event("flying", .resolved, at: t1), channels: ["f"])], now: t1)
        let flying = try await claim("f", limit: 1, at: t1, lease: 3600)
        #expect(flying.map(\.delivery.kind) == [.allClear])

        // 89 days on, nothing is old enough.
        #expect(try await prune(at: days(89)).values.reduce(0, +) == 0)
        #expect(try await store.deliveries(DeliveryFilter(limit: 1000)).count == 9)

        // 91 days on: "done" is history; everything else stays.
        let removed = try await prune(at: days(91), limit: 2)
        #expect(removed["deliveries"] == 4 && removed["attempts"] == 4, "\(removed)")
        #expect(try await allStates("done").isEmpty)
        #expect(try await store.delivery(id: toldA[0].delivery.id) == nil)
        #expect(try await allStates("open") == ["notice:delivered"])
        #expect(try await allStates("waiting") == ["all_clear:queued", "notice:delivered"])
        #expect(try await allStates("flying") == ["all_clear:in_flight", "notice:delivered"])
        // What stays still works: the waiting all-clear is claimed threaded onto its notice, and the
        // one in flight is recorded under its lease.
        let clear = try await claim("w", limit: 1, at: days(91))
        #expect(clear.first?.thread == "m-w")
        try await answer(flying[0], .delivered(reference: "r-f"), status: 200, at: days(91))
        #expect(try await allStates("flying") == ["all_clear:delivered", "notice:delivered"])
        // The incidents and the events of their last cycle are their history: kept for a year.
        let done = try #require(try await store.incident(key: "done"))
        #expect(done.incident.status == .resolved && done.events.count == 2 && done.deliveries.isEmpty)
        #expect(try await store.incident(key: "open")?.incident.status == .open)
        // A second pass at the same time has nothing more to do.
        #expect(try await prune(at: days(91)).values.reduce(0, +) == 0)
    }

    /// A resolved incident goes with its history once resolved for the incidents' period (and not
    /// before); an open one never does. An earlier cycle's events go with its deliveries. Status
    /// posts go after their period unless the page still shows their incident.
    func prunedIncidentsGoWithTheirHistoryAfterTheirPeriod() async throws {
        func post(_ id: String, _ incident: String, at: Date) -> StatusPost {
            StatusPost(id: id, incident: incident, kind: .notice, status: .triggered, severity: .critical, title: incident,
                       message: nil, components: ["api"], link: nil, openedAt: at, resolvedAt: nil, postedAt: at)
        }
        let t1 = t0.addingTimeInterval(60)
        // "gone": one cycle, resolved at t1.
        _ = try await store.enqueue([EnqueueRequest(event: event("gone", .triggered, at: t0), channels: ["a"])], now: t0)
        try await answer(try await claim("a", limit: 1)[0], .delivered(reference: "m1"), status: 200)
        _ = try await store.enqueue([EnqueueRequest(event: event("gone", .resolved, at: t1), channels: ["a"])], now: t1)
        try await answer(try await claim("a", limit: 1, at: t1)[0], .delivered(reference: "r1"), status: 200, at: t1)
        try await store.publishStatus(post("p-gone", "gone", at: t0))
        // "forever": open since t0.
        _ = try await store.enqueue([EnqueueRequest(event: event("forever", .triggered, at: t0), channels: ["a"])], now: t0)
        try await answer(try await claim("a", limit: 1)[0], .delivered(reference: "m2"), status: 200)
        try await store.publishStatus(post("p-forever", "forever", at: t0))
        // "again": cycle 1 resolved at t1; cycle 2 opened on day 360 and resolved on day 361.
        _ = try await store.enqueue([EnqueueRequest(event: event("again", .triggered, at: t0), channels: ["a"])], now: t0)
        try await answer(try await claim("a", limit: 1)[0], .delivered(reference: "m3"), status: 200)
        _ = try await store.enqueue([EnqueueRequest(event: event("again", .resolved, at: t1), channels: ["a"])], now: t1)
        try await answer(try await claim("a", limit: 1, at: t1)[0], .delivered(reference: "r3"), status: 200, at: t1)
        let reopened = event("again", .triggered, at: days(360))
        _ = try await store.enqueue([EnqueueRequest(event: reopened, channels: ["a"])], now: days(360))
        try await answer(try await claim("a", limit: 1, at: days(360))[0], .delivered(reference: "m4"), status: 200, at: days(360))
        let reresolved = event("again", .resolved, at: days(361))
        _ = try await store.enqueue([EnqueueRequest(event: reresolved, channels: ["a"])], now: days(361))
        try await answer(try await claim("a", limit: 1, at: days(361))[0], .delivered(reference: "r4"), status: 200, at: days(361))
        try await store.publishStatus(post("p-again", "again", at: t0))

        // Day 364: deliveries of the first cycles are gone (cycle 1 of "again" with its events:
        // an earlier cycle); the incidents, their last cycle's events and the posts stay.
        let early = try await prune(at: days(364))
        #expect(early["deliveries"] == 4 && early["events"] == 2 && early["incidents"] == 0, "\(early)")
        #expect(try await allStates("again") == ["all_clear:delivered", "notice:delivered"])
        let again = try #require(try await store.incident(key: "again"))
        #expect(again.events.map(\.id) == [reopened.id, reresolved.id])
        #expect(try await store.incident(key: "gone")?.events.count == 2)
        #expect(try await store.statusPosts(limit: 10).count == 3)

        // Day 366: "gone" was resolved more than a year ago: it goes with its events and post.
        // "forever" is open: it stays with its post. "again" was resolved on day 361: it stays, and
        // so does its post (the page still shows the incident).
        let late = try await prune(at: days(366))
        #expect(late["incidents"] == 1 && late["events"] == 2 && late["status_posts"] == 1, "\(late)")
        #expect(try await store.incident(key: "gone") == nil)
        #expect(try await store.incident(key: "forever")?.incident.status == .open)
        #expect(try await store.incident(key: "forever")?.events.count == 1)
        #expect(try await allStates("forever") == ["notice:delivered"])
        #expect(try await store.incident(key: "again")?.events.count == 2)
        #expect(Set(try await store.statusPosts(limit: 10).map(\.id)) == ["p-forever", "p-again"])

        // A key whose incident was pruned starts over: a trigger opens it and pages again.
        let back = try await store.enqueue([EnqueueRequest(event: event("gone", .triggered, at: days(367)), channels: ["a"])],
                                           now: days(367))
        if case .accepted(let a) = back.first {
            #expect(a.transition == "opened" && a.deliveries == 1)
        } else {
            Issue.record("expected the trigger to be accepted: \(back)")
        }

        // Periods of `forever` keep everything: nothing is pruned 100 years on.
        #expect(try await prune(at: days(36_500), retention: .forever).values.reduce(0, +) == 0)
        #expect(try await store.incident(key: "again") != nil)
    }

    /// An `Idempotency-Key` answers with the first result for its period, then is forgotten: the
    /// same key is a new event.
    func pruningForgetsIdempotencyKeysAfterTheirPeriod() async throws {
        let idem = EnqueueRequest.Idempotency(scope: "cli", key: "send-1", bodyHash: "h1")
        let first = event("disk", .triggered, at: t0)
        _ = try await store.enqueue([EnqueueRequest(event: first, channels: ["a"], idempotency: idem)], now: t0)
        for i in 0..<7 {
            _ = try await store.enqueue([EnqueueRequest(event: event("k\(i)", .triggered, at: t0), channels: [],
                                                        idempotency: .init(scope: "cli", key: "k\(i)", bodyHash: "x"))], now: t0)
        }
        #expect(try await prune(at: t0.addingTimeInterval(47 * 3600))["idempotency"] ?? 0 == 0)
        let repeated = try await store.enqueue([EnqueueRequest(event: event("disk", .triggered, at: t0), channels: ["a"], idempotency: idem)],
                                               now: t0.addingTimeInterval(47 * 3600))
        #expect(repeated == [.repeated(.init(eventId: first.id, incident: "disk", deliveries: 1, channels: [], transition: "opened"))])
        // Batches of 3: the stage goes on until every old key is gone.
        #expect(try await prune(at: t0.addingTimeInterval(49 * 3600), limit: 3)["idempotency"] == 8)
        let second = event("disk", .resolved, at: t0.addingTimeInterval(49 * 3600))
        let fresh = try await store.enqueue([EnqueueRequest(event: second, channels: ["a"], idempotency: idem)],
                                            now: t0.addingTimeInterval(49 * 3600))
        if case .accepted(let a) = fresh.first {
            #expect(a.eventId == second.id)
        } else {
            Issue.record("a forgotten key must make a new event: \(fresh)")
        }
    }

    /// /metrics' queue depth: the waiting states only, equal to the full count of those states.
    func waitingCountsAreTheWaitingStates() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("q", .triggered, at: t0), channels: ["a", "b", "c", "d"])], now: t0)
        try await answer(try await claim("a", limit: 1)[0], .delivered(reference: nil), status: 200)
        let b = try await claim("b", limit: 1)
        try await store.record([AttemptRecord(deliveryId: b[0].delivery.id, lease: b[0].lease, startedAt: t0, duration: .zero,
                                              outcome: .retry(at: t0.addingTimeInterval(30)), status: 503)], now: t0)
        _ = try await claim("c", limit: 1)
        let waiting = try await store.waitingCounts()
        #expect(waiting == [.queued: 1, .retrying: 1, .inFlight: 1, .silenced: 0])
        let all = try await store.countsByState()
        #expect(all[.delivered] == 1 && all[.queued] == 1 && all[.retrying] == 1 && all[.inFlight] == 1)
    }
}
