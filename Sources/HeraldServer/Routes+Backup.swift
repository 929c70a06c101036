import Foundation
import HeraldCore
import HeraldSQLite
import HeraldStore
import Hummingbird
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// GET /v1/backup (scope admin): a consistent copy of the SQLite store, made while serving with
/// SQLite's online backup API and streamed as the answer; `herald backup --to FILE` calls it.
///
/// Why the server makes the copy rather than the CLI opening the file: the serving process owns
/// the store (its lock file, its migrations) and its directory is private to Herald's user (as
/// the README asks), often inside a container whose volume nobody else mounts. Through the API the
/// CLI needs only an admin token and the server's URL, from the host, a cron container or another
/// machine, and writes the copy with its own user's permissions; it never opens the live file,
/// so a CLI of another version cannot migrate it under the server. What an admin token can read
/// this way it could already read through the admin API; channel secrets are not in the store.
extension HeraldApplication {
    func addBackupRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/v1/backup") { request, context in
            _ = try self.auth.require(.admin, request, context)
            guard let sqlite = self.store as? SQLiteStore else {
                throw APIError(.conflict, "the store is PostgreSQL: back it up with pg_dump (see the README's Backup and restore)")
            }
            guard BackupsRunning.begin(sqlite.path) else {
                throw APIError(.conflict, "a backup of this store is already running")
            }
            // The copy is made beside the store (same file system, Herald's own directory), then
            // unlinked as soon as it is open: nothing is left behind once the answer is sent, or
            // if the client goes away.
            let directory = (sqlite.path as NSString).deletingLastPathComponent
            let temporary = (directory.isEmpty ? "." : directory) + "/.herald-backup-\(UUID().uuidString).sqlite"
            let started = ContinuousClock.now
            let size: Int
            let file: FileHandle
            do {
                defer { BackupsRunning.end(sqlite.path) }
                size = try await sqlite.backup(to: temporary)
                guard let handle = FileHandle(forReadingAtPath: temporary) else {
                    unlink(temporary)
                    throw APIError(.internalServerError, "backup: cannot reopen the copy")
                }
                unlink(temporary)
                file = handle
            } catch let error as StoreError {
                self.logger.error("backup failed", metadata: ["error": "\(error)"])
                throw APIError(.internalServerError, "backup failed: \(error)")
            }
            self.logger.info("backup made", metadata: [
                "bytes": "\(size)", "ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
            ])
            let name = "herald-\(RFC3339.format(Date()).replacingOccurrences(of: ":", with: "")).sqlite"
            return Response(
                status: .ok,
                headers: [.contentType: "application/vnd.sqlite3", .contentDisposition: "attachment; filename=\"\(name)\"",
                          .cacheControl: "no-store"],
                body: ResponseBody(contentLength: size) { writer in
                    defer { try? file.close() }
                    var sent = 0
                    while sent < size {
                        let chunk = try file.read(upToCount: min(1 << 20, size - sent)) ?? Data()
                        if chunk.isEmpty { break }
                        try await writer.write(ByteBuffer(bytes: chunk))
                        sent += chunk.count
                    }
                    try await writer.finish(nil)
                })
        }
    }
}

/// Stores with a backup in progress: one at a time per store, so a retried call cannot fill the
/// disk with copies.
enum BackupsRunning {
    private static let paths = Mutex<Set<String>>([])
    static func begin(_ path: String) -> Bool { paths.withLock { $0.insert(path).inserted } }
    static func end(_ path: String) { _ = paths.withLock { $0.remove(path) } }
}
