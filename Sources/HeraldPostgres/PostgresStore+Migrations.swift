import Foundation
import HeraldStore
import PostgresNIO

/// The schema, versioned in `herald_schema` (one row). Each migration runs in one transaction
/// under an advisory lock, so nodes starting together with `--migrate` migrate once.
extension PostgresStore {
    /// The schema version this herald reads and writes.
    public static let schemaVersion = 6

    /// Statements per version, in order. Never edit a released one: add a version.
    static let migrations: [Int: [String]] = [
        1: [
            """
            CREATE TABLE events (
                id TEXT PRIMARY KEY,
                incident TEXT NOT NULL,
                cycle INTEGER NOT NULL,
                status TEXT NOT NULL,
                body TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX events_incident ON events (incident, received_at)",
            """
            CREATE TABLE incidents (
                key TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                cycle INTEGER NOT NULL,
                title TEXT NOT NULL,
                severity TEXT NOT NULL,
                opened_at DOUBLE PRECISION NOT NULL,
                resolved_at DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX incidents_updated ON incidents (updated_at)",
            // seq keeps insertion order (SQLite's rowid): ties in due time and plan order.
            """
            CREATE TABLE deliveries (
                seq BIGINT GENERATED ALWAYS AS IDENTITY,
                id TEXT PRIMARY KEY,
                event_id TEXT NOT NULL REFERENCES events (id),
                incident TEXT NOT NULL,
                cycle INTEGER NOT NULL,
                channel TEXT NOT NULL,
                recipient TEXT,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                priority INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                budget_attempts INTEGER NOT NULL DEFAULT 0,
                budget_since DOUBLE PRECISION NOT NULL,
                replays INTEGER NOT NULL DEFAULT 0,
                created_at DOUBLE PRECISION NOT NULL,
                due_at DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL,
                lease_owner TEXT,
                lease_until DOUBLE PRECISION,
                last_status INTEGER,
                last_error TEXT,
                receipt TEXT,
                delivered_at DOUBLE PRECISION,
                fallback_of TEXT
            )
            """,
            """
            CREATE INDEX deliveries_due ON deliveries (channel, priority DESC, due_at, seq)
                WHERE state IN ('queued', 'retrying')
            """,
            "CREATE INDEX deliveries_leases ON deliveries (lease_until) WHERE state = 'in_flight'",
            "CREATE INDEX deliveries_state ON deliveries (state, created_at)",
            "CREATE INDEX deliveries_incident ON deliveries (incident, cycle, channel)",
            "CREATE INDEX deliveries_created ON deliveries (created_at, id)",
            "CREATE INDEX deliveries_fallback ON deliveries (fallback_of) WHERE fallback_of IS NOT NULL",
            """
            CREATE TABLE attempts (
                delivery_id TEXT NOT NULL REFERENCES deliveries (id),
                number INTEGER NOT NULL,
                replay INTEGER NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                duration_ms DOUBLE PRECISION NOT NULL,
                outcome TEXT NOT NULL,
                status INTEGER,
                reason TEXT,
                error TEXT,
                PRIMARY KEY (delivery_id, number)
            )
            """,
            """
            CREATE TABLE status_posts (
                id TEXT PRIMARY KEY,
                posted_at DOUBLE PRECISION NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX status_posts_time ON status_posts (posted_at)",
            """
            CREATE TABLE idempotency (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                body_hash TEXT NOT NULL,
                response TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (scope, key)
            )
            """,
            // The rate limiter all nodes share: one token bucket per channel.
            """
            CREATE TABLE rate_buckets (
                channel TEXT PRIMARY KEY,
                tokens DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                last_granted INTEGER NOT NULL DEFAULT 0
            )
            """,
        ],
        // The lifecycle planner's incident state, and lease-fenced outcomes.
        2: [
            "ALTER TABLE incidents ADD COLUMN components TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE incidents ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE incidents ADD COLUMN link TEXT",
            "ALTER TABLE incidents ADD COLUMN acknowledged_at DOUBLE PRECISION",
            "ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT",
            "ALTER TABLE incidents ADD COLUMN triggers INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE incidents ADD COLUMN last_seen_at DOUBLE PRECISION",
            "ALTER TABLE deliveries ADD COLUMN lease_token TEXT",
            "ALTER TABLE attempts ADD COLUMN late BOOLEAN NOT NULL DEFAULT false",
        ],
        // Retention: deleting an event checks no delivery refers to it, and each pruning stage
        // walks its table in time order.
        3: [
            "CREATE INDEX deliveries_event ON deliveries (event_id)",
            "CREATE INDEX events_received ON events (received_at, id)",
            "CREATE INDEX idempotency_created ON idempotency (created_at)",
            "DROP INDEX incidents_updated",
            "CREATE INDEX incidents_updated ON incidents (updated_at, key)",
            "DROP INDEX status_posts_time",
            "CREATE INDEX status_posts_time ON status_posts (posted_at, id)",
        ],
        // Silences: a notice a silence holds waits in the `silenced` state, found again through a
        // partial index that holds only those (adding the nullable column rewrites nothing).
        4: [
            "ALTER TABLE deliveries ADD COLUMN silenced_by TEXT",
            "CREATE INDEX deliveries_silenced ON deliveries (silenced_by) WHERE state = 'silenced'",
            """
            CREATE TABLE silences (
                id TEXT PRIMARY KEY,
                starts_at DOUBLE PRECISION NOT NULL,
                ends_at DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX silences_ends ON silences (ends_at)",
        ],
        // Subscribers, and the public events still to fan out to them (see SQLite's v5).
        5: [
            """
            CREATE TABLE subscribers (
                id TEXT PRIMARY KEY,
                address TEXT NOT NULL UNIQUE,
                components TEXT NOT NULL,
                token TEXT NOT NULL UNIQUE,
                confirm_hash TEXT UNIQUE,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION,
                confirmed_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX subscribers_pending ON subscribers (expires_at) WHERE confirmed_at IS NULL",
            """
            CREATE TABLE fanouts (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                event_id TEXT NOT NULL,
                cycle INTEGER NOT NULL,
                before TEXT,
                cursor TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
            "DROP INDEX deliveries_incident",
            "CREATE INDEX deliveries_incident ON deliveries (incident, cycle, channel, recipient)",
            """
            CREATE INDEX deliveries_waiting_recipient ON deliveries (recipient)
                WHERE recipient IS NOT NULL AND state IN ('queued', 'retrying', 'silenced')
            """,
        ],
        // Console sessions (see SQLite's v6).
        6: [
            """
            CREATE TABLE console_sessions (
                id_hash TEXT PRIMARY KEY,
                principal TEXT NOT NULL,
                csrf TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX console_sessions_expires ON console_sessions (expires_at)",
        ],
    ]

    /// An arbitrary constant: the advisory lock that serialises migrations.
    static let migrationLock: Int64 = 0x6865_7261_6C64 // "herald"

    /// The schema version of the database, nil when it has no herald schema.
    static func schemaVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int? {
        let exists = try await connection.query("SELECT to_regclass('herald_schema') IS NOT NULL", logger: logger)
            .collect().first?.decode(Bool.self) ?? false
        guard exists else { return nil }
        return try await connection.query("SELECT COALESCE(MAX(version), 0)::int8 FROM herald_schema", logger: logger)
            .collect().first?.decode(Int.self)
    }

    /// Brings the schema to `schemaVersion` in one transaction. Answers the versions before and after.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> (from: Int, to: Int) {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS herald_schema (version INTEGER NOT NULL)", logger: logger)
            let found = try await connection.query("SELECT COALESCE(MAX(version), 0)::int8 FROM herald_schema", logger: logger)
                .collect().first?.decode(Int.self) ?? 0
            if found > schemaVersion {
                throw StoreError.schemaTooNew(found: found, supported: schemaVersion)
            }
            if found < schemaVersion {
                for version in (found + 1)...schemaVersion {
                    for statement in migrations[version] ?? [] {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                try await connection.query("DELETE FROM herald_schema", logger: logger)
                try await connection.query("INSERT INTO herald_schema (version) VALUES (\(schemaVersion))", logger: logger)
            }
            try await connection.query("COMMIT", logger: logger)
            return (found, schemaVersion)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }
}
