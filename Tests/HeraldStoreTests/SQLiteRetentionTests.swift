import Foundation
import GRDB
import Testing
@testable import HeraldCore
@testable import HeraldStore
@testable import HeraldSQLite

/// SQLite only: the space retention frees goes back to the file system, and the queries that run
/// on every scrape or prune read indexes, not the whole history.
@Suite struct SQLiteRetentionTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func fileBytes(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
    }

    /// A new file is made with incremental auto-vacuum: after pruning a year of delivered history,
    /// `reclaimSpace` hands the freed pages back in small steps and the file shrinks.
    @Test func prunedSpaceGoesBackToTheFileSystem() async throws {
        let (any, path) = try StoreConformanceTests.sqlite()
        let store = try #require(any as? SQLiteStore)
        #expect(try store.reclaimsSpace)
        let c = Conformance(store: store)
        let words = String(repeating: "resolvers time out; ", count: 50)
        for batch in 0..<20 {
            let events = (0..<100).map { i in
                var e = c.event("inc-\(batch)-\(i)", .triggered, at: t0)
                e.message = words
                return EnqueueRequest(event: e, channels: ["a", "b"])
            }
            _ = try await store.enqueue(events, now: t0)
            for ch in ["a", "b"] {
                let claimed = try await c.claim(ch, limit: 100)
                try await store.record(claimed.map {
                    AttemptRecord(deliveryId: $0.delivery.id, lease: $0.lease, startedAt: t0, duration: .zero,
                                  outcome: .delivered(reference: "m"), status: 200, error: words)
                }, now: t0)
            }
        }
        try await store.pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        let before = fileBytes(path)
        // Resolve nothing: every incident is open, so nothing may go yet.
        #expect(try await store.pruneAll(RetentionConfig().cutoffs(now: t0.addingTimeInterval(400 * 86_400)))["deliveries"] == 0)
        // Resolve them all, then a year and more later prune everything.
        for batch in 0..<20 {
            _ = try await store.enqueue((0..<100).map { EnqueueRequest(event: c.event("inc-\(batch)-\($0)", .resolved, at: t0), channels: []) },
                                        now: t0)
        }
        for ch in ["a", "b"] {
            while true {
                let claimed = try await c.claim(ch, limit: 500)
                if claimed.isEmpty { break }
                try await store.record(claimed.map {
                    AttemptRecord(deliveryId: $0.delivery.id, lease: $0.lease, startedAt: t0, duration: .zero,
                                  outcome: .delivered(reference: "r"), status: 200)
                }, now: t0)
            }
        }
        let removed = try await store.pruneAll(RetentionConfig().cutoffs(now: t0.addingTimeInterval(400 * 86_400)))
        #expect(removed["deliveries"] == 8000 && removed["events"] == 4000 && removed["incidents"] == 2000, "\(removed)")
        var free = try await store.reclaimSpace(pages: 64)
        #expect(free > 0, "64 pages at a time: more are left after one step")
        var steps = 1
        while free > 0 && steps < 10_000 {
            free = try await store.reclaimSpace(pages: 64)
            steps += 1
        }
        #expect(free == 0)
        try await store.pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        let after = fileBytes(path)
        #expect(after < before / 4, "file \(before) bytes before pruning, \(after) after reclaiming")
        // And the store still works.
        _ = try await store.enqueue([EnqueueRequest(event: c.event("new", .triggered, at: t0), channels: ["a"])], now: t0)
        #expect(try await store.deliveries(DeliveryFilter()).count == 1)
    }

    /// A file made before retention (auto-vacuum off) is converted when opened, if small.
    @Test func anOlderSmallFileIsConvertedOnOpen() async throws {
        let (_, path) = try StoreConformanceTests.sqlite()
        let old = path + ".old.sqlite"
        do {
            let queue = try DatabaseQueue(path: old)
            try await queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA auto_vacuum = NONE")
                try db.execute(sql: "CREATE TABLE scratch (x INTEGER)")
            }
            #expect(try await queue.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 0)
        }
        let store = try SQLiteStore(path: old)
        #expect(try store.reclaimsSpace)
        #expect(try await store.enqueue([EnqueueRequest(event: Conformance(store: store).event("x", .triggered, at: t0), channels: ["a"])],
                                        now: t0).count == 1)
    }

    /// The scrape's queue depth and the pruning stages read indexes: their query plans never scan
    /// a table (the cost follows the backlog and the batch, not the history).
    @Test func scrapeAndPruneQueriesUseIndexes() async throws {
        let (any, _) = try StoreConformanceTests.sqlite()
        let store = try #require(any as? SQLiteStore)
        func plan(_ sql: String) throws -> String {
            try store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
        }
        /// Whether a plan reads every row of the table rather than an index's entries.
        func scansTheTable(_ plan: String) -> Bool {
            plan.split(separator: "; ").contains { $0.hasPrefix("SCAN deliveries") && !$0.contains(" USING ") }
        }
        let waiting = try plan(SQLiteStore.waitingCountsSQL)
        for index in ["deliveries_unsent", "deliveries_leases", "deliveries_silenced"] {
            #expect(waiting.contains("INDEX \(index)"), "\(waiting)")
        }
        #expect(!scansTheTable(waiting), "\(waiting)")
        // A list filtered by a state other than delivered reads that state's index, never the
        // delivered history.
        for state in DeliveryState.allCases where state != .delivered {
            var filter = DeliveryFilter()
            filter.state = state
            let (clause, _) = SQLiteStore.whereClause(filter)
            let p = try plan("SELECT id FROM deliveries WHERE \(clause) ORDER BY created_at DESC, id DESC LIMIT 5")
            #expect(!scansTheTable(p) && !p.contains("deliveries_created"), "\(state): \(p)")
        }
        for sql in [
            "SELECT id FROM deliveries WHERE created_at < 1 AND (created_at, id) > (0, '') ORDER BY created_at, id LIMIT 5",
            "SELECT id FROM events WHERE received_at < 1 AND (received_at, id) > (0, '') ORDER BY received_at, id LIMIT 5",
            "SELECT 1 FROM deliveries WHERE event_id = 'e'",
            "SELECT key FROM incidents WHERE updated_at < 1 AND (updated_at, key) > (0, '') ORDER BY updated_at, key LIMIT 5",
            "SELECT scope FROM idempotency INDEXED BY idempotency_created WHERE created_at < 1 LIMIT 5",
            "SELECT id FROM status_posts WHERE posted_at < 1 AND (posted_at, id) > (0, '') ORDER BY posted_at, id LIMIT 5",
        ] {
            let p = try plan(sql)
            #expect(p.contains("USING") && !p.contains("SCAN deliveries") && !p.contains("SCAN events")
                    && !p.contains("TEMP B-TREE"), "\(sql): \(p)")
        }
    }
}
