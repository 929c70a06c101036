import Foundation
import HeraldCore

/// One validated event and the routing in force, ready to be committed. The store routes the
/// event inside its transaction, through `LifecyclePlanner`, once it is merged into the incident.
public struct EnqueueRequest: Sendable {
    public var event: Event
    public var routing: Routing
    /// `Idempotency-Key`, scoped to the sender (token name); nil when the sender gave none.
    public var idempotency: Idempotency?

    public struct Idempotency: Sendable {
        public var scope: String
        public var key: String
        /// A digest of the request body: the same key with another body is a conflict.
        public var bodyHash: String
        public init(scope: String, key: String, bodyHash: String) {
            self.scope = scope
            self.key = key
            self.bodyHash = bodyHash
        }
    }

    public init(event: Event, routing: Routing, idempotency: Idempotency? = nil) {
        self.event = event
        self.routing = routing
        self.idempotency = idempotency
    }

    /// Every event of this request goes to exactly these channels (one delivery per recipient for
    /// the channels in `recipients`).
    public init(event: Event, channels: [String], recipients: [String: [String]] = [:], idempotency: Idempotency? = nil) {
        self.init(event: event, routing: Routing(channels: channels, recipients: recipients), idempotency: idempotency)
    }
}

/// What committing an `EnqueueRequest` did.
public enum EnqueueResult: Sendable, Equatable {
    /// Committed: the event and one delivery per channel.
    case accepted(Accepted)
    /// The idempotency key was seen before with the same body: the first answer, nothing new.
    case repeated(Accepted)
    /// The idempotency key was seen before with a different body.
    case conflict

    public struct Accepted: Sendable, Equatable, Codable {
        public var eventId: String
        public var incident: String
        public var deliveries: Int
        /// Channels that got new work (for waking the dispatcher). Empty for a repeat.
        public var channels: [String]
        /// What the event did to its incident (`opened`, `repeated`, `resolved`, …); nil in answers
        /// stored before it was recorded.
        public var transition: String?
        /// The event is public and waits to fan out to the subscribers (`Store.fanOut`); nil
        /// (false) in answers stored before subscribers existed.
        public var fansOut: Bool?
        public init(eventId: String, incident: String, deliveries: Int, channels: [String], transition: String? = nil,
                    fansOut: Bool? = nil) {
            self.eventId = eventId
            self.incident = incident
            self.deliveries = deliveries
            self.channels = channels
            self.transition = transition
            self.fansOut = fansOut
        }
    }
}

/// A delivery taken by a dispatcher, with everything needed to send it.
public struct ClaimedDelivery: Sendable {
    public var delivery: Delivery
    public var event: Event
    public var incident: Incident
    /// The claim holding it: only an outcome recorded under this lease changes the delivery.
    public var lease: String
    /// Attempts in the current replay generation, and when that generation began.
    public var budgetAttempts: Int
    public var budgetSince: Date
    /// The provider reference of the delivered notice of the same incident cycle to the same
    /// target, if any: follow-ups thread onto it.
    public var thread: String?
    /// The id of that delivered notice.
    public var threadDeliveryId: String?
    /// For a follow-up: its target's notice in this cycle (delivered or not) and that notice's
    /// event, so the follow-up can carry the notice's subject.
    public var notice: NoticeRef?
    /// For a follow-up: the provider references of the notice and the follow-ups delivered to this
    /// target before it, oldest first (an email's `References`).
    public var references: [String]

    public struct NoticeRef: Sendable {
        public var deliveryId: String
        public var event: Event
        public init(deliveryId: String, event: Event) {
            self.deliveryId = deliveryId
            self.event = event
        }
    }

    public init(delivery: Delivery, event: Event, incident: Incident, lease: String, budgetAttempts: Int, budgetSince: Date,
                thread: String?, threadDeliveryId: String? = nil, notice: NoticeRef? = nil, references: [String] = []) {
        self.delivery = delivery
        self.event = event
        self.incident = incident
        self.lease = lease
        self.budgetAttempts = budgetAttempts
        self.budgetSince = budgetSince
        self.thread = thread
        self.threadDeliveryId = threadDeliveryId
        self.notice = notice
        self.references = references
    }
}

