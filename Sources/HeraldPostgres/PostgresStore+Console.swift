import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

/// Console sessions and per-channel queue depth, as `SQLiteStore` keeps them.
extension PostgresStore {
    public func addConsoleSession(_ session: ConsoleSession) async throws {
        let logger = self.logger
        _ = try await run { connection in
            try await connection.query("""
                INSERT INTO console_sessions (id_hash, principal, csrf, created_at, expires_at)
                VALUES (\(session.idHash), \(session.principal), \(session.csrf), \(session.createdAt.timeIntervalSince1970),
                        \(session.expiresAt.timeIntervalSince1970))
                """, logger: logger).collect()
        }
    }

    public func consoleSession(idHash: String, now: Date) async throws -> ConsoleSession? {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT id_hash, principal, csrf, created_at, expires_at FROM console_sessions
                WHERE id_hash = \(idHash) AND expires_at > \(now.timeIntervalSince1970)
                """, logger: logger).collect()
        }
        return try rows.first.map {
            let (id, principal, csrf, created, expires) = try $0.decode((String, String, String, Double, Double).self)
            return ConsoleSession(idHash: id, principal: principal, csrf: csrf, createdAt: Date(timeIntervalSince1970: created),
                                  expiresAt: Date(timeIntervalSince1970: expires))
        }
    }

    public func removeConsoleSession(idHash: String) async throws -> Bool {
        let logger = self.logger
        return try await run { connection in
            try await connection.query("DELETE FROM console_sessions WHERE id_hash = \(idHash) RETURNING 1", logger: logger)
                .collect().count > 0
        }
    }

    public func deleteExpiredConsoleSessions(now: Date) async throws -> Int {
        let logger = self.logger
        return try await run { connection in
            try await connection.query("""
                DELETE FROM console_sessions WHERE expires_at <= \(now.timeIntervalSince1970) RETURNING 1
                """, logger: logger).collect().count
        }
    }

    public func event(id: String) async throws -> Event? {
        let (logger, decoder) = (self.logger, self.decoder)
        let rows = try await run { connection in
            try await connection.query("SELECT body FROM events WHERE id = \(id)", logger: logger).collect()
        }
        return try rows.first.map { try decoder.decode(Event.self, from: Data(try $0.decode(String.self).utf8)) }
    }

    public func queueDepths() async throws -> [String: Int] {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT channel, count(*)::int8 FROM deliveries WHERE state IN ('queued', 'retrying') GROUP BY channel
                """, logger: logger).collect()
        }
        var depths: [String: Int] = [:]
        for row in rows {
            let (channel, n) = try row.decode((String, Int).self)
            depths[channel] = n
        }
        return depths
    }
}
