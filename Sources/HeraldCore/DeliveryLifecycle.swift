import Foundation

/// What became of one attempt (or of a claim that ended without one).
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(reference: String?)
    case retry(at: Date)
    case failed(reason: String)
    /// The claim ended without an answer (shutdown drain, lease expiry, restart): not counted.
    case released
}

/// The delivery state machine, as pure functions the stores call inside their transaction with
/// what they read; they store what it returns. No I/O, no clock of its own.
///
/// ```
/// queued ──claim──► in_flight ──delivered──► delivered
///    ▲                 │  └──transient, retries left──► retrying ──claim──► in_flight
///    │                 └──permanent / exhausted──► failed ──replay──► queued
///    └──released: lease expired / drained / restarted (attempt not counted)
/// queued | retrying ──the resolve──► superseded
/// silenced (a notice a silence held at its creation) ──no silence holds it──► queued (due now)
///    └──the resolve──► superseded (its target gets nothing)
/// in_flight ──fails or is released after its cycle resolved (notice, update)──► superseded
/// ```
///
/// Claims (in SQL, in each store): a notice is claimable when due; a follow-up (update,
/// all-clear, summary) only while nothing earlier to its target is in flight, and an update only
/// once it is due (it waits, undue, until its notice is delivered).
///
/// Outcomes are fenced by the lease: only the claim that holds the delivery changes it; a late
/// answer from a claim whose lease passed to another is kept in the attempt history and changes
/// nothing.
public enum DeliveryLifecycle {
    /// What the store knows of a delivery when something happens to it.
    public struct Current: Sendable, Equatable {
        public var state: DeliveryState
        public var kind: DeliveryKind
        /// The claim that holds it (nil unless in flight).
        public var lease: String?
        /// Its incident cycle is over: resolved, or a later cycle has opened.
        public var cycleClosed: Bool
        /// Attempts counted in the current retry budget.
        public var attempts: Int

        public init(state: DeliveryState, kind: DeliveryKind, lease: String?, cycleClosed: Bool, attempts: Int) {
            self.state = state
            self.kind = kind
            self.lease = lease
            self.cycleClosed = cycleClosed
            self.attempts = attempts
        }
    }

    /// What else changes, in the same transaction.
    public enum Effect: Sendable, Equatable {
        /// The notice arrived: the updates that waited for it are due now.
        case updatesDue
        /// The notice will never arrive: the updates waiting for it are superseded.
        case supersedeUpdates
        /// The notice will never arrive and its cycle is over: the all-clear planned for its target
        /// (which was held while the notice was in flight) becomes the summary.
        case allClearBecomesSummary
        /// The notice failed for good while its cycle is open: the channel's fallback takes it.
        case fallback
    }

    public struct Transition: Sendable, Equatable {
        /// The new state; nil when nothing changes (a late or unknown answer).
        public var state: DeliveryState?
        /// When a retry is due (for `retrying`).
        public var dueAt: Date?
        /// The attempt counts against the retry budget.
        public var countsAttempt: Bool
        public var effects: [Effect]

        public static let none = Transition(state: nil, dueAt: nil, countsAttempt: false, effects: [])

        /// An answer that changed nothing: kept in the history as late.
        public var isLate: Bool { state == nil }
    }

    /// An attempt's outcome arrives from the claim holding `lease`.
    public static func outcome(_ outcome: DeliveryOutcome, lease: String, current: Current) -> Transition {
        guard current.state == .inFlight, current.lease == lease else { return .none }
        switch outcome {
        case .delivered:
            return Transition(state: .delivered, dueAt: nil, countsAttempt: true,
                              effects: current.kind == .notice ? [.updatesDue] : [])
        case .retry(let at):
            if let moot = moot(current, countsAttempt: true) { return moot }
            return Transition(state: .retrying, dueAt: at, countsAttempt: true, effects: [])
        case .failed:
            if let moot = moot(current, countsAttempt: true) { return moot }
            return Transition(state: .failed, dueAt: nil, countsAttempt: true,
                              effects: current.kind == .notice ? [.supersedeUpdates, .fallback] : [])
        case .released:
            return release(current)
        }
    }

    /// The claim ended without an answer (lease expiry, drain, restart): back to waiting, unless
    /// the cycle is over, when a notice or update is never sent again.
    public static func release(_ current: Current) -> Transition {
        guard current.state == .inFlight else { return .none }
        if let moot = moot(current, countsAttempt: false) { return moot }
        return Transition(state: current.attempts == 0 ? .queued : .retrying, dueAt: nil, countsAttempt: false, effects: [])
    }