/// One channel's share of a claim for several channels (`Store.claim(_:now:owner:)`).
public struct ClaimRequest: Sendable, Equatable {
    public var channel: String
    public var limit: Int
    public var leaseUntil: Date
    /// The lane had nothing in flight (see `Store.claim(_:now:owner:)`).
    public var idle: Bool
    /// The lane was woken because work for it was just committed: a store that looks before it
    /// claims (so that nothing due takes no write) may skip the look.
    public var expected: Bool
    public init(channel: String, limit: Int, leaseUntil: Date, idle: Bool = false, expected: Bool = false) {
        self.channel = channel
        self.limit = limit
        self.leaseUntil = leaseUntil
        self.idle = idle
        self.expected = expected
    }
}

/// What one channel got from a claim: its deliveries and, when it got fewer than it asked for,
/// when the next delivery still waiting for it is due (nil: none waits), so its lane knows how
/// long to sleep without asking again.
public struct ClaimAnswer: Sendable {
    public var claimed: [ClaimedDelivery]
    public var nextDue: Date?
    public init(claimed: [ClaimedDelivery], nextDue: Date?) {
        self.claimed = claimed
        self.nextDue = nextDue
    }
}

/// The result of one attempt, to be recorded with the delivery's new state.
public struct AttemptRecord: Sendable {
    public typealias Outcome = DeliveryOutcome

    public var deliveryId: String
    /// The claim the attempt ran under (`ClaimedDelivery.lease`).
    public var lease: String
    public var startedAt: Date
    public var duration: Duration
    public var outcome: Outcome
    public var status: Int?
    public var reason: String?
    public var error: String?
    /// Where a notice that fails for good goes instead (its channel's `fallback`), committed in the
    /// same transaction as the failure.
    public var fallback: [Target]

    public init(deliveryId: String, lease: String, startedAt: Date, duration: Duration, outcome: Outcome,
                status: Int? = nil, reason: String? = nil, error: String? = nil, fallback: [Target] = []) {
        self.deliveryId = deliveryId
        self.lease = lease
        self.startedAt = startedAt
        self.duration = duration
        self.outcome = outcome
        self.status = status
        self.reason = reason
        self.error = error
        self.fallback = fallback
    }
}

public struct DeliveryFilter: Sendable, Equatable {
    public var state: DeliveryState?
    public var channel: String?
    public var incident: String?
    /// Only deliveries created at or after this time.
    public var since: Date?
    public var limit: Int

    public init(state: DeliveryState? = nil, channel: String? = nil, incident: String? = nil, since: Date? = nil, limit: Int = 100) {
        self.state = state
        self.channel = channel
        self.incident = incident
        self.since = since
        self.limit = limit
    }
}

public struct DeliveryDetail: Sendable {
    public var delivery: Delivery
    public var attempts: [Attempt]
    public init(delivery: Delivery, attempts: [Attempt]) {
        self.delivery = delivery
        self.attempts = attempts
    }
}

public struct IncidentDetail: Sendable {
    public var incident: Incident
    public var events: [Event]
    public var deliveries: [Delivery]
    public init(incident: Incident, events: [Event], deliveries: [Delivery]) {
        self.incident = incident
        self.events = events
        self.deliveries = deliveries
    }
}

public struct ReplayResult: Sendable, Equatable {
    /// Deliveries re-queued (or that would be, for a dry run).
    public var count: Int
    public var ids: [String]
    public var channels: [String]
    /// Failed notices and updates left alone because their incident cycle is over: their target
    /// got the summary instead.
    public var skipped: [String]
    public init(count: Int, ids: [String], channels: [String], skipped: [String] = []) {
        self.count = count
        self.ids = ids
        self.channels = channels
        self.skipped = skipped
    }
}

