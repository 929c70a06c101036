import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

extension PostgresStore {
    /// One statement, one round trip: picks the due rows with `FOR UPDATE SKIP LOCKED` (rows another
    /// node is claiming right now are skipped, never waited for), leases them, and returns each with
    /// its event, incident and the notice it threads onto.
    public func claim(channel: String, limit: Int, now: Date, owner: String, leaseUntil: Date) async throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let decoder = self.decoder
        let logger = self.logger
        let t = now.timeIntervalSince1970
        let until = leaseUntil.timeIntervalSince1970
        let rows = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query("""
                WITH picked AS (
                    SELECT id FROM deliveries AS d
                    WHERE channel = \(channel) AND state IN ('queued', 'retrying') AND due_at <= \(t)
                      -- The phases never cross at one recipient: an all-clear waits while its
                      -- notice is still being sent.
                      AND (kind = 'notice' OR NOT EXISTS (
                          SELECT 1 FROM deliveries AS n
                          WHERE n.incident = d.incident AND n.cycle = d.cycle AND n.channel = d.channel
                            AND n.recipient IS NOT DISTINCT FROM d.recipient AND n.kind = 'notice' AND n.state = 'in_flight'))
                    ORDER BY priority DESC, due_at, seq
                    LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                ), claimed AS (
                    UPDATE deliveries AS d SET state = 'in_flight', lease_owner = \(owner), lease_until = \(until), updated_at = \(t)
                    FROM picked WHERE d.id = picked.id
                    RETURNING \(unescaped: Self.deliveryColumns("d")), d.cycle, d.seq, d.budget_attempts, d.budget_since
                )
                SELECT c.*, e.body AS event_body, e.status AS event_status,
                       i.key AS i_key, i.status AS i_status, i.cycle AS i_cycle, i.title AS i_title, i.severity AS i_severity,
                       i.opened_at AS i_opened_at, i.resolved_at AS i_resolved_at, i.updated_at AS i_updated_at,
                       th.id AS thread_id, th.receipt AS thread_receipt
                FROM claimed AS c
                JOIN events AS e ON e.id = c.event_id
                JOIN incidents AS i ON i.key = c.incident
                LEFT JOIN LATERAL (
                    SELECT t.id, t.receipt FROM deliveries AS t
                    WHERE t.incident = c.incident AND t.cycle = c.cycle AND t.channel = c.channel
                      AND t.recipient IS NOT DISTINCT FROM c.recipient AND t.kind = 'notice' AND t.state = 'delivered'
                    ORDER BY t.delivered_at LIMIT 1
                ) AS th ON (e.status <> 'triggered' OR c.kind <> 'notice')
                ORDER BY c.priority DESC, c.due_at, c.seq
                """, logger: logger).collect()
        }
        let eventCache = self.eventCache
        return try rows.map { row in
            let r = row.makeRandomAccess()
            let delivery = try Self.delivery(from: r)
            let event = try eventCache.value(for: delivery.eventId) {
                try decoder.decode(Event.self, from: Data(try r["event_body"].decode(String.self).utf8))
            }!
            let incident = Incident(
                key: try r["i_key"].decode(String.self),
                status: Incident.Status(rawValue: try r["i_status"].decode(String.self)) ?? .open,
                cycle: try r["i_cycle"].decode(Int.self),
                title: try r["i_title"].decode(String.self),
                severity: Severity(rawValue: try r["i_severity"].decode(String.self)) ?? .major,
                openedAt: Date(timeIntervalSince1970: try r["i_opened_at"].decode(Double.self)),
                resolvedAt: try r["i_resolved_at"].decode(Double?.self).map(Date.init(timeIntervalSince1970:)),
                updatedAt: Date(timeIntervalSince1970: try r["i_updated_at"].decode(Double.self)))
            return ClaimedDelivery(
                delivery: delivery, event: event, incident: incident,
                budgetAttempts: try r["budget_attempts"].decode(Int.self),
                budgetSince: Date(timeIntervalSince1970: try r["budget_since"].decode(Double.self)),
                thread: try r["thread_receipt"].decode(String?.self),
                threadDeliveryId: try r["thread_id"].decode(String?.self))
        }
    }

    public func nextDue(channel: String) async throws -> Date? {
        let logger = self.logger
        let rows = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query("""
                SELECT MIN(due_at) FROM deliveries WHERE channel = \(channel) AND state IN ('queued', 'retrying')
                """, logger: logger).collect()
        }
        return try rows.first?.decode(Double?.self).map(Date.init(timeIntervalSince1970:))
    }

    struct RecordRow: Encodable {
        var id: String
        var outcome: String
        var ref: String?
        var retry_at: Double?
        var status: Int?
        var last_error: String?
        var reason: String?
        var error: String?
        var started_at: Double
        var duration_ms: Double
    }

    /// One statement for the whole set: the rows still in flight are locked in id order, moved to
    /// their new state, and an attempt is written for each that was ours. A late answer for a
    /// delivery that is no longer in flight changes nothing, as in SQLite.
    public func record(_ records: [AttemptRecord], now: Date) async throws {
        guard !records.isEmpty else { return }
        var seen: Set<String> = []
        var rows: [RecordRow] = []
        for r in records where seen.insert(r.deliveryId).inserted {
            var row = RecordRow(id: r.deliveryId, outcome: "", status: r.status, reason: r.reason, error: r.error,
                                started_at: r.startedAt.timeIntervalSince1970, duration_ms: r.duration.seconds * 1000)
            switch r.outcome {
            case .delivered(let reference):
                row.outcome = "delivered"
                row.ref = reference
            case .retry(let at):
                row.outcome = "retry"
                row.retry_at = at.timeIntervalSince1970
                row.last_error = r.error
            case .failed(let reason):
                row.outcome = "failed"
                row.last_error = reason
            case .released:
                row.outcome = "released"
            }
            rows.append(row)
        }
        let json = try Self.json(rows)
        let t = now.timeIntervalSince1970
        let logger = self.logger
        _ = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query("""
                WITH r AS (
                    SELECT * FROM jsonb_to_recordset(\(json)::jsonb)
                        AS r(id text, outcome text, ref text, retry_at float8, status int, last_error text, reason text,
                             error text, started_at float8, duration_ms float8)
                ), locked AS (
                    SELECT d.id FROM deliveries AS d WHERE d.id IN (SELECT id FROM r) AND d.state = 'in_flight'
                    ORDER BY d.id FOR UPDATE
                ), upd AS (
                    UPDATE deliveries AS d SET
                        state = CASE r.outcome WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'retrying'
                                    WHEN 'failed' THEN 'failed'
                                    ELSE CASE WHEN d.budget_attempts = 0 THEN 'queued' ELSE 'retrying' END END,
                        attempts = d.attempts + CASE WHEN r.outcome = 'released' THEN 0 ELSE 1 END,
                        budget_attempts = d.budget_attempts + CASE WHEN r.outcome = 'released' THEN 0 ELSE 1 END,
                        receipt = CASE WHEN r.outcome = 'delivered' THEN r.ref ELSE d.receipt END,
                        delivered_at = CASE WHEN r.outcome = 'delivered' THEN \(t) ELSE d.delivered_at END,
                        last_status = CASE WHEN r.outcome = 'released' THEN d.last_status ELSE r.status END,
                        last_error = CASE WHEN r.outcome = 'released' THEN d.last_error ELSE r.last_error END,
                        due_at = CASE r.outcome WHEN 'retry' THEN r.retry_at WHEN 'released' THEN d.due_at ELSE NULL END,
                        lease_owner = NULL, lease_until = NULL, updated_at = \(t)
                    FROM r, locked
                    WHERE d.id = r.id AND d.id = locked.id AND d.state = 'in_flight'
                    RETURNING d.id, d.attempts, d.replays, r.outcome, r.started_at, r.duration_ms, r.status, r.reason, r.error
                )
                INSERT INTO attempts (delivery_id, number, replay, started_at, duration_ms, outcome, status, reason, error)
                SELECT id, attempts, replays, started_at, duration_ms, outcome, status, reason, error
                FROM upd WHERE outcome <> 'released'
                ON CONFLICT (delivery_id, number) DO UPDATE SET
                    replay = EXCLUDED.replay, started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
                    outcome = EXCLUDED.outcome, status = EXCLUDED.status, reason = EXCLUDED.reason, error = EXCLUDED.error
                """, logger: logger).collect()
        }
    }

    /// In-flight deliveries whose lease expired (or all of `owner`'s) go back to waiting, and each
    /// channel that got work back is signalled to every node.
    public func releaseLeases(expiredBefore: Date?, owner: String?) async throws -> [String] {
        let t = Date().timeIntervalSince1970
        let before = expiredBefore?.timeIntervalSince1970
        let logger = self.logger
        let rows = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query("""
                WITH u AS (
                    UPDATE deliveries SET state = CASE WHEN budget_attempts = 0 THEN 'queued' ELSE 'retrying' END,
                        lease_owner = NULL, lease_until = NULL, updated_at = \(t)
                    WHERE state = 'in_flight'
                      AND (\(before)::float8 IS NULL OR lease_until < \(before)::float8)
                      AND (\(owner)::text IS NULL OR lease_owner = \(owner)::text)
                    RETURNING channel, seq
                ), c AS (
                    SELECT channel, MIN(seq) AS first FROM u GROUP BY channel
                )
                SELECT channel, pg_notify(\(Self.workChannel), channel)::text FROM c ORDER BY first
                """, logger: logger).collect()
        }
        return try rows.map { try $0.decode((String, String?).self).0 }
    }
}
