import Foundation
import GRDB
import HeraldCore

extension SQLiteStore {
    public func claim(channel: String, limit: Int, now: Date, owner: String, leaseUntil: Date) async throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let decoder = self.decoder
        return try await wrap {
            try await pool.writeWithoutTransaction { db in
                // A claim need not reach the disk: one process owns the file, and whatever it had in
                // flight is due again at the next start, so a claim lost to a power cut changes
                // nothing. Its commit skips the fsync; the outcome's commit (synchronous=FULL)
                // syncs the WAL up to and including it.
                try db.execute(sql: "PRAGMA synchronous = OFF")
                defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
                var result: [ClaimedDelivery] = []
                try db.inTransaction(.immediate) {
                    result = try Self.claimRows(db: db, channel: channel, limit: limit, now: now, owner: owner,
                                                leaseUntil: leaseUntil, decoder: decoder, eventCache: eventCache)
                    return .commit
                }
                return result
            }
        }
    }

    private static func claimRows(db: Database, channel: String, limit: Int, now: Date, owner: String, leaseUntil: Date,
                                  decoder: JSONDecoder, eventCache: BoundedCache<String, Event>) throws -> [ClaimedDelivery] {
        // The partial index deliveries_due serves the inner SELECT: all-clears first, then
        // the oldest due, without scanning the backlog of other channels or states.
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            UPDATE deliveries SET state = 'in_flight', lease_owner = ?, lease_until = ?, updated_at = ?
            WHERE id IN (
                SELECT id FROM deliveries AS d
                WHERE channel = ? AND state IN ('queued', 'retrying') AND due_at <= ?
                  -- The phases never cross at one recipient: an all-clear waits while its
                  -- notice is still being sent.
                  AND (kind = 'notice' OR NOT EXISTS (
                      SELECT 1 FROM deliveries AS n
                      WHERE n.incident = d.incident AND n.cycle = d.cycle AND n.channel = d.channel
                        AND n.recipient IS d.recipient AND n.kind = 'notice' AND n.state = 'in_flight'))
                ORDER BY priority DESC, due_at
                LIMIT ?)
            RETURNING \(Self.deliveryColumns), cycle, budget_attempts, budget_since
            """), arguments: [owner, leaseUntil.timeIntervalSince1970, now.timeIntervalSince1970,
                              channel, now.timeIntervalSince1970, limit])
        guard !rows.isEmpty else { return [] }
        var incidents: [String: Incident] = [:]
        var claimed: [ClaimedDelivery] = []
        claimed.reserveCapacity(rows.count)
        let eventStatement = try db.cachedStatement(sql: "SELECT body FROM events WHERE id = ?")
        let threadStatement = try db.cachedStatement(sql: """
            SELECT id, receipt FROM deliveries
            WHERE incident = ? AND cycle = ? AND channel = ? AND recipient IS ? AND kind = 'notice' AND state = 'delivered'
            ORDER BY delivered_at LIMIT 1
            """)
        for row in rows {
            let delivery = try Self.delivery(from: row)
            let found = try eventCache.value(for: delivery.eventId) {
                try Data.fetchOne(eventStatement, arguments: [delivery.eventId]).map { try decoder.decode(Event.self, from: $0) }
            }
            guard let event = found else { continue }
            let incident: Incident
            if let cached = incidents[delivery.incident] {
                incident = cached
            } else if let found = try Self.fetchIncident(key: delivery.incident, db: db) {
                incident = found
                incidents[delivery.incident] = found
            } else {
                continue
            }
            let cycle: Int = row[Self.afterDeliveryColumns]
            var thread: Row?
            if event.status != .triggered || delivery.kind != .notice {
                thread = try Row.fetchOne(threadStatement, arguments: [delivery.incident, cycle, channel, delivery.recipient])
            }
            claimed.append(ClaimedDelivery(
                delivery: delivery, event: event, incident: incident,
                budgetAttempts: row[Self.afterDeliveryColumns + 1],
                budgetSince: Date(timeIntervalSince1970: row[Self.afterDeliveryColumns + 2]),
                thread: thread?[1], threadDeliveryId: thread?[0]))
        }
        // Oldest first within a priority, as the index ordered them (RETURNING does not keep order).
        return claimed.sorted {
            ($0.delivery.priority, -($0.delivery.dueAt?.timeIntervalSince1970 ?? 0))
                > ($1.delivery.priority, -($1.delivery.dueAt?.timeIntervalSince1970 ?? 0))
        }
    }

    public func nextDue(channel: String) async throws -> Date? {
        try await wrap {
            try await pool.read { db in
                try Double.fetchOne(db.cachedStatement(sql: """
                    SELECT MIN(due_at) FROM deliveries WHERE channel = ? AND state IN ('queued', 'retrying')
                    """), arguments: [channel]).map(Date.init(timeIntervalSince1970:))
            }
        }
    }

    public func record(_ records: [AttemptRecord], now: Date) async throws {
        guard !records.isEmpty else { return }
        try await wrap {
            try await pool.write { db in
                let t = now.timeIntervalSince1970
                let delivered = try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, budget_attempts = budget_attempts + 1,
                        receipt = ?, delivered_at = ?, last_status = ?, last_error = NULL, due_at = NULL,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND state = 'in_flight'
                    """)
                let retry = try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = 'retrying', attempts = attempts + 1, budget_attempts = budget_attempts + 1,
                        due_at = ?, last_status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND state = 'in_flight'
                    """)
                let failed = try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = 'failed', attempts = attempts + 1, budget_attempts = budget_attempts + 1,
                        due_at = NULL, last_status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND state = 'in_flight'
                    """)
                let released = try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = CASE WHEN budget_attempts = 0 THEN 'queued' ELSE 'retrying' END,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND state = 'in_flight'
                    """)
                let attempt = try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO attempts (delivery_id, number, replay, started_at, duration_ms, outcome, status, reason, error)
                    SELECT id, attempts, replays, ?, ?, ?, ?, ?, ? FROM deliveries WHERE id = ?
                    """)
                for r in records {
                    let outcome: String
                    switch r.outcome {
                    case .delivered(let reference):
                        try delivered.execute(arguments: [reference, t, r.status, t, r.deliveryId])
                        outcome = "delivered"
                    case .retry(let at):
                        try retry.execute(arguments: [at.timeIntervalSince1970, r.status, r.error, t, r.deliveryId])
                        outcome = "retry"
                    case .failed(let reason):
                        try failed.execute(arguments: [r.status, reason, t, r.deliveryId])
                        outcome = "failed"
                    case .released:
                        try released.execute(arguments: [t, r.deliveryId])
                        continue
                    }
                    // A late answer for a delivery that is no longer ours changes nothing.
                    guard db.changesCount > 0 else { continue }
                    try attempt.execute(arguments: [r.startedAt.timeIntervalSince1970, r.duration.seconds * 1000,
                                                    outcome, r.status, r.reason, r.error, r.deliveryId])
                }
            }
        }
    }

    public func releaseLeases(expiredBefore: Date?, owner: String?) async throws -> [String] {
        try await wrap {
            try await pool.write { db in
                var conditions = ["state = 'in_flight'"]
                var arguments: StatementArguments = [Date().timeIntervalSince1970]
                if let expiredBefore {
                    conditions.append("lease_until < ?")
                    _ = arguments.append(contentsOf: [expiredBefore.timeIntervalSince1970])
                }
                if let owner {
                    conditions.append("lease_owner = ?")
                    _ = arguments.append(contentsOf: [owner])
                }
                return try String.fetchAll(db, sql: """
                    UPDATE deliveries SET state = CASE WHEN budget_attempts = 0 THEN 'queued' ELSE 'retrying' END,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE \(conditions.joined(separator: " AND "))
                    RETURNING channel
                    """, arguments: arguments).uniqued()
            }
        }
    }
}


extension SQLiteStore {
    public func enqueueFallback(of deliveryId: String, channel: String, recipients: [String], now: Date) async throws -> Int {
        try await wrap {
            try await pool.write { db in
                let t = now.timeIntervalSince1970
                let targets: [String?] = recipients.isEmpty ? [nil] : recipients.map(Optional.some)
                var count = 0
                for recipient in targets {
                    // Only for a failed notice, and only once per fallback target.
                    try db.execute(sql: """
                        INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority,
                                                budget_since, created_at, due_at, updated_at, fallback_of)
                        SELECT ?, event_id, incident, cycle, ?, ?, 'notice', 'queued', priority, ?, ?, ?, ?, id
                        FROM deliveries AS o
                        WHERE o.id = ? AND o.state = 'failed' AND o.kind = 'notice'
                          AND NOT EXISTS (SELECT 1 FROM deliveries AS f WHERE f.fallback_of = o.id AND f.channel = ?
                                          AND f.recipient IS ?)
                        """, arguments: [Identifier.make(prefix: "dlv", at: now), channel, recipient, t, t, t, t,
                                         deliveryId, channel, recipient])
                    count += db.changesCount
                }
                return count
            }
        }
    }
}