/// What `releaseSilences` did: channels with notices now due, and when to look again.
public struct SilenceRelease: Sendable, Equatable {
    public var channels: [String]
    /// When the next silence ends (nil: none is in force or pending).
    public var nextEnd: Date?
    /// This pass took a whole batch: call again at once for the rest.
    public var more: Bool
    public init(channels: [String], nextEnd: Date?, more: Bool = false) {
        self.channels = channels
        self.nextEnd = nextEnd
        self.more = more
    }

    /// Held notices looked at per pass (per transaction): a channel-wide silence through an alert
    /// storm may hold tens of thousands, and one transaction must not hold the writer (or a
    /// PostgreSQL transaction's time limit) for all of them.
    public static let batch = 1000
}

/// What one page of a subscriber fan-out did.
public struct FanOutStep: Sendable, Equatable {
    /// Deliveries created.
    public var created: Int
    /// Work is due on the subscribers channel (wake its lane).
    public var due: Bool
    /// More pages (of this event or a later one) are waiting.
    public var more: Bool
    public init(created: Int, due: Bool, more: Bool) {
        self.created = created
        self.due = due
        self.more = more
    }
    public static let idle = FanOutStep(created: 0, due: false, more: false)
}

/// Why a store operation failed. A struct around a private enum so cases can be added.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case cannotOpen(String)
        case locked(String)
        case notFound
        case notMigrated(String)
        case schemaTooNew(Int, Int)
        case rejected(String)
        case underlying(String)
    }
    private let code: Code

    public static func cannotOpen(_ why: String) -> StoreError { StoreError(code: .cannotOpen(why)) }
    public static func locked(_ why: String) -> StoreError { StoreError(code: .locked(why)) }
    public static let notFound = StoreError(code: .notFound)
    /// The database has no herald schema (or an older one) and the store was opened without migrating.
    public static func notMigrated(_ why: String = "") -> StoreError { StoreError(code: .notMigrated(why)) }
    public static func schemaTooNew(found: Int, supported: Int) -> StoreError { StoreError(code: .schemaTooNew(found, supported)) }
    public static func underlying(_ why: String) -> StoreError { StoreError(code: .underlying(why)) }
    /// The database refused a value (a constraint, a character it cannot store): the data's fault,
    /// not the store's; other work committed with it would succeed alone.
    public static func rejected(_ why: String) -> StoreError { StoreError(code: .rejected(why)) }

    public var isNotFound: Bool { if case .notFound = code { return true } else { return false } }
    public var isNotMigrated: Bool { if case .notMigrated = code { return true } else { return false } }
    public var isSchemaTooNew: Bool { if case .schemaTooNew = code { return true } else { return false } }
    public var isCannotOpen: Bool { if case .cannotOpen = code { return true } else { return false } }
    public var isLocked: Bool { if case .locked = code { return true } else { return false } }
    public var isRejected: Bool { if case .rejected = code { return true } else { return false } }

    public var description: String {
        switch code {
        case .cannotOpen(let why): return "cannot open store: \(why)"
        case .locked(let why): return "store is in use: \(why)"
        case .notFound: return "not found"
        case .notMigrated(let why):
            return "the database has no herald schema; run `herald migrate --store URL` or start with --migrate"
                + (why.isEmpty ? "" : " (\(why))")
        case .schemaTooNew(let found, let supported):
            return "store schema version \(found) is newer than this herald supports (\(supported)); upgrade herald"
        case .rejected(let why): return "store refused the data: \(why)"
        case .underlying(let why): return "store error: \(why)"
        }
    }
}

/// Durable state: events, incidents, deliveries, attempts, receipts. The SQLite store is the
/// embedded default; every implementation passes the same conformance suite.
public protocol Store: Sendable {
    /// Commits every request in one transaction: for each, in order, the event as the lifecycle
    /// planner stored it, the incident, the deliveries it planned, the idempotency record.
    /// Results are in request order.
    func enqueue(_ batch: [EnqueueRequest], now: Date) async throws -> [EnqueueResult]

    /// Takes up to `limit` due deliveries of one channel (all-clears first, then oldest due),
    /// marking them in flight under a fresh lease of `owner`'s that runs until `leaseUntil`. A
    /// follow-up is not claimed while anything earlier to its target is in flight.
    func claim(channel: String, limit: Int, now: Date, owner: String, leaseUntil: Date) async throws -> [ClaimedDelivery]

