import GRDB
import Synchronization

/// SQLite has one writer, and GRDB serves writes first come, first served: a resolve's commit, or
/// the outcome of a notice an all-clear must thread onto, could wait behind every claim queued
/// before it. The scheduler keeps its own queues by priority and feeds them one at a time to
/// GRDB's writer queue, always one block ahead (no task hop, so no gap, between two
/// transactions); each write waits for at most the transaction in progress, the more urgent ones
/// and any write made outside the scheduler. A lower priority passed over
/// `maxPasses` times goes next, so no kind of work is starved by a storm of another.
final class WriteScheduler: Sendable {
    enum Priority: Int, CaseIterable {
        /// Ingest (resolves among it, answered once committed), outcomes (a follow-up waits for
        /// its notice's), and claims that will take an all-clear or start an idle lane.
        case urgent
        /// Busy lanes' claims: every other turn while urgent work waits (`maxPasses` is 1), so a
        /// storm of events slows the backlog down without stopping it.
        case normal
        /// Retention, fan-out pages, lease sweeps: work nobody is waiting on.
        case bulk
    }

    static let maxPasses = 1

    private struct Job: @unchecked Sendable {
        let run: (Database) -> Void
    }
    private struct State {
        var draining = false
        var queues: [[Job]] = Array(repeating: [], count: Priority.allCases.count)
        var passes = [Int](repeating: 0, count: Priority.allCases.count)
    }
    private let pool: DatabasePool
    private let state = Mutex(State())

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Jobs waiting for the writer, the running one not counted (tests queue jobs in a known order).
    var waiting: Int { state.withLock { $0.queues.reduce(0) { $0 + $1.count } } }

    /// Runs `body` on the writer in an immediate transaction. Unless `synced`, its commit does not
    /// wait for the disk (`PRAGMA synchronous = NORMAL` for it alone: in WAL mode the commit is not
    /// synced, checkpoints still are, so a power cut can lose it but never corrupts the file); the
    /// next synced commit makes it durable. For work that is redone after a restart.
    func write<T: Sendable>(_ priority: Priority, synced: Bool = true,
                            _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let job = Job { db in
                do {
                    if !synced { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                    defer { if !synced { try? db.execute(sql: "PRAGMA synchronous = FULL") } }
                    var value: T?
                    try db.inTransaction(.immediate) {
                        value = try body(db)
                        return .commit
                    }
                    c.resume(returning: value!)
                } catch {
                    c.resume(throwing: error)
                }
            }
            let start = state.withLock { s -> Bool in
                s.queues[priority.rawValue].append(job)
                if s.draining { return false }
                s.draining = true
                return true
            }
            if start { pool.asyncWriteWithoutTransaction { [self] db in drain(db) } }
        }
    }

    /// Runs the next job, and queues itself again on GRDB's writer while jobs remain: the next
    /// block is already queued when this one ends (no gap), and a write that does not go through
    /// the scheduler (a silence, a console session) gets its turn between two jobs instead of
    /// waiting for a quiet moment that may never come.
    private func drain(_ db: Database) {
        guard let job = next() else { return }
        job.run(db)
        let more = state.withLock { s -> Bool in
            if s.queues.allSatisfy(\.isEmpty) {
                s.draining = false
                return false
            }
            return true
        }
        if more { pool.asyncWriteWithoutTransaction { [self] db in drain(db) } }
    }

    private func next() -> Job? {
        state.withLock { s -> Job? in
            let levels = s.queues.indices.filter { !s.queues[$0].isEmpty }
            guard let first = levels.first else {
                s.draining = false
                return nil
            }
            // The most urgent, unless a lower level has waited through enough turns.
            let chosen = levels.first { s.passes[$0] >= Self.maxPasses } ?? first
            for level in levels where level != chosen { s.passes[level] += 1 }
            s.passes[chosen] = 0
            return s.queues[chosen].removeFirst()
        }
    }
}
