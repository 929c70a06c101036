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
    let lanes: [String: Lane]
    let recorder: GroupCommitter<AttemptRecord, Void>
    let options: Options
    let logger: Logger
    let owner: String
    let stopping = Atomic<Bool>(false)
    let sweepWake = Wakeup()
    /// Listens for other nodes' work on a shared store; cancelled by `stop()`.
    let follower = Mutex<Task<Void, Never>?>(nil)

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
        var lanes: [String: Lane] = [:]
        let directory = LaneDirectory()
        let memo = RenderMemo(renderer: renderer)
        for config in configs {
            guard let channel = channels[config.name] else { continue }
            let fallback = config.fallback.flatMap { name in
                channels[name].map { fallback in
                    Lane.Fallback(targets: fallback.recipients.isEmpty ? [Target(channel: name)]
                                      : fallback.recipients.map { Target(channel: name, recipient: $0) },
                                  wake: { directory.wake(name) })
                }
            }
            lanes[config.name] = Lane(channel: channel, config: config, store: store, recorder: recorder,
                                      renderer: memo, redactor: redactor, owner: owner, options: options, logger: logger,
                                      fallback: fallback)
        }
        self.lanes = lanes
        directory.lanes.withLock { $0 = lanes }
    }

    /// New work was committed for these channels: start on it now.
    public func wake(channels: some Sequence<String>) {
        for name in channels { lanes[name]?.wakeup.signal() }
    }

    public func run() async throws {
        if options.recoverAllOnStart {
            let recovered = try await store.releaseLeases(expiredBefore: nil, owner: nil)
            if !recovered.isEmpty {
                logger.info("recovered deliveries left in flight by a previous run", metadata: ["channels": "\(recovered.joined(separator: ","))"])
            }
        }
        logger.info("dispatcher started", metadata: ["channels": "\(lanes.count)", "node": "\(owner)"])
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
        sweepWake.signal()
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

    /// Wakes lanes when any node commits work for them (PostgreSQL LISTEN/NOTIFY), so an
    /// all-clear enqueued on one node is claimed at once by whichever node is free.
    private func followOtherNodes() async {
        for await channel in store.workSignals() {
            if stopping.load(ordering: .relaxed) { break }
            lanes[channel]?.wakeup.signal()
        }
    }

    /// Attempts running now, per channel (for tests and metrics).
    public func inFlight() -> [String: Int] {
        lanes.mapValues { $0.inFlightCount }
    }
}

/// Lets a lane wake another (its fallback) without holding the dispatcher.
final class LaneDirectory: Sendable {
    let lanes = Mutex<[String: Lane]>([:])
    func wake(_ name: String) {
        lanes.withLock { $0[name] }?.wakeup.signal()
    }
}
