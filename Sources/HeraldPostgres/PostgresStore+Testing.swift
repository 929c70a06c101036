import Foundation
import HeraldStore
import PostgresNIO

/// Helpers for tests (`@testable import HeraldPostgres`): fresh databases and raw statements.
extension PostgresStore {
    /// Creates a database on the server of `serverURL` and answers the URL of it.
    static func createDatabase(serverURL: String, name: String) async throws -> String {
        let settings = try PostgresURL(serverURL)
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw StoreError.underlying("bad database name \(name)")
        }
        try await withProbeConnection(settings, logger: Logger(label: "herald.postgres.test")) { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: connection.logger).collect()
        }
        guard var parts = URLComponents(string: serverURL) else { throw StoreError.underlying("bad URL") }
        parts.path = "/" + name
        return parts.string ?? serverURL
    }

    /// Runs one statement outside the store's API (to break things on purpose).
    static func execute(url: String, _ sql: String) async throws {
        let settings = try PostgresURL(url)
        try await withProbeConnection(settings, logger: Logger(label: "herald.postgres.test")) { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: connection.logger).collect()
        }
    }

    /// The first column of the first row of `sql`, as an integer (0 when there is no row).
    static func integer(url: String, _ sql: String) async throws -> Int64 {
        let settings = try PostgresURL(url)
        return try await withProbeConnection(settings, logger: Logger(label: "herald.postgres.test")) { connection in
            for try await (value) in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: connection.logger).decode(Int64.self) {
                return value
            }
            return 0
        }
    }
}
