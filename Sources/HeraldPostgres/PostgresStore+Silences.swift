import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

/// Silences on PostgreSQL, as `SQLiteStore` keeps them: the silence as JSON in `body`, its times
/// in columns for the queries. A notice a silence holds waits `silenced` (the partial index
/// `deliveries_silenced` holds only those) until `releaseSilences` lets it go.
extension PostgresStore {
    /// The silences in force at `now`, for the planner (usually none: one indexed probe).
    static func silencesInForce(now: Date, _ connection: PostgresConnection, decoder: JSONDecoder,
                                logger: Logger) async throws -> [Silence] {
        let t = now.timeIntervalSince1970
        return try await connection.query("""
            SELECT body FROM silences WHERE ends_at > \(t) AND starts_at <= \(t)
            """, logger: logger).collect().map { try SilenceMemo.decode(Data(try $0.decode(String.self).utf8), with: decoder) }
    }

    public func addSilence(_ silence: Silence) async throws {
        let body = String(decoding: try encoder.encode(silence), as: UTF8.self)
        let logger = self.logger
        _ = try await run { connection in
            try await connection.query("""
                INSERT INTO silences (id, starts_at, ends_at, created_at, body)
                VALUES (\(silence.id), \(silence.startsAt.timeIntervalSince1970), \(silence.endsAt.timeIntervalSince1970),
                        \(silence.createdAt.timeIntervalSince1970), \(body))
                """, logger: logger).collect()
        }
    }

    public func silences(includeExpired: Bool, now: Date, limit: Int) async throws -> [Silence] {
        let decoder = self.decoder
        let logger = self.logger
        let after: Double? = includeExpired ? nil : now.timeIntervalSince1970
        let rows = try await run { connection in
            try await connection.query("""
                SELECT body FROM silences WHERE \(after)::float8 IS NULL OR ends_at > \(after)::float8
                ORDER BY created_at DESC, id DESC LIMIT \(max(1, limit))
                """, logger: logger).collect()
        }
        return try rows.map { try decoder.decode(Silence.self, from: Data(try $0.decode(String.self).utf8)) }
    }

