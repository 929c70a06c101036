import Foundation
import HeraldCore
import HeraldSQLite
import HeraldStore
import Logging
import Metrics
import ServiceLifecycle

/// Prunes history past its retention in the background (`retention:`): a pass shortly after start
/// and then every `retention.interval`, in batches of `retention.batch` rows with
/// `retention.pause` between them so ingest and the dispatcher keep the store; after a pass that
/// removed something, a SQLite store hands the freed pages back a few at a time. The rules of what
/// may go are the store's (`Store+Retention.swift`); several nodes on one PostgreSQL database may
/// all run this at once.
final class RetentionService: Service, Sendable {
    let store: any Store
    /// The periods in force: read at each pass, so a reload changes the next one.
    let currentRetention: @Sendable () -> RetentionConfig
    let logger: Logger
    /// The first pass waits this long after start, so a restart does not compete with the
    /// recovery of work left in flight.
    let firstPassDelay: Duration

    /// Pages given back per step: 1 MiB of 4 KiB pages, a few milliseconds of the writer.
    static let reclaimPages = 256

    init(store: any Store, retention: @escaping @Sendable () -> RetentionConfig, logger: Logger,
         firstPassDelay: Duration = .seconds(30)) {
        self.store = store
        self.currentRetention = retention
        var logger = logger
        logger[metadataKey: "service"] = "retention"
        self.logger = logger
        self.firstPassDelay = firstPassDelay
    }

    func run() async throws {
        if let sqlite = store as? SQLiteStore, (try? sqlite.reclaimsSpace) == false {
            logger.warning("""
                this SQLite file was made before retention: pruned rows are reused but the file does not shrink; \
                stop herald and run `herald migrate --store \(sqlite.path)` once to let it give space back
                """)
        }
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: self.firstPassDelay)
            while !Task.isCancelled {
                let retention = self.currentRetention()
                await self.pass(now: Date(), retention: retention)
                try await Task.sleep(for: retention.interval)
            }
        }
    }

    /// One pass over every stage; errors are logged and the pass ends (the next one retries).
    func pass(now: Date, retention: RetentionConfig) async {
        let cutoffs = retention.cutoffs(now: now)
        let clock = ContinuousClock()
        let started = clock.now
        var cursor: PruneCursor? = .start
        var removed: [String: Int] = [:]
        do {
            // Sign-ups never confirmed go once their link expires, whatever the retention periods.
            removed["subscribers"] = try await store.deleteExpiredSignUps(now: now)
            // So do console sessions past their lifetime (a signed-out one is gone already).
            removed["console_sessions"] = try await store.deleteExpiredConsoleSessions(now: now)
            while let at = cursor, !Task.isCancelled {
                let step = try await store.prune(cutoffs, from: at, limit: retention.batch)
                for (table, n) in step.removed where n > 0 {
                    removed[table, default: 0] += n
                    Counter(label: "herald_pruned_rows_total", dimensions: [("table", table)]).increment(by: n)
                }
                cursor = step.next
                if cursor != nil, retention.pause > .zero { try await Task.sleep(for: retention.pause) }
            }
            var freePages = 0
            if removed.values.contains(where: { $0 > 0 }) {
                var steps = 0
                repeat {
                    freePages = try await store.reclaimSpace(pages: Self.reclaimPages)
                    steps += 1
                    if freePages > 0, retention.pause > .zero { try await Task.sleep(for: retention.pause) }
                } while freePages > 0 && steps < 10_000 && !Task.isCancelled
            }
            let total = removed.values.reduce(0, +)
            if total > 0 {
                var metadata: Logger.Metadata = ["seconds": "\(String(format: "%.1f", (clock.now - started).seconds))"]
                for (table, n) in removed.sorted(by: { $0.key < $1.key }) { metadata[table] = "\(n)" }
                logger.info("pruned history past its retention", metadata: metadata)
            }
        } catch {
            if Task.isCancelled { return }
            logger.warning("retention pass failed; retrying at the next one", metadata: ["error": "\(error)"])
        }
    }
}
