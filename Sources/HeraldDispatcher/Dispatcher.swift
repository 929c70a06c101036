import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The engine: one lane per channel, each claiming due deliveries from the store (all-clears
/// first) within its concurrency cap and rate limit, sending them, and recording every outcome
/// through one batched writer. Woken by `wake(channels:)` the moment something is committed; asleep
/// otherwise until the next retry is due. One slow channel never holds back another.
public final class Dispatcher: Service, Sendable {
    public struct Options: Sendable {
        /// A claim is held this long past the channel timeout before another claimer may take it.
        public var leaseMargin: Duration = .seconds(60)
        /// How long shutdown waits for attempts in flight.
        public var drainTimeout: Duration = .seconds(10)
        /// Return every in-flight delivery to waiting on start: right for a store one process owns.
        public var recoverAllOnStart = true
        /// How often leases that expired (a dead claimer's) are returned to waiting.
        public var leaseSweepInterval: Duration = .seconds(30)
        /// Largest claim per query.
        public var claimBatch = 256
        public init() {}
    }

    let store: any Store
    /// The lanes at work, by channel; replaced as a whole by `apply` (a reload).
    let current = Mutex<[String: Lane]>([:])
    /// Lanes started after `run` began (a reload's), for `run`'s task group to run.
    let added: AsyncStream<Lane>
    let addLane: AsyncStream<Lane>.Continuation
    let directory = LaneDirectory()
    /// Every channel's health: pauses a channel whose every attempt fails, and says so.
    public let health = HealthBoard()
    let recorder: GroupCommitter<AttemptRecord, Void>
    /// A lane's claim: its requests and the time it asked.
    typealias Claimer = @Sendable (ClaimRequest, Date) async throws -> ClaimAnswer
    let claims: Claimer
    let options: Options
    let logger: Logger
    let owner: String
    let stopping = Atomic<Bool>(false)
    let sweepWake = Wakeup()
    /// Rings when a silence is added or expired, so the notices it held are looked at at once.
    let silenceWake = Wakeup()
    /// The configuration's quiet hours, and whether they changed since the last sync.
    let quietHours = Mutex<(hours: [QuietHours], dirty: Bool)>(([], false))
    /// Listens for other nodes' work on a shared store; cancelled by `stop()`.
    let follower = Mutex<Task<Void, Never>?>(nil)

    var lanes: [String: Lane] { current.withLock { $0 } }

    public init(store: any Store, channels: [String: any Channel], configs: [ChannelConfig], renderer: MessageRenderer,
                redactor: Redactor, options: Options = .init(), logger: Logger) {
        self.store = store
        self.options = options
        self.logger = logger
        self.owner = Identifier.make(prefix: "node")
        let recorder = GroupCommitter<AttemptRecord, Void>(maxBatch: 2000) { records in
            try await store.record(records, now: Date())
            return records.map { _ in () }
        }
        self.recorder = recorder
        let owner = self.owner
        if store.isShared {
            // Every lane that asks while a claim runs joins the next one: one statement, one
            // transaction for all of them, however many nodes' commits woke them. Idle, a claim
            // goes at once.
            let batcher = GroupCommitter<ClaimRequest, ClaimAnswer>(maxBatch: 1000) { requests in
                try await store.claim(requests, now: Date(), owner: owner)
            }
            claims = { request, _ in try await batcher.submit(request) }
        } else {
            // One writer orders the claims itself (an idle lane's first).
            claims = { request, now in try await store.claim([request], now: now, owner: owner)[0] }
        }
        (added, addLane) = AsyncStream.makeStream(of: Lane.self)
        let lanes = makeLanes(channels: channels, configs: configs, renderer: renderer, redactor: redactor)
        current.withLock { $0 = lanes }
        directory.lanes.withLock { $0 = lanes }
    }

    /// One lane per configured channel that could be built.
    func makeLanes(channels: [String: any Channel], configs: [ChannelConfig], renderer: MessageRenderer,
                   redactor: Redactor) -> [String: Lane] {
        var lanes: [String: Lane] = [:]
        let directory = self.directory
        // One memo for the channels that use the global templates (an event fanned out to them is
        // rendered once); a channel with templates of its own renders with its own.
        let memo = RenderMemo(renderer: renderer)
        for config in configs {
            guard let channel = channels[config.name] else { continue }
            let channelMemo = config.templates.flatMap { try? MessageRenderer(templates: $0) }.map(RenderMemo.init(renderer:)) ?? memo
            let fallback = config.fallback.flatMap { name in
                channels[name].map { fallback in
                    Lane.Fallback(targets: fallback.recipients.isEmpty ? [Target(channel: name)]
                                      : fallback.recipients.map { Target(channel: name, recipient: $0) },
                                  wake: { directory.wake(name) })
                }
            }
            lanes[config.name] = Lane(channel: channel, config: config, store: store, recorder: recorder, claims: claims,
                                      renderer: channelMemo, redactor: redactor, options: options, logger: logger,
                                      health: health, fallback: fallback)
            health.register(config.name)
        }
        return lanes
    }

    /// What a reload changed in the dispatcher.
    public struct Applied: Sendable, Equatable {
        public var added: [String]
        public var replaced: [String]
        public var removed: [String]
    }

    /// Puts a new set of channels to work (a reload): each channel gets a new lane with its new
    /// settings; the lanes it replaces stop claiming at once and let their attempts in flight
    /// finish on the old settings (up to the channel's old timeout). A channel that is gone keeps
    /// its waiting deliveries in the store: they go out if it comes back, and can be replayed.
    public func apply(channels: [String: any Channel], configs: [ChannelConfig], renderer: MessageRenderer,
                      redactor: Redactor) -> Applied {
        let fresh = makeLanes(channels: channels, configs: configs, renderer: renderer, redactor: redactor)
        let old = current.withLock { lanes -> [String: Lane] in
            defer { lanes = fresh }
            return lanes
        }
        directory.lanes.withLock { $0 = fresh }
        for lane in old.values {
            lane.stop(drainTimeout: lane.config.timeout + .seconds(1))
        }
        if !stopping.load(ordering: .relaxed) {
            for lane in fresh.values { addLane.yield(lane) }
            // The new lanes look for due work at once (what the old ones left behind included).
            wake(channels: fresh.keys)
        }
        return Applied(added: fresh.keys.filter { old[$0] == nil }.sorted(),
                       replaced: fresh.keys.filter { old[$0] != nil }.sorted(),
                       removed: old.keys.filter { fresh[$0] == nil }.sorted())
    }

    /// New work was committed for these channels: start on it now.
    public func wake(channels: some Sequence<String>) {
        let lanes = self.lanes
        for name in channels { lanes[name]?.workCommitted() }
    }

    public func run() async throws {
        if options.recoverAllOnStart {
            let recovered = try await store.releaseLeases(expiredBefore: nil, owner: nil)
            if !recovered.isEmpty {
                logger.info("recovered deliveries left in flight by a previous run", metadata: ["channels": "\(recovered.joined(separator: ","))"])
            }
        }
        logger.info("dispatcher started", metadata: ["channels": "\(lanes.count)", "node": "\(owner)"])
        let added = self.added
        // Graceful shutdown (SIGTERM) and cancellation both stop claiming and drain.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                if store.isShared {
                    follower.withLock { $0 = Task { await self.followOtherNodes() } }
                }
                await withDiscardingTaskGroup { group in
                    for lane in lanes.values {
                        group.addTask { await lane.run() }
                    }
                    group.addTask { await self.sweepLeases() }
                    group.addTask { await self.releaseSilences() }
                    // A reload's lanes join the group; the stream ends at `stop()`, and the group
                    // then waits for every lane, old and new, to drain.
                    for await lane in added {
                        group.addTask { await lane.run() }
                    }
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
        // Attempts still running after the drain timeout are abandoned: their deliveries go back
        // to waiting and are sent again on the next start (at least once).
        let released = (try? await store.releaseLeases(expiredBefore: nil, owner: owner)) ?? []
        logger.info("dispatcher stopped", metadata: released.isEmpty ? [:] : ["released": "\(released.joined(separator: ","))"])
    }

    /// Stops claiming; lanes finish what is in flight (up to the drain timeout) and return.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        for lane in lanes.values { lane.stop(drainTimeout: options.drainTimeout) }
        addLane.finish()
        sweepWake.signal()
        silenceWake.signal()
        follower.withLock { $0?.cancel() }
    }

    private func sweepLeases() async {
        while !stopping.load(ordering: .relaxed) {
            await sweepWake.wait(until: Date().addingTimeInterval(options.leaseSweepInterval.seconds))
            if stopping.load(ordering: .relaxed) { return }
            do {
                let channels = try await store.releaseLeases(expiredBefore: Date(), owner: nil)
                // On a shared store another node may have committed work whose wake-up this node
                // missed: every lane looks once per sweep (one indexed query each).
                wake(channels: store.isShared ? Array(lanes.keys) : channels)
            } catch {
                logger.warning("lease sweep failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A silence was added, changed or expired: the notices it held are looked at now.
    public func silencesChanged() {
        silenceWake.signal()
    }

    /// How far ahead quiet hours are stored as silences, and how often that is renewed.
    static let quietHorizon: TimeInterval = 86_400
    static let quietRenewal: TimeInterval = 3600

    /// The configuration's quiet hours (at start and on every reload): stored as silences a day
    /// ahead, renewed hourly.
    public func setQuietHours(_ hours: [QuietHours]) {
        quietHours.withLock { $0 = (hours, true) }
        silenceWake.signal()
    }

    /// Lets go of the notices of silences that have ended, at each silence's end (a timer to the
    /// next end, not a poll), when an operator expires one, and once per lease sweep as a backstop
    /// (a notice held by a silence that ended while its event was being committed; another node's
    /// silence on a shared store).
    private func releaseSilences() async {
        var lastSync = Date.distantPast
        while !stopping.load(ordering: .relaxed) {
            var next = Date().addingTimeInterval(options.leaseSweepInterval.seconds)
            let (hours, dirty) = quietHours.withLock { q in
                defer { q.dirty = false }
                return q
            }
            if dirty || Date().timeIntervalSince(lastSync) >= Self.quietRenewal {
                let now = Date()
                let desired = hours.flatMap { $0.silences(from: now, horizon: Self.quietHorizon, createdAt: now) }
                do {
                    try await store.syncQuietHours(desired, now: now)
                    lastSync = now
                } catch {
                    logger.warning("storing quiet hours as silences failed", metadata: ["error": "\(error)"])
                    quietHours.withLock { $0.dirty = true }
                }
            }
            do {
                let released = try await store.releaseSilences(now: Date())
                if !released.channels.isEmpty {
                    logger.info("silence over: held notices are due", metadata: ["channels": "\(released.channels.joined(separator: ","))"])
                    wake(channels: released.channels)
                }
                if let end = released.nextEnd, end < next { next = end }
                // A whole batch: the rest at once (each pass is its own short transaction).
                if released.more { next = Date() }
            } catch {
                logger.warning("releasing silenced notices failed", metadata: ["error": "\(error)"])
            }
            if stopping.load(ordering: .relaxed) { return }
            await silenceWake.wait(until: next)
        }
    }

    /// Wakes lanes when any node commits work for them (PostgreSQL LISTEN/NOTIFY), so an
    /// all-clear enqueued on one node is claimed at once by whichever node is free.
    private func followOtherNodes() async {
        for await channel in store.workSignals() {
            if stopping.load(ordering: .relaxed) { break }
            wake(channels: [channel])
        }
    }

    /// Attempts running now, per channel (for tests and metrics).
    public func inFlight() -> [String: Int] {
        lanes.mapValues { $0.inFlightCount }
    }

    /// Channels whose rate limit holds attempts back now, with when the next may start.
    public func rateWaits() -> [String: Date] {
        lanes.compactMapValues { $0.rateWaitUntil }
    }
}

/// Lets a lane wake another (its fallback) without holding the dispatcher.
final class LaneDirectory: Sendable {
    let lanes = Mutex<[String: Lane]>([:])
    func wake(_ name: String) {
        lanes.withLock { $0[name] }?.workCommitted()
    }
}
