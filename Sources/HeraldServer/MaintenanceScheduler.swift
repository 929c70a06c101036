import Foundation
import HeraldCore
import HeraldDispatcher
import HeraldStore
import Logging
import ServiceLifecycle
import Synchronization

/// Posts each scheduled maintenance's steps on time, from the store: a timer to the next step
/// (not a poll), woken at once when one is scheduled or cancelled. A step is committed as an
/// event with the idempotency key `<id>:<step>` and then recorded on the window, so a crash
/// between the two re-posts a repeat the store drops, and a restart neither loses nor repeats a
/// step. Several nodes on one PostgreSQL store may all run this: the key makes one post win.
final class MaintenanceScheduler: Sendable {
    let store: any Store
    let logger: Logger
    let wakeup = Wakeup()
    /// How often it looks without being woken: a window scheduled through another node of a
    /// cluster is seen within this.
    let sweep: TimeInterval
    private let stopping = Atomic<Bool>(false)

    /// How long after its end a window is still looked at: a completion due while Herald was
    /// down is posted when it comes back within this.
    static let lookBack: TimeInterval = 7 * 86_400
    /// The idempotency scope of step posts: a control character no token name may contain, so no
    /// sender's `Idempotency-Key` can take a step's key first.
    static let idempotencyScope = "\u{1}maintenance"

    init(store: any Store, logger: Logger) {
        self.store = store
        var logger = logger
        logger[metadataKey: "service"] = "maintenance"
        self.logger = logger
        sweep = store.isShared ? 30 : 3600
    }

    /// A window was scheduled or cancelled: look now.
    func changed() { wakeup.signal() }

    /// Runs until graceful shutdown. `post` commits a step's event (through the routes, as
    /// ingest does); `published` tells the status page a step changed what it shows.
    func run(post: @escaping @Sendable (Event, EnqueueRequest.Idempotency) async throws -> Void,
             published: @escaping @Sendable () -> Void) async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                while !stopping.load(ordering: .relaxed) {
                    let next = await pass(post: post, published: published)
                    if stopping.load(ordering: .relaxed) { return }
                    await wakeup.wait(until: next)
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
    }

    private func stop() {
        stopping.store(true, ordering: .relaxed)
        wakeup.signal()
    }

    /// Whether the store already has `step`'s event of the maintenance `id` (one read of its
    /// incident; a step is due a few times per window).
    func posted(_ step: Maintenance.Step, of id: String) async throws -> Bool {
        // Its events only: with subscribers, the maintenance's deliveries may be a hundred thousand.
        guard let detail = try await store.incident(key: Maintenance.incidentPrefix + id, deliveries: false, excluding: nil) else { return false }
        return detail.events.contains {
            $0.source == Maintenance.source && $0.labels["maintenance"] == id && $0.labels["step"] == step.rawValue
        }
    }

    /// Windows whose last post failed, and when to try each again (doubling, up to 10 minutes):
    /// one window the store refuses must not hold back the others, nor be retried flat out.
    private let failing = Mutex<[String: (at: Date, delay: TimeInterval)]>([:])

    /// Posts every step due now; answers when to look again.
    func pass(post: @Sendable (Event, EnqueueRequest.Idempotency) async throws -> Void,
              published: @Sendable () -> Void) async -> Date {
        var next = Date().addingTimeInterval(sweep)
        let windows: [Silence]
        do {
            windows = try await store.maintenanceWindows(endingAfter: Date().addingTimeInterval(-Self.lookBack), limit: 10_000)
        } catch {
            logger.warning("reading maintenance windows failed; trying again in 5 s", metadata: ["error": "\(error)"])
            return Date().addingTimeInterval(5)
        }
        for stored in windows {
            if let wait = failing.withLock({ $0[stored.id] }), wait.at > Date() {
                next = min(next, wait.at)
                continue
            }
            var window = stored
            do {
                // At most one of each step per pass (each posts once; the bound guards the loop).
                for _ in Maintenance.Step.allCases {
                    let now = Date()
                    guard let step = window.dueMaintenanceStep(at: now),
                          let event = window.maintenanceEvent(step, id: Identifier.make(prefix: "evt", at: now), now: now) else { break }
                    // Posted before a crash but never recorded, and its idempotency key pruned since
                    // (retention.idempotency): the incident's events say so; only record it.
                    if try await !posted(step, of: window.id) {
                        let key = "\(window.id):\(step.rawValue)"
                        try await post(event, .init(scope: Self.idempotencyScope, key: key, bodyHash: key))
                    }
                    guard let recorded = try await store.recordMaintenanceStep(id: window.id, step: step, at: now) else { break }
                    window = recorded
                    published()
                    logger.info("maintenance step posted", metadata: ["maintenance": "\(window.id)", "step": "\(step.rawValue)"])
                }
                failing.withLock { $0[window.id] = nil }
            } catch {
                let delay = min(600, 2 * (failing.withLock { $0[window.id]?.delay } ?? 2.5))
                failing.withLock { $0[window.id] = (Date().addingTimeInterval(delay), delay) }
                logger.warning("posting a maintenance step failed; trying again later",
                               metadata: ["maintenance": "\(window.id)", "retry_in_s": "\(Int(delay))", "error": "\(error)"])
                next = min(next, Date().addingTimeInterval(delay))
                continue
            }
            if let at = window.nextMaintenanceStep(after: Date()), at < next { next = at }
        }
        return next
    }
}

/// The scheduler as a service of `herald serve`, posting through the application's ingest path.
struct MaintenanceService: Service {
    let scheduler: MaintenanceScheduler
    let post: @Sendable (Event, EnqueueRequest.Idempotency) async throws -> Void
    let published: @Sendable () -> Void

    func run() async throws {
        await scheduler.run(post: post, published: published)
    }
}
