import Synchronization

/// SQLite has one writer, and GRDB serves writes first come, first served: an ingest commit (a
/// resolve among them) could wait behind every claim and outcome batch queued before it. The gate
/// lets one write at a time through to GRDB and picks the next by priority, so urgent work waits
/// for at most the transaction in progress. A lower priority passed over `maxPasses` times goes
/// next, so outcomes are never starved by a storm of ingest.
final class WriteGate: Sendable {
    enum Priority: Int, CaseIterable {
        /// Ingest (events, resolves among them, answered once committed) and idle lanes' claims
        /// (what an all-clear waits on).
        case urgent
        /// Busy lanes' claims and outcomes, first come, first served, as before the gate.
        case normal
        /// Retention, fan-out pages, lease sweeps: work nobody is waiting on.
        case bulk
    }

    static let maxPasses = 3

    private struct State {
        var busy = false
        var waiting: [[CheckedContinuation<Void, Never>]] = Array(repeating: [], count: Priority.allCases.count)
        var passes = [Int](repeating: 0, count: Priority.allCases.count)
    }
    private let state = Mutex(State())

    func run<T>(_ priority: Priority, _ body: () async throws -> T) async throws -> T {
        await acquire(priority)
        defer { release() }
        return try await body()
    }

    private func acquire(_ priority: Priority) async {
        let free = state.withLock { s -> Bool in
            guard s.busy else {
                s.busy = true
                return true
            }
            return false
        }
        if free { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                // Released between the check and here: take it.
                guard s.busy else {
                    s.busy = true
                    return true
                }
                s.waiting[priority.rawValue].append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            let levels = s.waiting.indices.filter { !s.waiting[$0].isEmpty }
            guard let first = levels.first else {
                s.busy = false
                return nil
            }
            // The most urgent, unless a lower level has waited through enough turns.
            let chosen = levels.first { s.passes[$0] >= Self.maxPasses } ?? first
            for level in levels where level != chosen { s.passes[level] += 1 }
            s.passes[chosen] = 0
            return s.waiting[chosen].removeFirst()
        }
        next?.resume()
    }
}
