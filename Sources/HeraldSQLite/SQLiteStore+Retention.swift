import Foundation
import GRDB
import HeraldCore
import HeraldStore

/// Retention on SQLite: each `prune` call is one short write transaction (the writer is the one
/// serial resource ingest also needs), examining at most `limit` rows of one stage in index order
/// from the cursor; the rules are in `Store+Retention.swift`. Space comes back through
/// `auto_vacuum = INCREMENTAL`: the pruner frees pages, `reclaimSpace` hands a few at a time back
/// to the file system.
extension SQLiteStore {
    public func prune(_ cutoffs: RetentionConfig.Cutoffs, from cursor: PruneCursor, limit: Int) async throws -> PruneStep {
        let limit = max(1, limit)
        let decoder = self.decoder
        return try await wrap { try await writer.write(.bulk) { db in
                switch cursor.stage {
                case .deliveries: return try Self.pruneDeliveries(cutoffs, cursor, limit, db)
                case .events: return try Self.pruneEvents(cutoffs, cursor, limit, db)
                case .incidents: return try Self.pruneIncidents(cutoffs, cursor, limit, db)
                case .idempotency: return try Self.pruneIdempotency(cutoffs, cursor, limit, db)
                case .statusPosts: return try Self.pruneStatusPosts(cutoffs, cursor, limit, db, decoder: decoder)
                case .silences: return try Self.pruneSilences(cutoffs, cursor, limit, db)
                }
            }
        }
    }

    /// Each count reads only the index entries of one waiting state: the cost follows the backlog,
    /// never the delivered history.
    static let waitingCountsSQL = """
        SELECT (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_unsent
                WHERE state = 'queued' AND \(unsentIndexCondition)),
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_unsent
                WHERE state = 'retrying' AND \(unsentIndexCondition)),
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_leases WHERE state = 'in_flight'),
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_silenced WHERE state = 'silenced')
        """

    public func waitingCounts() async throws -> [DeliveryState: Int] {
        try await wrap {
            try await pool.read { db in
                let row = try Row.fetchOne(db, sql: Self.waitingCountsSQL)
                return [.queued: row?[0] ?? 0, .retrying: row?[1] ?? 0, .inFlight: row?[2] ?? 0, .silenced: row?[3] ?? 0]
            }
        }
    }

