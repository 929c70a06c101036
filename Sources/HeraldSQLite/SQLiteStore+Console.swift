import Foundation
import GRDB
import HeraldCore
import HeraldStore

/// Console sessions (see `ConsoleSession`) and the per-channel queue depth the console shows.
extension SQLiteStore {
    public func addConsoleSession(_ session: ConsoleSession) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO console_sessions (id_hash, principal, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [session.idHash, session.principal, session.csrf, session.createdAt.timeIntervalSince1970,
                                     session.expiresAt.timeIntervalSince1970])
            }
        }
    }

    public func consoleSession(idHash: String, now: Date) async throws -> ConsoleSession? {
        try await wrap {
            try await pool.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT id_hash, principal, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = ? AND expires_at > ?
                    """, arguments: [idHash, now.timeIntervalSince1970]).map {
                    ConsoleSession(idHash: $0[0], principal: $0[1], csrf: $0[2], createdAt: Date(timeIntervalSince1970: $0[3]),
                                   expiresAt: Date(timeIntervalSince1970: $0[4]))
                }
            }
        }
    }

    public func removeConsoleSession(idHash: String) async throws -> Bool {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM console_sessions WHERE id_hash = ?", arguments: [idHash])
                return db.changesCount > 0
            }
        }
    }

    public func deleteExpiredConsoleSessions(now: Date) async throws -> Int {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM console_sessions WHERE expires_at <= ?", arguments: [now.timeIntervalSince1970])
                return db.changesCount
            }
        }
    }

    public func event(id: String) async throws -> Event? {
        let decoder = self.decoder
        return try await wrap {
            try await pool.read { db in
                try Data.fetchOne(db, sql: "SELECT body FROM events WHERE id = ?", arguments: [id]).map { try decoder.decode(Event.self, from: $0) }
            }
        }
    }

    public func queueDepths() async throws -> [String: Int] {
        try await wrap {
            try await pool.read { db in
                // The claim index holds only waiting rows: the cost follows the backlog.
                let rows = try Row.fetchAll(db, sql: """
                    SELECT channel, COUNT(*) FROM deliveries INDEXED BY deliveries_due
                    WHERE state IN ('queued', 'retrying') GROUP BY channel
                    """)
                return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as Int) })
            }
        }
    }
}
