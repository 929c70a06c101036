import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO
import Synchronization

/// The shared store: PostgreSQL, for several herald nodes at once. Same behaviour as `SQLiteStore`
/// (the conformance suite runs against both); deliveries are claimed with `FOR UPDATE SKIP LOCKED`
/// under a lease, so nodes never take the same delivery, and in-flight rows found at start may
/// belong to a live node (`isShared`). Times are epoch seconds (double precision), as in SQLite.
public final class PostgresStore: Store {
    let client: PostgresClient
    let settings: PostgresURL
    let logger: Logger
    let encoder: JSONEncoder
    let decoder: JSONDecoder
    /// Decoded events by id: a fan-out claims the same event once per channel.
    let eventCache = BoundedCache<String, Event>(cost: \.approximateBytes)
    /// How long an operation waits for a pooled connection before failing (the database is down).
    let leaseTimeout: Duration
    /// Fails an operation whose connection closed under it (see `ConnectionWatch`).
    let watch = ConnectionWatch()
    private let runTask: Task<Void, Never>
    private let state = Mutex(State())

    private struct State {
        var closed = false
        var listeners: [Int: Task<Void, Never>] = [:]
        var nextListener = 0
    }

    /// The channel that `pg_notify` uses for new due work.
    static let workChannel = "herald_work"