    /// One channel's `claim` as its lane asks for it, with the next due time when the answer is
    /// short. The request says whether the lane was idle (nothing in flight: an idle channel's
    /// claim is what an all-clear or a new incident's first notice waits on, so a store with one
    /// writer may put it ahead of busy lanes' claims and outcomes) and whether a commit for it just
    /// woke it. Default: `claim`, then `nextDue`; once deliveries are claimed they are answered, a
    /// failed `nextDue` as "look again in a second".
    func claim(_ request: ClaimRequest, now: Date, owner: String) async throws -> ClaimAnswer

    /// When the next waiting delivery of this channel is due (nil when none waits).
    func nextDue(channel: String) async throws -> Date?

    /// `claim` for several channels at once (each channel at most once), with each short answer's
    /// next due time: a store shared by nodes answers it in one statement, so a node whose lanes
    /// all wake at a commit makes one round trip and one transaction, not two per lane. Answers
    /// are in request order. Default: the one-request `claim`, per channel.
    func claim(_ requests: [ClaimRequest], now: Date, owner: String) async throws -> [ClaimAnswer]

    /// Records attempt outcomes and the new delivery states (as `DeliveryLifecycle` decides them,
    /// fenced by the lease), with their effects (a fallback notice, due updates, the summary that
    /// replaces an all-clear), in one transaction.
    func record(_ records: [AttemptRecord], now: Date) async throws

    /// Returns in-flight deliveries whose lease expired (or, with `owner`, all of that owner's)
    /// to waiting — or, for a notice or update whose cycle is over, supersedes it (its target gets
    /// the summary). Answers the channels that got work back.
    func releaseLeases(expiredBefore: Date?, owner: String?) async throws -> [String]

    func deliveries(_ filter: DeliveryFilter) async throws -> [Delivery]
    func delivery(id: String) async throws -> DeliveryDetail?

    /// Re-queues failed deliveries matching the filter (or the given ids), due now, with a fresh
    /// retry budget; old attempts are kept. A failed notice or update of a cycle that is over is
    /// skipped (its target got the summary). With `dryRun`, changes nothing and says what would be.
    func replay(ids: [String]?, filter: DeliveryFilter, dryRun: Bool, now: Date) async throws -> ReplayResult

    /// Sends `channel`'s waiting and failed notices of open incident cycles to `targets` instead
    /// (see `DeliveryLifecycle.redirect`): each fails here, and each target without a notice in
    /// that cycle gets one, queued now. `ids` are the notices moved, `channels` the targets that got
    /// work, `skipped` the channel's other waiting or failed deliveries, left as they are.
    func redirect(channel: String, to targets: [Target], dryRun: Bool, now: Date) async throws -> ReplayResult

    func incidents(limit: Int) async throws -> [Incident]
    /// The incident with its current cycle's events and (with `deliveries`) its deliveries, but
    /// for the `excluding` channel's (the subscribers', which `deliveryCounts` sums up instead).
    func incident(key: String, deliveries: Bool, excluding: String?) async throws -> IncidentDetail?

    /// How many deliveries of the cycle a channel has, by `kind:state` (`notice:delivered`, …).
    func deliveryCounts(incident: String, cycle: Int, channel: String) async throws -> [String: Int]

    /// Deliveries per state, for metrics and readiness.
    func countsByState() async throws -> [DeliveryState: Int]

    /// Deliveries waiting or in flight, per state (`queued`, `retrying`, `in_flight`), counted
    /// through indexes that hold only waiting work: the cost follows the backlog, not the history
    /// (for /metrics; default: from `countsByState`).
    func waitingCounts() async throws -> [DeliveryState: Int]

    /// Retention: removes one batch (at most `limit` rows examined) of what is older than
    /// `cutoffs` allow, starting at `cursor`; answers what went and where to go on (see
    /// `Store+Retention.swift`; default: nothing to prune).
    func prune(_ cutoffs: RetentionConfig.Cutoffs, from cursor: PruneCursor, limit: Int) async throws -> PruneStep

