import Foundation
import HeraldCore
import HeraldStore
import Testing

/// What the console reads and keeps, as every store must: sessions found by their digest until
/// they expire or are removed, one event by id, and the waiting work per channel.
extension Conformance {
    func consoleSessionsLastUntilTheyExpireOrAreRemoved() async throws {
        let a = ConsoleSession(idHash: "digest-a", principal: "ops", csrf: "csrf-a", createdAt: t0,
                               expiresAt: t0.addingTimeInterval(ConsoleSession.lifetime))
        let b = ConsoleSession(idHash: "digest-b", principal: "oncall", csrf: "csrf-b", createdAt: t0, expiresAt: t0.addingTimeInterval(60))
        try await store.addConsoleSession(a)
        try await store.addConsoleSession(b)
        #expect(try await store.consoleSession(idHash: "digest-a", now: t0.addingTimeInterval(1)) == a)
        #expect(try await store.consoleSession(idHash: "nope", now: t0) == nil)
        // Past its end a session no longer signs anyone in, and the retention pass deletes it.
        #expect(try await store.consoleSession(idHash: "digest-b", now: t0.addingTimeInterval(60)) == nil)
        #expect(try await store.deleteExpiredConsoleSessions(now: t0.addingTimeInterval(61)) == 1)
        // Sign-out removes it at once, once.
        #expect(try await store.removeConsoleSession(idHash: "digest-a"))
        #expect(try await store.consoleSession(idHash: "digest-a", now: t0.addingTimeInterval(2)) == nil)
        #expect(try await store.removeConsoleSession(idHash: "digest-a") == false)
    }

    func eventsAreFoundByIdAndQueuesCountedPerChannel() async throws {
        let first = event("q", .triggered, at: t0)
        _ = try await store.enqueue([EnqueueRequest(event: first, channels: ["a", "b", "c"])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("r", .triggered, at: t0), channels: ["a"])], now: t0)
        #expect(try await store.event(id: first.id)?.title == first.title)
        #expect(try await store.event(id: "evt_none") == nil)
        try await answer(try await claim("b", limit: 1)[0], .delivered(reference: nil), status: 200)
        let c = try await claim("c", limit: 1)
        try await store.record([AttemptRecord(deliveryId: c[0].delivery.id, lease: c[0].lease, startedAt: t0, duration: .zero,
                                              outcome: .retry(at: t0.addingTimeInterval(30)), status: 503)], now: t0)
        // Queued and retrying count; delivered does not.
        #expect(try await store.queueDepths() == ["a": 2, "c": 1])
    }
}
