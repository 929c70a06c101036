import Foundation
import Testing
@testable import HeraldCore
@testable import HeraldStore
@testable import HeraldPostgres

/// PostgreSQL only: nodes sharing one database prune at the same time as each other and as ingest.
@Suite(.enabled(if: TestPostgres.isConfigured, TestPostgres.disabledReason))
struct PostgresRetentionTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ incident: String, _ status: EventStatus, at: Date) -> Event {
        Event(id: Identifier.make(prefix: "evt", at: at), incident: incident, status: status, severity: .critical,
              title: "down", occurredAt: at, receivedAt: at)
    }

    /// Two nodes pruning the same history at once, while a third writer enqueues: every old row is
    /// removed exactly once between them (no error, no deadlock, no row counted twice), and the
    /// new work is all there.
    @Test func twoNodesPruneTogetherWhileIngestGoesOn() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        let n = 400
        _ = try await a.enqueue((0..<n).map { EnqueueRequest(event: event("old\($0)", .triggered, at: t0), channels: ["x", "y"]) }, now: t0)
        _ = try await a.enqueue((0..<n).map { EnqueueRequest(event: event("old\($0)", .resolved, at: t0), channels: []) }, now: t0)
        for ch in ["x", "y"] {
            while true {
                let claimed = try await a.claim(channel: ch, limit: 200, now: t0, owner: "a", leaseUntil: t0.addingTimeInterval(60))
                if claimed.isEmpty { break }
                try await a.record(claimed.map {
                    AttemptRecord(deliveryId: $0.delivery.id, lease: $0.lease, startedAt: t0, duration: .zero,
                                  outcome: .delivered(reference: "m"), status: 200)
                }, now: t0)
            }
        }
        let now = t0.addingTimeInterval(400 * 86_400)
        let cutoffs = RetentionConfig().cutoffs(now: now)
        let (ra, rb, accepted) = try await withThrowingTaskGroup(of: (Int, [String: Int]).self) { group in
            group.addTask { (0, try await a.pruneAll(cutoffs, limit: 25)) }
            group.addTask { (1, try await b.pruneAll(cutoffs, limit: 25)) }
            group.addTask {
                var accepted = 0
                for i in 0..<40 {
                    let r = try await b.enqueue([EnqueueRequest(event: event("new\(i)", .triggered, at: now), channels: ["x"])], now: now)
                    if case .accepted = r.first { accepted += 1 }
                }
                return (2, ["accepted": accepted])
            }
            var results: [Int: [String: Int]] = [:]
            for try await (i, r) in group { results[i] = r }
            return (results[0]!, results[1]!, results[2]!["accepted"]!)
        }
        let total = ra.merging(rb, uniquingKeysWith: +)
        // Each incident: two notices superseded by the resolve (never tried), two summaries
        // delivered (one attempt each), two events.
        #expect(total["deliveries"] == 4 * n && total["attempts"] == 2 * n, "\(ra) + \(rb)")
        #expect(total["events"] == 2 * n && total["incidents"] == n, "\(ra) + \(rb)")
        #expect(accepted == 40)
        let left = try await a.deliveries(DeliveryFilter(limit: 1000))
        #expect(left.count == 40 && left.allSatisfy { $0.incident.hasPrefix("new") })
        #expect(try await a.incident(key: "old7") == nil)
    }
}