    public func reclaimSpace(pages: Int) async throws -> Int {
        try await wrap {
            try await pool.writeWithoutTransaction { db in
                guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") == 2 else { return 0 }
                // One row per page moved; GRDB steps the statement to its end.
                try db.execute(sql: "PRAGMA incremental_vacuum(\(max(1, pages)))")
                let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                // The file shrinks when the WAL holding the vacuum is checkpointed: do it now, in
                // the mode that waits for no reader and no writer.
                if free == 0 { try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") }
                return free
            }
        }
    }

    /// Whether freed pages go back to the file system (`auto_vacuum = INCREMENTAL`). A file made
    /// before retention existed and too big to convert on start says no until `herald migrate
    /// --store FILE` converts it.
    public var reclaimsSpace: Bool {
        get throws { try pool.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 2 }
    }

    /// Files up to this size are converted to incremental auto-vacuum when opened (a VACUUM, a few
    /// seconds at most); larger ones are left to `herald migrate --store FILE`.
    static let convertOnOpenBytes = 64 << 20

    /// Rewrites the whole file with `auto_vacuum = INCREMENTAL` (a VACUUM: it needs free disk space
    /// the size of the file, and holds the store for the time it takes). Answers whether it
    /// changed anything.
    @discardableResult
    public func enableIncrementalVacuum() throws -> Bool {
        do {
            return try pool.writeWithoutTransaction { db in
                guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2 else { return false }
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                try db.execute(sql: "VACUUM")
                return true
            }
        } catch let error as DatabaseError {
            throw StoreError.underlying(error.message ?? "\(error.resultCode)")
        }
    }

    /// Converts a small file made before retention existed; a large one waits for `herald migrate`.
    func convertSmallFileToIncrementalVacuum() throws {
        let (mode, bytes) = try pool.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0,
             (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0) * (try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096))
        }
        if mode != 2 && bytes <= Self.convertOnOpenBytes { try enableIncrementalVacuum() }
    }

    // MARK: - Stages

    static let finishedStates = "('delivered', 'failed', 'superseded')"
    static let waitingStates = "('queued', 'retrying', 'in_flight', 'silenced')"

    private static func pruneDeliveries(_ cutoffs: RetentionConfig.Cutoffs, _ cursor: PruneCursor, _ limit: Int,
                                        _ db: Database) throws -> PruneStep {
        guard let cut = cutoffs.deliveries?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
        // Finished before the cutoff implies created before it: walk deliveries_created.
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, created_at, state IN \(finishedStates) AND updated_at < ? AS finished, incident, cycle
            FROM deliveries WHERE created_at < ? AND (created_at, id) > (?, ?)
            ORDER BY created_at, id LIMIT ?
            """, arguments: [cut, cut, cursor.time, cursor.key, limit])
        // The cycle rule once per cycle in the batch: over (not its incident's open cycle) and quiet.
        var verdicts: [String: Bool] = [:]
        let cycleOver = try db.cachedStatement(sql: """
            SELECT NOT EXISTS (SELECT 1 FROM incidents WHERE key = ?1 AND cycle = ?2 AND status = 'open')
               AND NOT EXISTS (SELECT 1 FROM deliveries WHERE incident = ?1 AND cycle = ?2
                               AND (state IN \(waitingStates) OR updated_at >= ?3))
            """)
        let deleteAttempts = try db.cachedStatement(sql: "DELETE FROM attempts WHERE delivery_id = ?")
        let deleteDelivery = try db.cachedStatement(sql: "DELETE FROM deliveries WHERE id = ?")
        var removed = ["deliveries": 0, "attempts": 0]
        for row in rows where row["finished"] as Bool {
            let incident: String = row["incident"]
            let cycle: Int = row["cycle"]
            let cycleKey = "\(cycle) \(incident)"
            let over: Bool
            if let known = verdicts[cycleKey] {
                over = known
            } else {
                over = try Bool.fetchOne(cycleOver, arguments: [incident, cycle, cut]) ?? false
                verdicts[cycleKey] = over
            }
            guard over else { continue }
            let id: String = row["id"]
            try deleteAttempts.execute(arguments: [id])
            removed["attempts"]! += db.changesCount
            try deleteDelivery.execute(arguments: [id])
            removed["deliveries"]! += db.changesCount
        }
        let last = rows.last.map { (time: $0["created_at"] as Double, key: $0["id"] as String) }
        return cursor.advanced(examined: rows.count, limit: limit, last: last, removed: removed)
    }

    private static func pruneEvents(_ cutoffs: RetentionConfig.Cutoffs, _ cursor: PruneCursor, _ limit: Int,
                                    _ db: Database) throws -> PruneStep {
        guard let cut = cutoffs.deliveries?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
        // The history of an incident's current cycle stays while the incident is open, and until it
        // has been resolved for the incidents' period.
        let historyCut = cutoffs.incidents?.timeIntervalSince1970 ?? -Double.greatestFiniteMagnitude
        let rows = try Row.fetchAll(db, sql: """
            SELECT e.id, e.received_at,
                   NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                   AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.key = e.incident AND i.cycle = e.cycle
                                   AND (i.status = 'open' OR COALESCE(i.resolved_at, i.updated_at) >= ?)) AS doomed
            FROM events e WHERE e.received_at < ? AND (e.received_at, e.id) > (?, ?)
            ORDER BY e.received_at, e.id LIMIT ?
            """, arguments: [historyCut, cut, cursor.time, cursor.key, limit])
        let delete = try db.cachedStatement(sql: "DELETE FROM events WHERE id = ?")
        var n = 0
        for row in rows where row["doomed"] as Bool {
            try delete.execute(arguments: [row["id"] as String])
            n += db.changesCount
        }
        let last = rows.last.map { (time: $0["received_at"] as Double, key: $0["id"] as String) }
        return cursor.advanced(examined: rows.count, limit: limit, last: last, removed: ["events": n])
    }

    private static func pruneIncidents(_ cutoffs: RetentionConfig.Cutoffs, _ cursor: PruneCursor, _ limit: Int,
                                       _ db: Database) throws -> PruneStep {
        guard let cut = cutoffs.incidents?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
        let rows = try Row.fetchAll(db, sql: """
            SELECT i.key, i.updated_at,
                   i.status = 'resolved' AND COALESCE(i.resolved_at, i.updated_at) < ?
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.incident = i.key)
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.incident = i.key) AS doomed
            FROM incidents i WHERE i.updated_at < ? AND (i.updated_at, i.key) > (?, ?)
            ORDER BY i.updated_at, i.key LIMIT ?
            """, arguments: [cut, cut, cursor.time, cursor.key, limit])
        let delete = try db.cachedStatement(sql: "DELETE FROM incidents WHERE key = ?")
        var n = 0
        for row in rows where row["doomed"] as Bool {
            try delete.execute(arguments: [row["key"] as String])
            n += db.changesCount
        }
        let last = rows.last.map { (time: $0["updated_at"] as Double, key: $0["key"] as String) }
        return cursor.advanced(examined: rows.count, limit: limit, last: last, removed: ["incidents": n])
    }

    private static func pruneSilences(_ cutoffs: RetentionConfig.Cutoffs, _ cursor: PruneCursor, _ limit: Int,
                                      _ db: Database) throws -> PruneStep {
        guard let cut = cutoffs.deliveries?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, ends_at FROM silences INDEXED BY silences_ends
            WHERE ends_at < ? AND (ends_at, id) > (?, ?) ORDER BY ends_at, id LIMIT ?
            """, arguments: [cut, cursor.time, cursor.key, limit])
        let delete = try db.cachedStatement(sql: """
            DELETE FROM silences WHERE id = ?
              AND NOT EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_silenced WHERE silenced_by = ? AND state = 'silenced')
            """)
        var n = 0
        for row in rows {
            let id: String = row["id"]
            try delete.execute(arguments: [id, id])
            n += db.changesCount
        }
        let last = rows.last.map { (time: $0["ends_at"] as Double, key: $0["id"] as String) }
        return cursor.advanced(examined: rows.count, limit: limit, last: last, removed: ["silences": n])
    }

    private static func pruneIdempotency(_ cutoffs: RetentionConfig.Cutoffs, _ cursor: PruneCursor, _ limit: Int,
                                         _ db: Database) throws -> PruneStep {
        guard let cut = cutoffs.idempotency?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
        // Every old row goes: no cursor needed, the next batch starts at the new oldest.
        try db.execute(sql: """
            DELETE FROM idempotency WHERE (scope, key) IN
                (SELECT scope, key FROM idempotency INDEXED BY idempotency_created WHERE created_at < ? LIMIT ?)
            """, arguments: [cut, limit])
        let n = db.changesCount
        return PruneStep(removed: ["idempotency": n], next: n >= limit ? cursor : cursor.nextStage)
    }

    private static func pruneStatusPosts(_ cutoffs: RetentionConfig.Cutoffs, _ cursor: PruneCursor, _ limit: Int,
                                         _ db: Database, decoder: JSONDecoder) throws -> PruneStep {
        guard let cut = cutoffs.statusPosts?.timeIntervalSince1970 else { return PruneStep(next: cursor.nextStage) }
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, posted_at, body FROM status_posts WHERE posted_at < ? AND (posted_at, id) > (?, ?)
            ORDER BY posted_at, id LIMIT ?
            """, arguments: [cut, cursor.time, cursor.key, limit])
        let shown = try db.cachedStatement(sql: """
            SELECT status = 'open' OR COALESCE(resolved_at, updated_at) >= ? FROM incidents WHERE key = ?
            """)
        let delete = try db.cachedStatement(sql: "DELETE FROM status_posts WHERE id = ?")
        var verdicts: [String: Bool] = [:]
        var n = 0
        for row in rows {
            // A post the page still shows (its incident open or lately resolved) stays.
            if let post = try? decoder.decode(StatusPost.self, from: row["body"] as Data) {
                let keep: Bool
                if let known = verdicts[post.incident] {
                    keep = known
                } else {
                    keep = try Bool.fetchOne(shown, arguments: [cut, post.incident]) ?? false
                    verdicts[post.incident] = keep
                }
                if keep { continue }
            }
            try delete.execute(arguments: [row["id"] as String])
            n += db.changesCount
        }
        let last = rows.last.map { (time: $0["posted_at"] as Double, key: $0["id"] as String) }
        return cursor.advanced(examined: rows.count, limit: limit, last: last, removed: ["status_posts": n])
    }
}
