import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres
import HeraldSQLite
import HeraldStore
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply Herald's schema migrations to a PostgreSQL store (or convert a SQLite file).",
        discussion: """
            Run once before the first `herald serve` on a new database, and after upgrading herald.
            Safe to run again: it applies only what is missing, and refuses a schema newer than this
            binary. The SQLite store migrates itself on start; `herald migrate --store FILE`, with
            herald stopped, also rewrites a SQLite file made before retention existed so that it gives
            the space of pruned rows back (a VACUUM: it needs free disk the size of the file).

            Exit codes: 0 done, 1 the database is unreachable or its schema is newer, 2 usage.
            """)

    @Option(help: "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or a SQLite file (default: the store of --config).")
    var store: String?

    @Option(help: "Configuration file whose store.url to migrate (default: $HERALD_CONFIG).")
    var config: String?

    func run() async throws {
        let url: String
        if let store {
            url = store
        } else if config != nil || ProcessInfo.processInfo.environment["HERALD_CONFIG"] != nil {
            let loaded = try loadConfig(config)
            url = loaded.store.url?.value ?? loaded.store.path
        } else {
            throw CLIExit.usage("herald migrate: pass --store postgres://… or --config FILE")
        }
        guard StoreConfig.isPostgresURL(url) else {
            try convertSQLite(path: url)
            return
        }
        do {
            let (from, to) = try await PostgresStore.migrate(url: url, logger: Logger(label: "herald"))
            print(from == to ? "schema is up to date (version \(to))" : "migrated schema from version \(from) to \(to)")
        } catch let error as StoreError {
            throw CLIExit.local("herald migrate: \(error)")
        }
    }

    /// A SQLite file: the schema migrates on open; a file made before retention is rewritten with
    /// incremental auto-vacuum.
    private func convertSQLite(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIExit.local("herald migrate: \(path): no such file (a new SQLite store is made by `herald serve`)")
        }
        do {
            let store = try SQLiteStore(path: path)
            if try store.enableIncrementalVacuum() {
                print("converted \(path) to incremental auto-vacuum: pruned rows now give their space back")
            } else {
                print("schema is up to date, and \(path) gives the space of pruned rows back")
            }
        } catch let error as StoreError {
            throw CLIExit.local("herald migrate: \(error)")
        }
    }
}
