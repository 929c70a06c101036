import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

/// Retention on PostgreSQL: each `prune` call is one statement (its own transaction) that takes a
/// page of at most `limit` rows of one stage in index order from the cursor, locks the ones that
/// may go with `FOR UPDATE SKIP LOCKED` and deletes them. Two nodes pruning at once never wait for
/// each other (each skips the rows the other holds; what one skipped, a later pass takes), and a
/// row a live transaction holds — a claim, an outcome, an enqueue locking its incident — is
/// skipped, not waited for. The rules are in `Store+Retention.swift`; the lock re-checks each
/// row's own conditions when it was changed meanwhile.
extension PostgresStore {
    public func prune(_ cutoffs: RetentionConfig.Cutoffs, from cursor: PruneCursor, limit: Int) async throws -> PruneStep {
        let limit = max(1, limit)
        let logger = self.logger
        let page: PageResult
        switch cursor.stage {
        case .deliveries:
            guard let cut = cutoffs.deliveries?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
            page = try await run(timeout: Self.adminTimeout) { connection in
                try await Self.page(connection, logger, """
                    WITH page AS (
                        SELECT id, created_at AS t, incident, cycle,
                               state IN ('delivered', 'failed', 'superseded') AND updated_at < \(cut) AS finished
                        FROM deliveries WHERE created_at < \(cut) AND (created_at, id) > (\(cursor.time), \(cursor.key))
                        ORDER BY created_at, id LIMIT \(limit)
                    ), over AS (
                        SELECT c.incident, c.cycle FROM (SELECT DISTINCT incident, cycle FROM page WHERE finished) c
                        WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.key = c.incident AND i.cycle = c.cycle AND i.status = 'open')
                          AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.incident = c.incident AND o.cycle = c.cycle
                                          AND (o.state IN ('queued', 'retrying', 'in_flight', 'silenced')
                                               OR o.updated_at >= \(cut)))
                    ), doomed AS (
                        SELECT d.id FROM deliveries d
                        JOIN page p ON p.id = d.id AND p.finished
                        JOIN over ON over.incident = d.incident AND over.cycle = d.cycle
                        WHERE d.state IN ('delivered', 'failed', 'superseded') AND d.updated_at < \(cut)
                        FOR UPDATE OF d SKIP LOCKED
                    ), gone_attempts AS (
                        DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM doomed) RETURNING 1
                    ), gone AS (
                        DELETE FROM deliveries WHERE id IN (SELECT id FROM doomed) RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM page), (SELECT t FROM page ORDER BY t DESC, id DESC LIMIT 1),
                           (SELECT id FROM page ORDER BY t DESC, id DESC LIMIT 1),
                           (SELECT count(*) FROM gone), (SELECT count(*) FROM gone_attempts)
                    """)
            }
            return cursor.advanced(examined: page.examined, limit: limit, last: page.last,
                                   removed: ["deliveries": page.removed, "attempts": page.alsoRemoved])
        case .events:
            guard let cut = cutoffs.deliveries?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
            let historyCut = cutoffs.incidents?.timeIntervalSince1970 ?? -Double.greatestFiniteMagnitude
            page = try await run(timeout: Self.adminTimeout) { connection in
                try await Self.page(connection, logger, """
                    WITH page AS (
                        SELECT id, received_at AS t FROM events
                        WHERE received_at < \(cut) AND (received_at, id) > (\(cursor.time), \(cursor.key))
                        ORDER BY received_at, id LIMIT \(limit)
                    ), doomed AS (
                        SELECT e.id FROM events e JOIN page p ON p.id = e.id
                        WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                          AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.key = e.incident AND i.cycle = e.cycle
                                          AND (i.status = 'open' OR COALESCE(i.resolved_at, i.updated_at) >= \(historyCut)))
                        FOR UPDATE OF e SKIP LOCKED
                    ), gone AS (
                        DELETE FROM events WHERE id IN (SELECT id FROM doomed) RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM page), (SELECT t FROM page ORDER BY t DESC, id DESC LIMIT 1),
                           (SELECT id FROM page ORDER BY t DESC, id DESC LIMIT 1), (SELECT count(*) FROM gone), 0::int8
                    """)
            }
            return cursor.advanced(examined: page.examined, limit: limit, last: page.last, removed: ["events": page.removed])
        case .incidents:
            guard let cut = cutoffs.incidents?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
            page = try await run(timeout: Self.adminTimeout) { connection in
                try await Self.page(connection, logger, """
                    WITH page AS (
                        SELECT key AS id, updated_at AS t FROM incidents
                        WHERE updated_at < \(cut) AND (updated_at, key) > (\(cursor.time), \(cursor.key))
                        ORDER BY updated_at, key LIMIT \(limit)
                    ), doomed AS (
                        SELECT i.key FROM incidents i JOIN page p ON p.id = i.key
                        WHERE i.status = 'resolved' AND COALESCE(i.resolved_at, i.updated_at) < \(cut)
                          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.incident = i.key)
                          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.incident = i.key)
                        FOR UPDATE OF i SKIP LOCKED
                    ), gone AS (
                        DELETE FROM incidents WHERE key IN (SELECT key FROM doomed) RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM page), (SELECT t FROM page ORDER BY t DESC, id DESC LIMIT 1),
                           (SELECT id FROM page ORDER BY t DESC, id DESC LIMIT 1), (SELECT count(*) FROM gone), 0::int8
                    """)
            }
            return cursor.advanced(examined: page.examined, limit: limit, last: page.last, removed: ["incidents": page.removed])
        case .idempotency:
            guard let cut = cutoffs.idempotency?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
            // Every old row goes: no cursor, the next batch starts at the new oldest.
            let n = try await run(timeout: Self.adminTimeout) { connection in
                try await connection.query("""
                    WITH doomed AS (
                        SELECT scope, key FROM idempotency WHERE created_at < \(cut) LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    ), gone AS (
                        DELETE FROM idempotency i USING doomed d WHERE i.scope = d.scope AND i.key = d.key RETURNING 1
                    )
                    SELECT count(*) FROM gone
                    """, logger: logger).collect().first?.decode(Int.self) ?? 0
            }
            return PruneStep(removed: ["idempotency": n], next: n >= limit ? cursor : cursor.nextStage)
        case .statusPosts:
            guard let cut = cutoffs.statusPosts?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
            page = try await run(timeout: Self.adminTimeout) { connection in
                try await Self.page(connection, logger, """
                    WITH page AS (
                        SELECT id, posted_at AS t FROM status_posts
                        WHERE posted_at < \(cut) AND (posted_at, id) > (\(cursor.time), \(cursor.key))
                        ORDER BY posted_at, id LIMIT \(limit)
                    ), doomed AS (
                        SELECT s.id FROM status_posts s JOIN page p ON p.id = s.id
                        WHERE s.posted_at < \(cut)
                          AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.key = (s.body::jsonb ->> 'incident')
                                          AND (i.status = 'open' OR COALESCE(i.resolved_at, i.updated_at) >= \(cut)))
                        FOR UPDATE OF s SKIP LOCKED
                    ), gone AS (
                        DELETE FROM status_posts WHERE id IN (SELECT id FROM doomed) RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM page), (SELECT t FROM page ORDER BY t DESC, id DESC LIMIT 1),
                           (SELECT id FROM page ORDER BY t DESC, id DESC LIMIT 1), (SELECT count(*) FROM gone), 0::int8
                    """)
            }
            return cursor.advanced(examined: page.examined, limit: limit, last: page.last, removed: ["status_posts": page.removed])
        case .silences:
            guard let cut = cutoffs.deliveries?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
            page = try await run(timeout: Self.adminTimeout) { connection in
                try await Self.page(connection, logger, """
                    WITH page AS (
                        SELECT id, ends_at AS t FROM silences
                        WHERE ends_at < \(cut) AND (ends_at, id) > (\(cursor.time), \(cursor.key))
                        ORDER BY ends_at, id LIMIT \(limit)
                    ), doomed AS (
                        SELECT s.id FROM silences s JOIN page p ON p.id = s.id
                        WHERE s.ends_at < \(cut)
                          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.silenced_by = s.id AND d.state = 'silenced')
                        FOR UPDATE OF s SKIP LOCKED
                    ), gone AS (
                        DELETE FROM silences WHERE id IN (SELECT id FROM doomed) RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM page), (SELECT t FROM page ORDER BY t DESC, id DESC LIMIT 1),
                           (SELECT id FROM page ORDER BY t DESC, id DESC LIMIT 1), (SELECT count(*) FROM gone), 0::int8
                    """)
            }
            return cursor.advanced(examined: page.examined, limit: limit, last: page.last, removed: ["silences": page.removed])
        }
    }

