import Foundation
import Synchronization

/// Gathers concurrent submissions and commits them together: whatever arrived while the previous
/// commit was running goes into the next one. Idle, a submission commits alone at once; under load,
/// hundreds share one transaction (and one fsync). Each caller resumes only after its batch committed.
public final class GroupCommitter<Item: Sendable, Output: Sendable>: Sendable {
    public typealias Commit = @Sendable ([Item]) async throws -> [Output]

    private struct Pending {
        var item: Item
        var continuation: CheckedContinuation<Output, any Error>
    }

    private struct State {
        var pending: [Pending] = []
        var draining = false
    }

    private let state = Mutex(State())
    private let maxBatch: Int
    private let commit: Commit

    public init(maxBatch: Int = 1000, commit: @escaping Commit) {
        self.maxBatch = maxBatch
        self.commit = commit
    }

    public func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let startDrain = state.withLock { s -> Bool in
                s.pending.append(Pending(item: item, continuation: continuation))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if startDrain {
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Pending] in
                guard !s.pending.isEmpty else {
                    s.draining = false
                    return []
                }
                let n = min(maxBatch, s.pending.count)
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return batch
            }
            if batch.isEmpty { return }
            do {
                let outputs = try await commit(batch.map(\.item))
                precondition(outputs.count == batch.count, "commit must answer once per item")
                for (p, output) in zip(batch, outputs) { p.continuation.resume(returning: output) }
            } catch {
                for p in batch { p.continuation.resume(throwing: error) }
            }
        }
    }
}
