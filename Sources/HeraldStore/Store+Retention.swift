import Foundation
import HeraldCore

/// What retention removes, in the order a pass visits it. Each stage walks its table in the order
/// of one indexed time column (and the key, for ties) from a cursor, so a pass examines each old
/// row once however many of them must stay, and every transaction is small.
///
/// - `deliveries`: delivered, failed and superseded deliveries (with their attempts) that finished
///   before the cutoff, of an incident cycle that is over (not the open cycle of its incident) and
///   quiet (nothing in it waiting, in flight, or changed since the cutoff) — so no all-clear, no
///   replay and no thread ever misses the notice it refers to.
/// - `events`: events received before the deliveries' cutoff that no delivery refers to, unless
///   they are the history of their incident's current cycle and that incident is open or was
///   resolved after the incidents' cutoff.
/// - `incidents`: incidents resolved before their cutoff with no event and no delivery left.
/// - `idempotency`: `Idempotency-Key` answers stored before their cutoff.
/// - `statusPosts`: public posts older than their cutoff, unless their incident is open or was
///   resolved after that cutoff (the status page still shows it).
/// - `silences`: silences and maintenance windows (quiet hours store one a day) that ended before
///   the deliveries' cutoff, unless a notice still waits `silenced` on one (its release reads it).
public enum PruneStage: Int, Sendable, CaseIterable, Comparable {
    case deliveries, events, incidents, idempotency, statusPosts, silences

    public static func < (a: PruneStage, b: PruneStage) -> Bool { a.rawValue < b.rawValue }
}

/// Where a pruning pass is: the stage, and the last row it examined there (its time column, as
/// epoch seconds, and its key). Opaque to callers: pass back what `prune` answered.
public struct PruneCursor: Sendable, Equatable {
    public var stage: PruneStage
    public var time: Double
    public var key: String

    /// The start of a pass.
    public static let start = PruneCursor(stage: .deliveries, time: -Double.greatestFiniteMagnitude, key: "")

    public init(stage: PruneStage, time: Double, key: String) {
        self.stage = stage
        self.time = time
        self.key = key
    }

    /// The beginning of the stage after this one; nil after the last.
    public var nextStage: PruneCursor? {
        PruneStage(rawValue: stage.rawValue + 1).map { PruneCursor(stage: $0, time: -Double.greatestFiniteMagnitude, key: "") }
    }
}

/// What one `prune` call removed and where the pass goes on (nil: the pass is over).
public struct PruneStep: Sendable, Equatable {
    /// Rows removed, by table: `deliveries`, `attempts`, `events`, `incidents`, `idempotency`,
    /// `status_posts`, `silences`.
    public var removed: [String: Int]
    public var next: PruneCursor?

    public init(removed: [String: Int] = [:], next: PruneCursor?) {
        self.removed = removed
        self.next = next
    }

    public var total: Int { removed.values.reduce(0, +) }
}

extension PruneCursor {
    /// The step after examining `examined` rows of this stage, the last of which was at
    /// (`time`, `key`): the same stage further on while a whole batch was examined, else the next
    /// stage.
    public func advanced(examined: Int, limit: Int, last: (time: Double, key: String)?, removed: [String: Int]) -> PruneStep {
        if examined >= limit, let last {
            return PruneStep(removed: removed, next: PruneCursor(stage: stage, time: last.time, key: last.key))
        }
        return PruneStep(removed: removed, next: nextStage)
    }
}

extension Store {
    public func waitingCounts() async throws -> [DeliveryState: Int] {
        let all = try await countsByState()
        return [.queued: all[.queued] ?? 0, .retrying: all[.retrying] ?? 0, .inFlight: all[.inFlight] ?? 0, .silenced: all[.silenced] ?? 0]
    }

    public func prune(_ cutoffs: RetentionConfig.Cutoffs, from cursor: PruneCursor, limit: Int) async throws -> PruneStep {
        PruneStep(next: nil)
    }

    public func reclaimSpace(pages: Int) async throws -> Int { 0 }

    /// A whole pass at once, without pauses (for tests and tools; the server paces its passes).
    public func pruneAll(_ cutoffs: RetentionConfig.Cutoffs, limit: Int = 500) async throws -> [String: Int] {
        var cursor: PruneCursor? = .start
        var removed: [String: Int] = [:]
        while let at = cursor {
            let step = try await prune(cutoffs, from: at, limit: limit)
            removed.merge(step.removed, uniquingKeysWith: +)
            cursor = step.next
        }
        return removed
    }
}
