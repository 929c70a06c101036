import Foundation
import GRDB
import Testing
@testable import HeraldPostgres
@testable import HeraldSQLite

/// A migration that has shipped must never change: stores made before the change would differ
/// from stores made after it. These tests hold each store's schema, version by version, against a
/// snapshot in Tests/Fixtures/schemas. Adding a migration means adding its section there; editing
/// a shipped one fails here. To write the snapshots after adding a migration, run the tests with
/// HERALD_WRITE_SCHEMA_SNAPSHOTS=1 and review the diff.
@Suite struct MigrationSnapshotTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/schemas")

    /// SQLite: what each version leaves in `sqlite_master` (tables, indexes, triggers), in name order.
    @Test func sqliteMigrationsMatchTheirSnapshots() throws {
        var text = ""
        for version in 1...SQLiteStore.schemaVersion {
            let db = try DatabaseQueue()
            try SQLiteStore.migrator.migrate(db, upTo: "v\(version)")
            let rows = try db.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT type, name, sql FROM sqlite_master
                    WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations'
                    ORDER BY type, name
                    """)
            }
            text += "-- v\(version)\n"
            for row in rows {
                let type: String = row["type"], name: String = row["name"], sql: String = row["sql"]
                text += "\(type) \(name): \(Self.collapsed(sql))\n"
            }
        }
        try Self.check(text, against: "sqlite.txt")
    }

    /// PostgreSQL: each version's statements, as the migration runs them.
    @Test func postgresMigrationsMatchTheirSnapshots() throws {
        #expect(PostgresStore.migrations.keys.sorted() == Array(1...PostgresStore.schemaVersion),
                "every version up to schemaVersion has a migration, and none beyond it")
        var text = ""
        for version in 1...PostgresStore.schemaVersion {
            text += "-- v\(version)\n"
            for statement in PostgresStore.migrations[version] ?? [] {
                text += Self.collapsed(statement) + "\n"
            }
        }
        try Self.check(text, against: "postgres.txt")
    }

    /// Layout is not schema: runs of white space count as one space.
    static func collapsed(_ sql: String) -> String {
        sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }

    static func check(_ actual: String, against name: String) throws {
        let file = directory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["HERALD_WRITE_SCHEMA_SNAPSHOTS"] == "1" {
            try actual.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        let expected = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let got = actual.split(separator: "\n", omittingEmptySubsequences: false)
        // Name the first section and line that differ, rather than printing two whole schemas.
        var section = "(before any version)"
        for i in 0..<max(want.count, got.count) {
            let w = i < want.count ? String(want[i]) : "(nothing)"
            let g = i < got.count ? String(got[i]) : "(nothing)"
            if g.hasPrefix("-- v") { section = String(g.dropFirst(3)) }
            if w != g {
                Issue.record("""
                    schema snapshot \(name) differs in \(section), line \(i + 1):
                      snapshot: \(w)
                      now:      \(g)
                    A shipped migration must not change; a new one needs its snapshot \
                    (HERALD_WRITE_SCHEMA_SNAPSHOTS=1, then review the diff).
                    """)
                return
            }
        }
    }
}
