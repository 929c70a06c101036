import Foundation

/// `retention:` — how long finished history is kept before `herald serve` prunes it in the
/// background. A period of `forever` keeps that kind of row for good. Nothing waiting or in flight,
/// and nothing of an open incident, is ever pruned, whatever the periods say.
public struct RetentionConfig: Sendable, Equatable {
    /// `retention.deliveries`, default 90d: delivered, failed and superseded deliveries with their
    /// attempts, once their incident cycle is over and nothing in it changed for this long; also
    /// the events no delivery and no kept incident history needs any more.
    public var deliveries: Duration? = .seconds(90 * 86_400)
    /// `retention.idempotency`, default 48h: `Idempotency-Key` answers (one per `herald send`).
    /// A key repeated after this is a new event.
    public var idempotency: Duration? = .seconds(48 * 3_600)
    /// `retention.status_posts`, default 365d: public status posts, except those of an incident
    /// that is open or was resolved within this period.
    public var statusPosts: Duration? = .seconds(365 * 86_400)
    /// `retention.incidents`, default 365d: a resolved incident, with the events of its last cycle
    /// (its history), once it has been resolved this long and its deliveries are gone.
    public var incidents: Duration? = .seconds(365 * 86_400)
    /// `retention.interval`, default 10m: how often a pruning pass starts.
    public var interval: Duration = .seconds(600)
    /// `retention.batch`, default 500: rows examined per transaction, so ingest never waits long
    /// behind the pruner for the store's write lock.
    public var batch: Int = 500
    /// `retention.pause`, default 20ms: the pause between two batches of a pass.
    public var pause: Duration = .milliseconds(20)

    public init() {}

    /// Nothing is ever pruned.
    public static var forever: RetentionConfig {
        var r = RetentionConfig()
        r.deliveries = nil
        r.idempotency = nil
        r.statusPosts = nil
        r.incidents = nil
        return r
    }

    /// The instants before which each kind of row is old enough to go (nil: kept forever).
    public func cutoffs(now: Date) -> Cutoffs {
        func before(_ period: Duration?) -> Date? { period.map { now.addingTimeInterval(-$0.seconds) } }
        return Cutoffs(deliveries: before(deliveries), idempotency: before(idempotency),
                       statusPosts: before(statusPosts), incidents: before(incidents))
    }

    public struct Cutoffs: Sendable, Equatable {
        public var deliveries: Date?
        public var idempotency: Date?
        public var statusPosts: Date?
        public var incidents: Date?
    }
}