    private init(settings: PostgresURL, logger: Logger, leaseTimeout: Duration) throws {
        self.settings = settings
        // Queries log at debug; keep the pool and the queries to warnings and above.
        self.logger = Self.quietLogger(logger)
        self.leaseTimeout = leaseTimeout
        var config = try settings.clientConfiguration()
        config.options.maximumConnections = settings.poolSize
        config.options.minimumConnections = 0
        config.options.keepAliveBehavior = .init(frequency: .seconds(15))
        let client = PostgresClient(configuration: config, backgroundLogger: self.logger)
        self.client = client
        runTask = Task { await client.run() }
        encoder = StoredJSON.encoder()
        decoder = StoredJSON.decoder()
    }

    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=disable`) and checks
    /// the schema; with `migrate`, brings it up to date first. Fails within a few seconds with
    /// `StoreError.cannotOpen` when the server cannot be reached, `StoreError.notMigrated` when the
    /// database has no (or an older) herald schema and `migrate` is false, and
    /// `StoreError.schemaTooNew` when a newer herald migrated it. No error carries the password.
    public static func open(url: String, migrate: Bool, logger: Logger = Logger(label: "herald.postgres")) async throws -> PostgresStore {
        let settings = try PostgresURL(url)
        try await withProbeConnection(settings, logger: logger) { connection in
            if migrate {
                let (from, to) = try await Self.migrate(connection, logger: logger)
                if from != to {
                    logger.info("migrated the herald schema", metadata: ["from": "\(from)", "to": "\(to)", "store": "\(settings.redacted)"])
                }
            } else {
                let found = try await Self.schemaVersion(connection, logger: logger)
                if found == nil || found == 0 {
                    throw StoreError.notMigrated("\(settings.redacted)")
                }
                if let found, found > Self.schemaVersion {
                    throw StoreError.schemaTooNew(found: found, supported: Self.schemaVersion)
                }
                if let found, found < Self.schemaVersion {
                    throw StoreError.notMigrated("schema version \(found), this herald needs \(Self.schemaVersion)")
                }
            }
        }
        return try PostgresStore(settings: settings, logger: logger, leaseTimeout: settings.connectTimeout)
    }

    /// `herald migrate --store URL`: brings the schema up to date. Answers the versions before and after.
    public static func migrate(url: String, logger: Logger = Logger(label: "herald.postgres")) async throws -> (from: Int, to: Int) {
        let settings = try PostgresURL(url)
        return try await withProbeConnection(settings, logger: logger) { connection in
            try await Self.migrate(connection, logger: logger)
        }
    }

    /// The server URL with the password replaced, for logs.
    public var redactedURL: String { settings.redacted }

    public var isShared: Bool { true }

    /// Stops the connection pool and every `workSignals` listener. The store is not used afterwards.
    public func close() async {
        let listeners = state.withLock { s -> [Task<Void, Never>] in
            s.closed = true
            defer { s.listeners = [:] }
            return Array(s.listeners.values)
        }
        for task in listeners { task.cancel() }
        for task in listeners { await task.value }
        runTask.cancel()
        await runTask.value
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    deinit {
        runTask.cancel()
    }

    // MARK: - Connections and errors

    /// One direct connection (not the pool), for opening and migrating: fails fast with the
    /// server's reason instead of the pool's retries.
    static func withProbeConnection<T: Sendable>(
        _ settings: PostgresURL, logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await deadline(settings.connectTimeout + .seconds(1),
                                            timeout: StoreError.cannotOpen("\(settings.redacted): no answer within \(settings.connectTimeout)")) {
                try await PostgresConnection.connect(configuration: settings.connectionConfiguration(), id: 0,
                                                     logger: quietLogger(logger))
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.cannotOpen("\(settings.redacted): \(describe(error, settings: settings))")
        }
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch let error as StoreError {
            try? await connection.close()
            throw error
        } catch {
            try? await connection.close()
            throw StoreError.cannotOpen("\(settings.redacted): \(describe(error, settings: settings))")
        }
    }

    /// Runs `body` on a pooled connection. Fails with `StoreError.underlying` when no connection
    /// can be had within `leaseTimeout` (the database is down or restarting) instead of waiting for
    /// the pool's own retries; the pool reconnects by itself once the server is back.
    func withConnection<T: Sendable>(timeout operationTimeout: Duration = PostgresStore.adminTimeout,
                                     _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        if isClosed { throw StoreError.underlying("the store is closed") }
        let leased = Mutex<PostgresConnection?>(nil)
        let client = self.client
        let settings = self.settings
        let leaseTimeout = self.leaseTimeout
        let logger = self.logger
        let watch = self.watch
        let tripwire = Tripwire()
        do {
            // Two clocks: no connection within `leaseTimeout` means the database is unavailable;
            // and a leased connection whose answer never comes (the server hung, or the network
            // between dropped without a word) is closed after `operationTimeout`, which fails the
            // query and returns the slot to the pool, so a stuck statement cannot hold ingest
            // behind it for good. A connection that closes under its query fails it at once.
            return try await Self.deadline(operationTimeout, timeout: StoreError.underlying(
                "database did not answer within \(operationTimeout) (\(settings.redacted))"),
                onTimeout: {
                    guard let connection = leased.withLock({ $0 }) else { return }
                    logger.warning("closing a database connection that stopped answering")
                    Task { try? await connection.close() }
                },
                tripwire: (tripwire, StoreError.underlying("database connection lost (closed under a running query)"))) {
                try await Self.deadline(leaseTimeout, timeout: StoreError.underlying(
                    "database unavailable: no connection to \(settings.redacted) within \(leaseTimeout)"),
                    cancelIf: { leased.withLock { $0 } == nil }) {
                    try await client.withConnection { connection in
                        leased.withLock { $0 = connection }
                        watch.watch(connection, tripwire)
                        defer { watch.finished(connection) }
                        return try await body(connection)
                    }
                }
            }
        } catch {
            throw storeError(error)
        }
    }

    /// The longest the hot path (enqueue, claim, record, leases, rate tokens) may take once it has a
    /// connection before the connection is taken for dead and closed, so that a node whose query
    /// hung across a database restart (the connection died without failing it) is back within
    /// this. It must outlast any answer a healthy server may take: the statements are indexed and
    /// take milliseconds, but a statement may wait for a row lock up to the server's lock_timeout
    /// (10 s, set per connection in PostgresURL) — two nodes enqueueing the same incidents queue on
    /// their rows — and a CPU-starved host adds seconds. At 4 s this clock fired on a healthy
    /// database (16 overlapping enqueue batches on a loaded 2-core machine), closing connections
    /// and failing ingest exactly when the node was busiest. So: lock_timeout plus 5 s.
    static let hotPathTimeout: Duration = .seconds(15)
    /// The same for admin queries (lists, replay over many rows, counts), which may legitimately take
    /// longer; statements are limited to 30 s by the server's statement_timeout.
    static let adminTimeout: Duration = .seconds(30)

    /// A transaction on a pooled connection: committed when `body` returns, rolled back when it
    /// throws. Retried (a few times) when the server aborted it for a deadlock or a serialization
    /// failure: nothing was committed, so running it again is safe.
    func transaction<T: Sendable>(timeout: Duration = PostgresStore.adminTimeout,
                                  _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await retryingConflicts {
            try await self.withConnection(timeout: timeout) { [logger] connection in
                try await Self.inTransaction(connection, begin: "BEGIN", logger: logger, body)
            }
        }
    }

    /// `begin`, then `body`, then COMMIT; ROLLBACK and rethrow when `body` throws.
    static func inTransaction<T: Sendable>(_ connection: PostgresConnection, begin: PostgresQuery, logger: Logger,
                                           _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.query(begin, logger: logger)
        do {
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// Runs one statement (autocommit) on a pooled connection, retried on deadlock.
    func run<T: Sendable>(timeout: Duration = PostgresStore.adminTimeout,
                          _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await retryingConflicts { try await self.withConnection(timeout: timeout, body) }
    }

    private func retryingConflicts<T: Sendable>(_ operation: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch let error as RetryableConflict where attempt < 4 {
                attempt += 1
                logger.debug("retrying after a conflict", metadata: ["sqlstate": "\(error.sqlState)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...30) * attempt))
            } catch let error as RetryableConflict {
                throw StoreError.underlying(error.message)
            }
        }
    }

    /// A deadlock or serialization failure, which a retry of the whole transaction resolves.
    struct RetryableConflict: Error {
        var sqlState: String
        var message: String
    }

    /// Races `body` against a timer. `cancelIf` decides, when the timer fires, whether to give up
    /// (a query already running is not abandoned: the server answers or the connection dies).
    /// A tripped `tripwire` fails it at once with its error.
    static func deadline<T: Sendable>(
        _ timeout: Duration, timeout error: @autoclosure () -> StoreError,
        cancelIf: @escaping @Sendable () -> Bool = { true },
        onTimeout: @escaping @Sendable () -> Void = {},
        tripwire: (Tripwire, StoreError)? = nil,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let timeoutError = error()
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let work = Task {
                    do {
                        race.finish(.success(try await body()))
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    if Task.isCancelled { return }
                    if cancelIf(), race.finish(.failure(timeoutError)) {
                        work.cancel()
                        onTimeout()
                    }
                }
                race.start(continuation, work: work, timer: timer)
                if let (tripwire, lost) = tripwire {
                    tripwire.arm {
                        if race.finish(.failure(lost)) { work.cancel() }
                    }
                }
            }
        } onCancel: {
            race.cancel()
        }
    }

    /// Human text for a PostgresNIO error, never with the password.
    static func describe(_ error: any Error, settings: PostgresURL) -> String {
        let text: String
        switch error {
        case let error as StoreError:
            text = error.description
        case let error as PSQLError:
            if let info = error.serverInfo, let message = info[.message] {
                let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                let detail = info[.detail].map { ": \($0)" } ?? ""
                text = message + detail + state
            } else if let underlying = error.underlying {
                text = "\(error.code): \(describe(underlying, settings: settings))"
            } else {
                switch error.code {
                case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
                    text = "database connection lost (\(error.code))"
                default:
                    text = "\(error.code)"
                }
            }
        case let error as PostgresTransactionError:
            if let inner = error.closureError ?? error.commitError ?? error.beginError {
                text = describe(inner, settings: settings)
            } else {
                text = "transaction failed"
            }
        case let error where String(describing: type(of: error)).contains("ConnectionPoolError"):
            text = "database unavailable (connection pool: \(error))"
        case let error as DecodingError:
            text = "unreadable row: \(error)"
        case let error as PostgresDecodingError:
            text = "unreadable column \(error.columnName): \(error.code)"
        default:
            text = String(describing: error)
        }
        return settings.redact(text)
    }

    /// Maps an error from a query to what the `Store` API throws.
    func storeError(_ error: any Error) -> any Error {
        if let error = error as? StoreError { return error }
        if let error = error as? RetryableConflict { return error }
        if let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState], state == "40P01" || state == "40001" {
            return RetryableConflict(sqlState: state, message: Self.describe(psql, settings: settings))
        }
        // Class 22 (data exception: a character the encoding cannot hold, a value out of range) and
        // 23 (integrity constraint): the data's fault.
        if let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState], state.hasPrefix("22") || state.hasPrefix("23") {
            return StoreError.rejected(Self.describe(psql, settings: settings))
        }
        return StoreError.underlying(Self.describe(error, settings: settings))
    }

    /// Background logs of the pool at warning and above only: it logs every failed reconnect.
    static func quietLogger(_ logger: Logger) -> Logger {
        var quiet = logger
        if quiet.logLevel < .warning { quiet.logLevel = .warning }
        return quiet
    }

    // MARK: - Work signals

    /// Channels with new due work, from any node: `LISTEN herald_work` on a dedicated pooled
    /// connection. After the connection is lost (database restart) it listens again, and then
    /// yields every channel that has waiting work, since notifications sent meanwhile are lost.
    public func workSignals() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
        let id: Int? = state.withLock { s in
            if s.closed { return nil }
            s.nextListener += 1
            return s.nextListener
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        let task = Task { [weak self] in
            var reconnect = false
            var failures = 0
            while !Task.isCancelled {
                guard let self, !self.isClosed else { break }
                let listening = Mutex(false)
                do {
                    try await self.listen(continuation, announceBacklog: reconnect) {
                        listening.withLock { $0 = true }
                    }
                } catch {
                    if Task.isCancelled || self.isClosed { break }
                    if listening.withLock({ $0 }) { failures = 0 }
                    failures += 1
                    if failures == 1 || failures % 30 == 0 {
                        self.logger.warning("lost the work-signal listener; reconnecting",
                                            metadata: ["error": "\(Self.describe(error, settings: self.settings))",
                                                       "attempts": "\(failures)"])
                    }
                }
                reconnect = true
                try? await Task.sleep(for: .milliseconds(min(2000, 200 * max(1, failures))))
            }
            continuation.finish()
        }
        state.withLock { s in
            if s.closed { task.cancel() } else { s.listeners[id] = task }
        }
        continuation.onTermination = { [weak self] _ in
            task.cancel()
            _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    private func listen(_ continuation: AsyncStream<String>.Continuation, announceBacklog: Bool,
                        listening: @escaping @Sendable () -> Void) async throws {
        let channel = Self.workChannel
        try await client.withConnection { [logger] connection in
            try await connection.listen(on: channel) { notifications in
                listening()
                if announceBacklog {
                    let rows = try await connection.query(
                        "SELECT DISTINCT channel FROM deliveries WHERE state IN ('queued', 'retrying')", logger: logger)
                    for try await (name) in rows.decode(String.self) { continuation.yield(name) }
                }
                for try await notification in notifications {
                    continuation.yield(notification.payload)
                }
            }
        }
        // The sequence ended without an error: the listener was cancelled.
        if !Task.isCancelled { throw StoreError.underlying("listener ended") }
    }
}

/// The first of a body and a timer to finish resumes the continuation; the other is cancelled.
final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var done = false
        var cancelled = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        let early = state.withLock { s -> Result<T, any Error>? in
            s.work = work
            s.timer = timer
            if s.cancelled { work.cancel() }
            if let result = s.result {
                s.result = nil
                return result
            }
            s.continuation = continuation
            return nil
        }
        if let early {
            timer.cancel()
            continuation.resume(with: early)
        }
    }

    /// Answers whether this call won.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (won, continuation, timer) = state.withLock { s -> (Bool, CheckedContinuation<T, any Error>?, Task<Void, Never>?) in
            guard !s.done else { return (false, nil, nil) }
            s.done = true
            if let c = s.continuation {
                s.continuation = nil
                return (true, c, s.timer)
            }
            s.result = result
            return (true, nil, s.timer)
        }
        timer?.cancel()
        continuation?.resume(with: result)
        return won
    }

    func cancel() {
        let work = state.withLock { s -> Task<Void, Never>? in
            s.cancelled = true
            return s.work
        }
        work?.cancel()
    }
}