    public func silence(id: String) async throws -> Silence? {
        let decoder = self.decoder
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("SELECT body FROM silences WHERE id = \(id)", logger: logger).collect()
        }
        return try rows.first.map { try decoder.decode(Silence.self, from: Data(try $0.decode(String.self).utf8)) }
    }

    public func expireSilence(id: String, now: Date) async throws -> Silence? {
        try await changeSilence(id: id) { $0.expire(at: now) }
    }

    /// Reads the silence locked, applies `change` and, when it says it changed something, writes
    /// its times and body back: two operators expiring it at once write one end (the first), and
    /// a maintenance step recorded while an operator cancels it never writes over the cancel.
    private func changeSilence(id: String, _ change: @escaping @Sendable (inout Silence) -> Bool) async throws -> Silence? {
        let decoder = self.decoder
        let encoder = self.encoder
        let logger = self.logger
        return try await transaction { connection in
            guard let row = try await connection.query("""
                SELECT body FROM silences WHERE id = \(id) FOR UPDATE
                """, logger: logger).collect().first else { return nil }
            var silence = try decoder.decode(Silence.self, from: Data(try row.decode(String.self).utf8))
            guard change(&silence) else { return silence }
            let body = String(decoding: try encoder.encode(silence), as: UTF8.self)
            _ = try await connection.query("""
                UPDATE silences SET starts_at = \(silence.startsAt.timeIntervalSince1970), ends_at = \(silence.endsAt.timeIntervalSince1970),
                    body = \(body)
                WHERE id = \(id)
                """, logger: logger).collect()
            return silence
        }
    }

    public func maintenanceWindows(endingAfter: Date, limit: Int) async throws -> [Silence] {
        let decoder = self.decoder
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT body FROM silences WHERE substr(id, 1, 4) = \(Maintenance.idPrefix) AND ends_at > \(endingAfter.timeIntervalSince1970)
                ORDER BY starts_at, id LIMIT \(max(1, limit))
                """, logger: logger).collect()
        }
        return try rows.map { try decoder.decode(Silence.self, from: Data(try $0.decode(String.self).utf8)) }.filter(\.isMaintenance)
    }

    public func recordMaintenanceStep(id: String, step: Maintenance.Step, at: Date) async throws -> Silence? {
        try await changeSilence(id: id) { $0.record(step, at: at) }
    }

    /// What `releaseSilences` writes for one notice.
    private struct UnsilenceRow: Encodable {
        var id: String
        var state: String
        var silenced_by: String?
    }

    /// The notices held by a silence that has ended, locked with `SKIP LOCKED`: another node
    /// releasing at the same time takes the others (and signals their channels to every node),
    /// and a notice an enqueue holds right now — its incident's event is being committed — is
    /// left for the next pass (the dispatcher's sweep), so this never waits behind ingest. A
    /// resolve that commits first has superseded the notice; one that commits after finds it
    /// queued and supersedes it then.
    public func releaseSilences(now: Date) async throws -> SilenceRelease {
        let decoder = self.decoder
        let logger = self.logger
        let workChannel = Self.workChannel
        let t = now.timeIntervalSince1970
        return try await transaction(timeout: Self.hotPathTimeout) { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.liveColumns), e.body, d.silenced_by FROM deliveries AS d
                JOIN silences AS s ON s.id = d.silenced_by
                LEFT JOIN incidents AS i ON i.key = d.incident
                JOIN events AS e ON e.id = d.event_id
                WHERE d.state = 'silenced' AND s.ends_at <= \(t)
                ORDER BY d.seq
                LIMIT \(SilenceRelease.batch)
                FOR UPDATE OF d SKIP LOCKED
                """, logger: logger).collect()
            var updates: [UnsilenceRow] = []
            var channels: [String] = []
            if !rows.isEmpty {
                let inForce = try await Self.silencesInForce(now: now, connection, decoder: decoder, logger: logger)
                for row in rows {
                    // `liveColumns`, then the event and the silence that held it.
                    let (id, state, kind, lease, attempts, _, _, channel, _, _, closed, body, heldBy) =
                        try row.decode((String, String, String, String?, Int, String, Int, String, String?, String, Bool, String,
                                        String?).self)
                    guard let state = DeliveryState(rawValue: state), let kind = DeliveryKind(rawValue: kind) else { continue }
                    let current = DeliveryLifecycle.Current(state: state, kind: kind, lease: lease, cycleClosed: closed,
                                                            attempts: attempts)
                    let event = try decoder.decode(Event.self, from: Data(body.utf8))
                    let holder = inForce.holding(event, channel: channel, at: now)?.id
                    guard let (next, by) = DeliveryLifecycle.unsilence(current, stillHeldBy: holder) else { continue }
                    // Going out, it keeps the silence that last held it (for the operator to see).
                    updates.append(UnsilenceRow(id: id, state: next.rawValue, silenced_by: by ?? heldBy))
                    if next == .queued { channels.append(channel) }
                }
            }
            if !updates.isEmpty {
                _ = try await connection.query("""
                    WITH u AS (
                        UPDATE deliveries AS d SET state = r.state, silenced_by = r.silenced_by,
                            due_at = CASE WHEN r.state = 'queued' THEN \(t)::float8 END, updated_at = \(t),
                            -- Its retry budget starts when it goes out: the silence's wait was not its age.
                            budget_since = \(t), budget_attempts = 0
                        FROM jsonb_to_recordset(\(try Self.json(updates))::jsonb) AS r(id text, state text, silenced_by text)
                        WHERE d.id = r.id AND d.state = 'silenced'
                        RETURNING d.channel, d.state
                    )
                    SELECT pg_notify(\(workChannel), c) FROM (SELECT DISTINCT channel AS c FROM u WHERE state = 'queued') AS n
                    """, logger: logger).collect()
            }
            let next = try await connection.query("""
                SELECT MIN(ends_at) FROM silences WHERE ends_at > \(t)
                """, logger: logger).collect().first?.decode(Double?.self)
            return SilenceRelease(channels: channels.uniqued(), nextEnd: next.map(Date.init(timeIntervalSince1970:)),
                                  more: rows.count == SilenceRelease.batch)
        }
    }
}