    /// Gives at most `pages` free pages back to the file system and answers how many are still
    /// free (SQLite's incremental vacuum; default: 0, the database manages its own space).
    func reclaimSpace(pages: Int) async throws -> Int

    /// Stores a public status post (idempotent by its id).
    func publishStatus(_ post: StatusPost) async throws

    /// The newest public status posts first.
    func statusPosts(limit: Int) async throws -> [StatusPost]

    /// Stores a new silence (see `Silence`).
    func addSilence(_ silence: Silence) async throws

    /// Silences, newest first: those not over at `now`, or with `includeExpired` every one.
    func silences(includeExpired: Bool, now: Date, limit: Int) async throws -> [Silence]

    func silence(id: String) async throws -> Silence?

    /// Ends a silence at `now` (one already over is left as it is). Answers it as it now stands;
    /// nil: no such silence. `releaseSilences` then lets go of what it held.
    func expireSilence(id: String, now: Date) async throws -> Silence?

    /// Lets go of the notices held by silences that have ended by `now`: each is due now (or, if
    /// another silence in force holds it, waits for that one; if its cycle is over, superseded —
    /// see `DeliveryLifecycle.unsilence`). Answers the channels that got work and when the next
    /// silence ends.
    func releaseSilences(now: Date) async throws -> SilenceRelease

    /// The scheduled maintenance windows (the silences `mnt_…` that carry a `Maintenance`) that end
    /// after `endingAfter`, earliest start first.
    func maintenanceWindows(endingAfter: Date, limit: Int) async throws -> [Silence]

    /// Records that `step` of the maintenance `id` was posted at `at`; a step already recorded
    /// keeps its first time. Changes nothing else of the window (an operator may be cancelling it
    /// at the same moment). Answers the window as stored, nil when there is none.
    func recordMaintenanceStep(id: String, step: Maintenance.Step, at: Date) async throws -> Silence?

    /// A sign-up from the status page: a new unconfirmed subscriber (an earlier unconfirmed one of
    /// the same address is replaced: its link stops working), or nothing for an address already
    /// confirmed. `confirmHash` is the digest of the confirmation link's secret, which the store
    /// never sees; the sign-up expires `Subscriber.confirmationLifetime` after `now`. Unconfirmed
    /// sign-ups whose link expired are deleted on the way.
    func addSubscriber(_ subscriber: Subscriber, confirmHash: String, now: Date) async throws -> SignUp

    /// Confirms the unconfirmed sign-up whose link has this digest and has not expired; nil when
    /// there is none (already used, expired, never issued).
    func confirmSubscriber(confirmHash: String, now: Date) async throws -> Subscriber?

    /// A confirmed subscriber by id (the recipient of their deliveries), or by the secret of their
    /// links; nil for none or an unconfirmed one.
    func subscriber(id: String) async throws -> Subscriber?
    func subscriber(token: String) async throws -> Subscriber?

    /// Changes a confirmed subscriber's components; answers them as stored.
    func setSubscriberComponents(id: String, components: [String]) async throws -> Subscriber?

    /// Deletes a subscriber (confirmed or not), and supersedes what was still waiting to be sent
    /// to them: they hear nothing more. False when there was none.
    func removeSubscriber(id: String, now: Date) async throws -> Bool

    /// Confirmed subscribers (with `pending`, unconfirmed ones instead) in id order, after `after`.
    func subscribers(pending: Bool, after: String?, limit: Int) async throws -> [Subscriber]

    /// How many are confirmed, and how many sign-ups wait for confirmation.
    func subscriberCounts() async throws -> (confirmed: Int, pending: Int)

    /// Deletes the unconfirmed sign-ups whose link expired by `now`; answers how many.
    func deleteExpiredSignUps(now: Date) async throws -> Int

    /// One event by id, whatever its cycle (nil once retention pruned it).
    func event(id: String) async throws -> Event?

    /// Stores a console session (see `ConsoleSession`).
    func addConsoleSession(_ session: ConsoleSession) async throws

