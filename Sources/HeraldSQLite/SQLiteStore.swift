import Foundation
import GRDB
import HeraldCore
import HeraldStore
#if canImport(Glibc)
import Glibc
#endif

/// The embedded store: one SQLite file in WAL mode, `synchronous=FULL` so a committed event
/// survives power loss as well as `kill -9` (claims and outcomes, redone after a restart, commit
/// without waiting for the disk; see `WriteScheduler`). One process owns a file at a time (an advisory lock
/// beside it), so `in_flight` rows found at start belong to a dead process.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    /// Orders the writes of the hot paths (see `WriteScheduler`).
    let writer: WriteScheduler
    public let path: String
    private let lockFD: Int32
    let encoder: JSONEncoder
    let decoder: JSONDecoder
    /// Decoded events by id: a fan-out claims the same event once per channel.
    let eventCache = BoundedCache<String, Event>(cost: \.approximateBytes)

    /// Opens (creating if needed) and migrates the store. With `exclusive`, refuses a file another
    /// live process holds.
    public init(path: String, exclusive: Bool = true) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            throw StoreError.cannotOpen("\(path): directory \(dir) does not exist")
        }
        if exclusive {
            let fd = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw StoreError.cannotOpen("\(path): \(String(cString: strerror(errno)))")
            }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                Glibc.close(fd)
                throw StoreError.locked("\(path) is used by another herald process")
            }
            lockFD = fd
        } else {
            lockFD = -1
        }
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // Effective only on a new file, before its first table: pages that retention frees
            // can then go back to the file system (`reclaimSpace`). An older file is converted by
            // `convertSmallFileToIncrementalVacuum` or `herald migrate --store FILE`.
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            writer = WriteScheduler(pool: pool)
            try Self.migrator.migrate(pool)
            let superseded = try pool.read { try Self.migrator.hasBeenSuperseded($0) }
            if superseded {
                let found = try pool.read { try Self.migrator.appliedIdentifiers($0) }.count
                throw StoreError.schemaTooNew(found: found, supported: Self.schemaVersion)
            }
        } catch let error as StoreError {
            if lockFD >= 0 { Glibc.close(lockFD) }
            throw error
        } catch let error as DatabaseError {
            if lockFD >= 0 { Glibc.close(lockFD) }
            throw StoreError.cannotOpen("\(path): \(error.message ?? "\(error.resultCode)")")
        }
        encoder = StoredJSON.encoder()
        decoder = StoredJSON.decoder()
        // Only the file's owner rewrites it.
        if exclusive {
            do {
                try convertSmallFileToIncrementalVacuum()
            } catch {
                throw StoreError.cannotOpen("\(path): \(error)")
            }
        }
    }

    deinit {
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    /// The condition of the partial index deliveries_unsent, word for word: SQLite uses a partial
    /// index only for a query that says it too.
    static let unsentIndexCondition = "state NOT IN ('in_flight', 'delivered')"

    /// The number of migrations this herald knows.
    static let schemaVersion = 7

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    id TEXT PRIMARY KEY,
                    incident TEXT NOT NULL,
                    cycle INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    body BLOB NOT NULL,
                    received_at REAL NOT NULL
                );
                CREATE INDEX events_incident ON events(incident, received_at);
                CREATE TABLE incidents (
                    key TEXT PRIMARY KEY,
                    status TEXT NOT NULL,
                    cycle INTEGER NOT NULL,
                    title TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    opened_at REAL NOT NULL,
                    resolved_at REAL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX incidents_updated ON incidents(updated_at);
                CREATE TABLE deliveries (
                    id TEXT PRIMARY KEY,
                    event_id TEXT NOT NULL REFERENCES events(id),
                    incident TEXT NOT NULL,
                    cycle INTEGER NOT NULL,
                    channel TEXT NOT NULL,
                    recipient TEXT,
                    kind TEXT NOT NULL,
                    state TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    budget_attempts INTEGER NOT NULL DEFAULT 0,
                    budget_since REAL NOT NULL,
                    replays INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    due_at REAL,
                    updated_at REAL NOT NULL,
                    lease_owner TEXT,
                    lease_until REAL,
                    last_status INTEGER,
                    last_error TEXT,
                    receipt TEXT,
                    delivered_at REAL,
                    fallback_of TEXT
                );
                CREATE INDEX deliveries_due ON deliveries(channel, priority DESC, due_at)
                    WHERE state IN ('queued', 'retrying');
                CREATE INDEX deliveries_leases ON deliveries(lease_until) WHERE state = 'in_flight';
                CREATE INDEX deliveries_state ON deliveries(state, created_at);
                CREATE INDEX deliveries_incident ON deliveries(incident, cycle, channel);
                CREATE TABLE attempts (
                    delivery_id TEXT NOT NULL REFERENCES deliveries(id),
                    number INTEGER NOT NULL,
                    replay INTEGER NOT NULL,
                    started_at REAL NOT NULL,
                    duration_ms REAL NOT NULL,
                    outcome TEXT NOT NULL,
                    status INTEGER,
                    reason TEXT,
                    error TEXT,
                    PRIMARY KEY (delivery_id, number)
                ) WITHOUT ROWID;
                CREATE TABLE status_posts (
                    id TEXT PRIMARY KEY,
                    posted_at REAL NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX status_posts_time ON status_posts(posted_at);
                CREATE TABLE idempotency (
                    scope TEXT NOT NULL,
                    key TEXT NOT NULL,
                    body_hash TEXT NOT NULL,
                    response BLOB NOT NULL,
                    created_at REAL NOT NULL,
                    PRIMARY KEY (scope, key)
                ) WITHOUT ROWID;
                """)
        }
        // The lifecycle planner's incident state, lease-fenced outcomes, and the indexes
        // PostgreSQL has (fallbacks and time-ordered listings no longer scan the table).
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE incidents ADD COLUMN components TEXT NOT NULL DEFAULT '[]';
                ALTER TABLE incidents ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
                ALTER TABLE incidents ADD COLUMN link TEXT;
                ALTER TABLE incidents ADD COLUMN acknowledged_at REAL;
                ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT;
                ALTER TABLE incidents ADD COLUMN triggers INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE incidents ADD COLUMN last_seen_at REAL;
                ALTER TABLE deliveries ADD COLUMN lease_token TEXT;
                ALTER TABLE attempts ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX deliveries_fallback ON deliveries(fallback_of) WHERE fallback_of IS NOT NULL;
                CREATE INDEX deliveries_created ON deliveries(created_at, id);
                """)
        }
        // Retention: deleting an event checks no delivery refers to it, and each pruning stage
        // walks its table in time order.
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                CREATE INDEX deliveries_event ON deliveries(event_id);
                CREATE INDEX events_received ON events(received_at, id);
                CREATE INDEX idempotency_created ON idempotency(created_at);
                DROP INDEX incidents_updated;
                CREATE INDEX incidents_updated ON incidents(updated_at, key);
                DROP INDEX status_posts_time;
                CREATE INDEX status_posts_time ON status_posts(posted_at, id);
                """)
        }
        // Silences: a notice a silence holds waits in the `silenced` state, found again through a
        // partial index that holds only those.
        m.registerMigration("v4") { db in
            try db.execute(sql: """
                ALTER TABLE deliveries ADD COLUMN silenced_by TEXT;
                CREATE INDEX deliveries_silenced ON deliveries(silenced_by) WHERE state = 'silenced';
                CREATE TABLE silences (
                    id TEXT PRIMARY KEY,
                    starts_at REAL NOT NULL,
                    ends_at REAL NOT NULL,
                    created_at REAL NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX silences_ends ON silences(ends_at);
                """)
        }
        // Subscribers: confirmed ones walked in id order by the fan-out, unconfirmed ones found
        // by their link's digest and deleted when it expires; the public events still to fan out,
        // in commit order. A cycle's deliveries are found per recipient (a page of subscribers),
        // and a subscriber's waiting ones when they unsubscribe.
        m.registerMigration("v5") { db in
            try db.execute(sql: """
                CREATE TABLE subscribers (
                    id TEXT PRIMARY KEY,
                    address TEXT NOT NULL UNIQUE,
                    components TEXT NOT NULL,
                    token TEXT NOT NULL UNIQUE,
                    confirm_hash TEXT UNIQUE,
                    created_at REAL NOT NULL,
                    expires_at REAL,
                    confirmed_at REAL
                );
                CREATE INDEX subscribers_pending ON subscribers(expires_at) WHERE confirmed_at IS NULL;
                CREATE TABLE fanouts (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL,
                    cycle INTEGER NOT NULL,
                    before BLOB,
                    cursor TEXT,
                    created_at REAL NOT NULL
                );
                DROP INDEX deliveries_incident;
                CREATE INDEX deliveries_incident ON deliveries(incident, cycle, channel, recipient);
                CREATE INDEX deliveries_waiting_recipient ON deliveries(recipient)
                    WHERE recipient IS NOT NULL AND state IN ('queued', 'retrying', 'silenced');
                """)
        }
        // Console sessions: found by their cookie's digest, deleted when they expire.
        m.registerMigration("v6") { db in
            try db.execute(sql: """
                CREATE TABLE console_sessions (
                    id_hash TEXT PRIMARY KEY,
                    principal TEXT NOT NULL,
                    csrf TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX console_sessions_expires ON console_sessions(expires_at);
                """)
        }
        // A delivery's state index leaves out the two states most rows pass through or end in:
        // in flight (deliveries_leases holds those) and delivered. A successful delivery then
        // touches it twice (queued on insert, gone on claim) instead of five times. Lists
        // filtered by state name the same condition.
        m.registerMigration("v7") { db in
            try db.execute(sql: """
                DROP INDEX deliveries_state;
                CREATE INDEX deliveries_unsent ON deliveries(state, created_at)
                    WHERE \(Self.unsentIndexCondition);
                """)
        }
        return m
    }

    func wrap<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_CONSTRAINT, .SQLITE_TOOBIG, .SQLITE_MISMATCH, .SQLITE_RANGE:
                throw StoreError.rejected(error.message ?? "\(error.resultCode)")
            default:
                throw StoreError.underlying(error.message ?? "\(error.resultCode)")
            }
        }
    }
}
