import Foundation
import GRDB
import HeraldCore
import HeraldStore

extension SQLiteStore {
    /// The silences in force at `now`, for the planner (usually none: one indexed probe).
    static func silencesInForce(now: Date, db: Database, decoder: JSONDecoder) throws -> [Silence] {
        let t = now.timeIntervalSince1970
        return try Data.fetchAll(db.cachedStatement(sql: """
            SELECT body FROM silences WHERE ends_at > ? AND starts_at <= ?
            """), arguments: [t, t]).map { try SilenceMemo.decode($0, with: decoder) }
    }

    public func addSilence(_ silence: Silence) async throws {
        let body = try encoder.encode(silence)
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO silences (id, starts_at, ends_at, created_at, body) VALUES (?, ?, ?, ?, ?)",
                               arguments: [silence.id, silence.startsAt.timeIntervalSince1970, silence.endsAt.timeIntervalSince1970,
                                           silence.createdAt.timeIntervalSince1970, body])
            }
        }
    }

    public func silences(includeExpired: Bool, now: Date, limit: Int) async throws -> [Silence] {
        let decoder = self.decoder
        return try await wrap {
            try await pool.read { db in
                try Data.fetchAll(db, sql: """
                    SELECT body FROM silences WHERE ends_at > ? ORDER BY created_at DESC, id DESC LIMIT ?
                    """, arguments: [includeExpired ? -Double.infinity : now.timeIntervalSince1970, max(1, limit)])
                    .map { try decoder.decode(Silence.self, from: $0) }
            }
        }
    }

    public func silence(id: String) async throws -> Silence? {
        let decoder = self.decoder
        return try await wrap {
            try await pool.read { db in
                try Data.fetchOne(db, sql: "SELECT body FROM silences WHERE id = ?", arguments: [id])
                    .map { try decoder.decode(Silence.self, from: $0) }
            }
        }
    }

    public func expireSilence(id: String, now: Date) async throws -> Silence? {
        try await changeSilence(id: id) { $0.expire(at: now) }
    }

    /// Reads the silence, applies `change` and, when it says it changed something, writes its
    /// times and body back, in one write transaction. Answers the silence as stored.
    private func changeSilence(id: String, _ change: @escaping @Sendable (inout Silence) -> Bool) async throws -> Silence? {
        let decoder = self.decoder
        let encoder = self.encoder
        return try await wrap {
            try await pool.write { db in
                guard let body = try Data.fetchOne(db, sql: "SELECT body FROM silences WHERE id = ?", arguments: [id]) else {
                    return nil
                }
                var silence = try decoder.decode(Silence.self, from: body)
                guard change(&silence) else { return silence }
                try db.execute(sql: "UPDATE silences SET starts_at = ?, ends_at = ?, body = ? WHERE id = ?",
                               arguments: [silence.startsAt.timeIntervalSince1970, silence.endsAt.timeIntervalSince1970,
                                           try encoder.encode(silence), id])
                return silence
            }
        }
    }

    public func maintenanceWindows(endingAfter: Date, limit: Int) async throws -> [Silence] {
        let decoder = self.decoder
        return try await wrap {
            try await pool.read { db in
                try Data.fetchAll(db, sql: """
                    SELECT body FROM silences WHERE substr(id, 1, 4) = ? AND ends_at > ? ORDER BY starts_at, id LIMIT ?
                    """, arguments: [Maintenance.idPrefix, endingAfter.timeIntervalSince1970, max(1, limit)])
                    .map { try decoder.decode(Silence.self, from: $0) }.filter(\.isMaintenance)
            }
        }
    }

    public func recordMaintenanceStep(id: String, step: Maintenance.Step, at: Date) async throws -> Silence? {
        try await changeSilence(id: id) { $0.record(step, at: at) }
    }

    public func releaseSilences(now: Date) async throws -> SilenceRelease {
        let decoder = self.decoder
        let t = now.timeIntervalSince1970
        return try await wrap {
            try await pool.write { db in
                // The notices held by a silence that has ended (the partial index holds only those
                // silenced); each goes out unless another silence in force holds it.
                let rows = try Row.fetchAll(db, sql: """
                    SELECT \(Self.liveColumns), e.body, d.silenced_by FROM deliveries AS d
                    JOIN silences AS s ON s.id = d.silenced_by
                    LEFT JOIN incidents AS i ON i.key = d.incident
                    JOIN events AS e ON e.id = d.event_id
                    WHERE d.state = 'silenced' AND s.ends_at <= ?
                    LIMIT ?
                    """, arguments: [t, SilenceRelease.batch])
                var channels: [String] = []
                if !rows.isEmpty {
                    let inForce = try Self.silencesInForce(now: now, db: db, decoder: decoder)
                    let update = try db.cachedStatement(sql: """
                        UPDATE deliveries SET state = ?, silenced_by = ?, due_at = ?, budget_since = ?, budget_attempts = 0, updated_at = ?
                        WHERE id = ? AND state = 'silenced'
                        """)
                    for row in rows {
                        guard let live = Self.liveRow(row) else { continue }
                        let event = try decoder.decode(Event.self, from: row[11] as Data)
                        let holder = inForce.holding(event, channel: live.target.channel, at: now)?.id
                        guard let (state, by) = DeliveryLifecycle.unsilence(live.current, stillHeldBy: holder) else { continue }
                        // Its retry budget starts when it goes out: the silence's wait was not its age.
                        try update.execute(arguments: [state.rawValue, by ?? row[12] as String?, state == .queued ? t : nil, t, t, live.id])
                        if state == .queued { channels.append(live.target.channel) }
                    }
                }
                let next = try Double.fetchOne(db, sql: "SELECT MIN(ends_at) FROM silences WHERE ends_at > ?", arguments: [t])
                return SilenceRelease(channels: channels.uniqued(), nextEnd: next.map(Date.init(timeIntervalSince1970:)),
                                      more: rows.count == SilenceRelease.batch)
            }
        }
    }
}