    /// The session whose cookie digests to `idHash`, if it has not expired by `now`.
    func consoleSession(idHash: String, now: Date) async throws -> ConsoleSession?

    /// Ends a session (sign-out); false when there was none.
    func removeConsoleSession(idHash: String) async throws -> Bool

    /// Deletes the sessions that expired by `now`; answers how many.
    func deleteExpiredConsoleSessions(now: Date) async throws -> Int

    /// Deliveries waiting to be sent (queued or retrying), by channel; read from the index that
    /// holds only waiting rows.
    func queueDepths() async throws -> [String: Int]

    /// Plans one page (at most `limit` subscribers) of the oldest public event still to fan out to
    /// the subscribers channel `channel`, in one transaction: for each confirmed subscriber of the
    /// page, what `LifecyclePlanner.plan` decides for them as a recipient, from the incident as the
    /// event found it and the subscriber's own deliveries of the cycle. Events fan out one after
    /// the other, in commit order, so a resolve never overtakes its trigger's notices.
    func fanOut(channel: String, limit: Int, now: Date) async throws -> FanOutStep

    /// Several nodes share this store (defaults to false; see the extension below).
    var isShared: Bool { get }

    /// Channels that got new due work from any node (default: a finished stream).
    func workSignals() -> AsyncStream<String>

    /// A rate limiter shared by all nodes (default: nil, use the local limiter).
    func takeRateTokens(channel: String, want: Int, rate: Double, burst: Double, now: Date) async throws -> (granted: Int, nextAt: Date?)?

    /// Shuts connections and background tasks down (default: nothing to do).
    func close() async
}

extension Store {
    public func claim(_ request: ClaimRequest, now: Date, owner: String) async throws -> ClaimAnswer {
        let claimed = try await claim(channel: request.channel, limit: request.limit, now: now, owner: owner,
                                      leaseUntil: request.leaseUntil)
        guard claimed.count < request.limit else { return ClaimAnswer(claimed: claimed, nextDue: nil) }
        do {
            return ClaimAnswer(claimed: claimed, nextDue: try await nextDue(channel: request.channel))
        } catch {
            return ClaimAnswer(claimed: claimed, nextDue: now.addingTimeInterval(1))
        }
    }

    /// Once a channel's deliveries are claimed they are answered: a later failure (the next due
    /// time, another channel's claim) is answered as "look again in a second", never thrown, so
    /// no claimed delivery waits for its lease to expire.
    public func claim(_ requests: [ClaimRequest], now: Date, owner: String) async throws -> [ClaimAnswer] {
        var answers: [ClaimAnswer] = []
        let retry = ClaimAnswer(claimed: [], nextDue: now.addingTimeInterval(1))
        for r in requests {
            do {
                answers.append(try await claim(r, now: now, owner: owner))
            } catch where !answers.isEmpty {
                return answers + Array(repeating: retry, count: requests.count - answers.count)
            }
        }
        return answers
    }

    /// The incident with its current cycle's events and deliveries.
    public func incident(key: String) async throws -> IncidentDetail? {
        try await incident(key: key, deliveries: true, excluding: nil)
    }
}

/// Defaults for stores that one process owns alone (SQLite): nothing shared between nodes.
extension Store {
    /// Several herald nodes share this store. The dispatcher must then not take back every
    /// in-flight lease at start (they may belong to live nodes), only expired ones.
    public var isShared: Bool { false }

    /// Channels that got new due work from any node sharing the store. A store that is not shared
    /// has nothing to say: its stream is finished from the start.
    public func workSignals() -> AsyncStream<String> {
        AsyncStream { $0.finish() }
    }

    /// A token bucket shared by every node, per channel: refills at `rate` per second up to
    /// `burst`, grants up to `want` whole tokens now and, when it grants none, says when the next
    /// whole token arrives. Nil means the store shares no limiter: use the local one.
    public func takeRateTokens(channel: String, want: Int, rate: Double, burst: Double, now: Date) async throws -> (granted: Int, nextAt: Date?)? {
        nil
    }

    /// Releases connections and background work. The store is not used afterwards.
    public func close() async {}
}
