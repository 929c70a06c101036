import Foundation
import Synchronization

/// Gathers concurrent submissions and commits them together: whatever arrived while the previous
/// commit was running goes into the next one. Idle, a submission commits alone at once; under load,
/// hundreds share one transaction (and one fsync). Each caller resumes only after its batch committed.
/// When a shared commit fails with an error `isolating` blames on the data (the store refused a
/// value), each submission is committed again on its own, so the one that cannot be stored fails
/// alone, never the others that happened to share its batch. Other errors (the store is down) fail
/// the batch at once.
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
    private let isolating: @Sendable (any Error) -> Bool

    public init(maxBatch: Int = 1000, isolating: @escaping @Sendable (any Error) -> Bool = { _ in false },
                commit: @escaping Commit) {
        self.maxBatch = maxBatch
        self.commit = commit
        self.isolating = isolating
    }

    /// Submissions waiting for the next commit (not the one running).
    public var waiting: Int { state.withLock { $0.pending.count } }

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
            } catch where batch.count > 1 && isolating(error) {
                for p in batch {
                    do {
                        let output = try await commit([p.item])
                        precondition(output.count == 1, "commit must answer once per item")
                        p.continuation.resume(returning: output[0])
                    } catch {
                        p.continuation.resume(throwing: error)
                    }
                }
            } catch {
                for p in batch { p.continuation.resume(throwing: error) }
            }
        }
    }
}