    /// A notice or update whose cycle ended while it was in flight, and that did not arrive: it is
    /// superseded; for a notice its target gets the summary instead of the all-clear.
    private static func moot(_ current: Current, countsAttempt: Bool) -> Transition? {
        guard current.cycleClosed, current.kind == .notice || current.kind == .update else { return nil }
        return Transition(state: .superseded, dueAt: nil, countsAttempt: countsAttempt,
                          effects: current.kind == .notice ? [.supersedeUpdates, .allClearBecomesSummary] : [])
    }

    /// An operator sends a channel's work elsewhere (the channel was removed, or its endpoint is
    /// gone): a notice of an open cycle that is waiting (a silenced one too: the operator chose
    /// where it goes) or failed fails on this channel (so its
    /// resolve sends nothing here, as after a fallback) and the other channel takes it, as a fallback
    /// would — its updates and all-clear follow there. Anything else stays: an update follows its
    /// notice, a notice in flight finishes, and a cycle that is over needs no notice. nil: left alone.
    /// `newTargets`: some target has no notice in the cycle yet (a failed notice already sent
    /// elsewhere is left alone).
    public static func redirect(_ current: Current, newTargets: Bool) -> Transition? {
        guard current.kind == .notice, !current.cycleClosed,
              [.queued, .retrying, .failed, .silenced].contains(current.state) else { return nil }
        if current.state == .failed && !newTargets { return nil }
        return Transition(state: .failed, dueAt: nil, countsAttempt: false, effects: [.supersedeUpdates, .fallback])
    }

    /// The reason a redirected notice carries.
    public static func redirectReason(_ targets: [Target]) -> String {
        "sent to \(targets.map(\.channel).uniqued().joined(separator: ", ")) instead by an operator"
    }

    /// A silence that held a notice (`silenced`) has ended: the notice goes out now, or waits for
    /// the silence that still holds it (`stillHeldBy`); a notice of a cycle that is over is never
    /// sent (the resolve supersedes silenced notices; this covers one it missed). nil: not silenced.
    public static func unsilence(_ current: Current, stillHeldBy: String?) -> (state: DeliveryState, silencedBy: String?)? {
        guard current.state == .silenced else { return nil }
        if current.cycleClosed { return (.superseded, nil) }
        if let stillHeldBy { return (.silenced, stillHeldBy) }
        return (.queued, nil)
    }

    /// Whether an operator's replay re-queues it: a failed delivery, except a notice or update of a
    /// cycle that is over (its target got the summary instead).
    public static func replayable(_ current: Current) -> Bool {
        current.state == .failed && !(current.cycleClosed && (current.kind == .notice || current.kind == .update))
    }

    /// The dispatcher's verdict on a failed attempt: retry (at a jittered or provider-given time)
    /// while the policy allows, else fail with the reason. `attempts` counts this one; `since` is
    /// when the retry budget began (creation or replay). `random` in [0, 1] drives the jitter.
    public static func judge(_ error: DeliveryError, attempts: Int, since: Date, now: Date, policy: RetryPolicy,
                             random: Double) -> DeliveryOutcome {
        guard error.isTransient else { return .failed(reason: error.description) }
        let wait = policy.delay(afterAttempts: attempts, retryAfter: error.retryAfter, random: random)
        let age = Duration.seconds(clamping: now.timeIntervalSince(since))
        guard policy.allowsRetry(afterAttempts: attempts, age: age, wait: wait) else {
            let why = attempts >= policy.maxAttempts
                ? "gave up after \(attempts) attempts"
                : "gave up: older than max_age \(policy.maxAge.formatted)"
            return .failed(reason: "\(why); last error: \(error.description)")
        }
        return .retry(at: now.addingTimeInterval(wait.seconds))
    }
}

extension Duration {
    /// A duration from seconds that may come from anywhere: NaN and negatives are zero, and the
    /// value is capped at 100 years, so the conversion never traps.
    public static func seconds(clamping value: Double) -> Duration {
        guard value.isFinite, value > 0 else { return .zero }
        return .milliseconds(Int64(Swift.min(value, 100 * 365.25 * 86_400) * 1000))
    }
}
