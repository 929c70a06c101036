import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres
import HeraldStore
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply Herald's schema migrations to a PostgreSQL store.",
        discussion: """
            Run once before the first `herald serve` on a new database, and after upgrading herald.
            Safe to run again: it applies only what is missing, and refuses a schema newer than this
            binary. The SQLite store migrates itself on start.

            Exit codes: 0 done, 1 the database is unreachable or its schema is newer, 2 usage.
            """)

    @Option(help: "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default: store.url of --config).")
    var store: String?

    @Option(help: "Configuration file whose store.url to migrate (default: $HERALD_CONFIG).")
    var config: String?

    func run() async throws {
        let url: String
        if let store {
            url = store
        } else if config != nil || ProcessInfo.processInfo.environment["HERALD_CONFIG"] != nil {
            guard let configured = try loadConfig(config).store.url?.value else {
                throw CLIExit.usage("herald migrate: the configuration has no store.url (SQLite migrates itself on start)")
            }
            url = configured
        } else {
            throw CLIExit.usage("herald migrate: pass --store postgres://… or --config FILE")
        }
        guard StoreConfig.isPostgresURL(url) else {
            throw CLIExit.usage("herald migrate: --store must be a postgres:// URL (SQLite migrates itself on start)")
        }
        do {
            let (from, to) = try await PostgresStore.migrate(url: url, logger: Logger(label: "herald"))
            print(from == to ? "schema is up to date (version \(to))" : "migrated schema from version \(from) to \(to)")
        } catch let error as StoreError {
            throw CLIExit.local("herald migrate: \(error)")
        }
    }
}