    public func waitingCounts() async throws -> [DeliveryState: Int] {
        let logger = self.logger
        // Each count reads the deliveries_state index for one waiting state only: the cost follows
        // the backlog, never the delivered history.
        let row = try await run { connection in
            try await connection.query("""
                SELECT (SELECT count(*) FROM deliveries WHERE state = 'queued'),
                       (SELECT count(*) FROM deliveries WHERE state = 'retrying'),
                       (SELECT count(*) FROM deliveries WHERE state = 'in_flight'),
                       (SELECT count(*) FROM deliveries WHERE state = 'silenced')
                """, logger: logger).collect().first?.decode((Int, Int, Int, Int).self)
        }
        return [.queued: row?.0 ?? 0, .retrying: row?.1 ?? 0, .inFlight: row?.2 ?? 0, .silenced: row?.3 ?? 0]
    }

    /// What one page statement answers: rows examined, the last one's (time, key), rows removed
    /// (and, for deliveries, their attempts).
    struct PageResult: Sendable {
        var examined: Int
        var last: (time: Double, key: String)?
        var removed: Int
        var alsoRemoved: Int
    }

    static func page(_ connection: PostgresConnection, _ logger: Logger, _ query: PostgresQuery) async throws -> PageResult {
        guard let row = try await connection.query(query, logger: logger).collect().first else {
            return PageResult(examined: 0, last: nil, removed: 0, alsoRemoved: 0)
        }
        let (examined, time, key, removed, also) = try row.decode((Int, Double?, String?, Int, Int).self)
        let last = time.flatMap { t in key.map { (time: t, key: $0) } }
        return PageResult(examined: examined, last: last, removed: removed, alsoRemoved: also)
    }
}
