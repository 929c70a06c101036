import Foundation
import GRDB
import HeraldStore
#if canImport(Glibc)
import Glibc
#endif

extension SQLiteStore {
    /// Copies the store, while it serves, into a new SQLite file at `path` with SQLite's online
    /// backup API. The whole copy is one step inside one read transaction of the pool, so it is
    /// a snapshot: every transaction committed before the read began is in it, none that commits
    /// later is, and in WAL mode writers go on meanwhile (only checkpoints wait for the reader).
    /// The file must not exist; on failure it is removed. Answers the copy's size in bytes.
    public func backup(to path: String) async throws -> Int {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw StoreError.underlying("backup: \(path) already exists")
        }
        do {
            let destination = try DatabaseQueue(path: path)
            // On GRDB's reader queue, not a cooperative thread: a large store takes seconds.
            try await pool.read { source in
                try destination.writeWithoutTransaction { target in
                    try source.backup(to: target)
                }
            }
            try destination.close()
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            return size
        } catch {
            unlink(path)
            if let error = error as? DatabaseError {
                throw StoreError.underlying("backup: \(error.message ?? "\(error.resultCode)")")
            }
            throw error
        }
    }

    /// What a backup file holds, read without changing it: SQLite's `quick_check`, Herald's
    /// schema version and the rows that matter. Throws when the file is not a readable SQLite
    /// database.
    public static func inspectBackup(at path: String) throws -> BackupInfo {
        var config = Configuration()
        config.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            defer { try? queue.close() }
            return try queue.read { db in
                let check = try String.fetchAll(db, sql: "PRAGMA quick_check")
                let migrations = try migrator.appliedIdentifiers(db)
                func count(_ table: String) throws -> Int {
                    try db.tableExists(table) ? Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 : 0
                }
                return BackupInfo(integrity: check == ["ok"] ? nil : check.prefix(5).joined(separator: "; "),
                                  schemaVersion: migrations.count,
                                  deliveries: try count("deliveries"), events: try count("events"), incidents: try count("incidents"))
            }
        } catch let error as DatabaseError {
            throw StoreError.cannotOpen("\(path): \(error.message ?? "\(error.resultCode)")")
        }
    }
}

/// A backup file, as `SQLiteStore.inspectBackup` found it.
public struct BackupInfo: Sendable {
    /// Nil when `PRAGMA quick_check` says ok, else its first complaints.
    public var integrity: String?
    /// Migrations applied: the schema version Herald will see when it opens the copy.
    public var schemaVersion: Int
    public var deliveries: Int
    public var events: Int
    public var incidents: Int
}
