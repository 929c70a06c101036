import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import Logging
import Metrics
import Synchronization

/// One channel's share of the dispatcher: its claims, its concurrency cap, its rate limit.
final class Lane: Sendable {
    let channel: any Channel
    let config: ChannelConfig
    let store: any Store
    let recorder: GroupCommitter<AttemptRecord, Void>
    /// Claims this channel's due deliveries (the dispatcher's: on a shared store, one statement
    /// for every lane asking at the same time).
    let claims: Dispatcher.Claimer
    let renderer: RenderMemo
    let redactor: Redactor
    let options: Dispatcher.Options
    let logger: Logger
    let wakeup = Wakeup()
    /// Work for this channel was committed since its last claim (see `ClaimRequest.expected`).
    private let committed = Atomic<Bool>(false)
    /// The fallback channel's targets, and how to wake its lane.
    let fallback: Fallback?
    /// Pauses this channel when every attempt fails (see `ChannelHealth`).
    let health: HealthBoard

    struct Fallback: Sendable {
        var targets: [Target]
        var wake: @Sendable () -> Void
    }

    private struct State {
        var inFlight = 0
        var stopping = false
        var drainDeadline: Date?
        var limiter: RateLimiter?
        /// The rate limit holds the next start until then (nil: not waiting for the limit).
        var rateWaitUntil: Date?
    }
    private let state: Mutex<State>
    /// Starts per second shared across nodes (taken from the store before each claim).
    private let sharedRate: Double?

    private let delivered: Counter
    private let retried: Counter
    private let failed: Counter
    private let duration: Metrics.Timer
    /// From a resolve's receipt to its all-clear's delivery: how long the good news took.
    private let allClearDelay: Metrics.Timer

    init(channel: any Channel, config: ChannelConfig, store: any Store, recorder: GroupCommitter<AttemptRecord, Void>,
         claims: @escaping Dispatcher.Claimer, renderer: RenderMemo, redactor: Redactor, options: Dispatcher.Options, logger: Logger,
         health: HealthBoard, fallback: Fallback? = nil) {
        self.fallback = fallback
        self.health = health
        self.channel = channel
        self.config = config
        self.store = store
        self.recorder = recorder
        self.claims = claims
        self.renderer = renderer
        self.redactor = redactor
        self.options = options
        var logger = logger
        logger[metadataKey: "channel"] = "\(config.name)"
        self.logger = logger
        // The configured rate, else the one the provider documents.
        let rate = config.ratePerSecond ?? channel.limits.ratePerSecond
        // On a store shared by several nodes the bucket lives in the store, so the limit holds
        // for the cluster, not per process.
        sharedRate = store.isShared ? rate : nil
        state = Mutex(State(limiter: store.isShared ? nil : rate.map { RateLimiter(rate: $0, now: Date()) }))
        delivered = Counter(label: "herald_deliveries_total", dimensions: [("channel", config.name), ("outcome", "delivered")])
        retried = Counter(label: "herald_deliveries_total", dimensions: [("channel", config.name), ("outcome", "retry")])
        failed = Counter(label: "herald_deliveries_total", dimensions: [("channel", config.name), ("outcome", "failed")])
        duration = Metrics.Timer(label: "herald_attempt_duration_seconds", dimensions: [("channel", config.name)],
                                 preferredDisplayUnit: .seconds)
        allClearDelay = Metrics.Timer(label: "herald_allclear_delay_seconds", dimensions: [("channel", config.name)],
                                      preferredDisplayUnit: .seconds)
    }

    /// New work for this channel was committed: claim it now.
    func workCommitted() {
        committed.store(true, ordering: .releasing)
        wakeup.signal()
    }

    var inFlightCount: Int { state.withLock { $0.inFlight } }
    /// When the rate limit lets the next attempt start, while it holds one back.
    var rateWaitUntil: Date? { state.withLock { $0.rateWaitUntil.flatMap { $0 > Date() ? $0 : nil } } }

    func stop(drainTimeout: Duration) {
        state.withLock {
            $0.stopping = true
            $0.drainDeadline = Date().addingTimeInterval(drainTimeout.seconds)
        }
        wakeup.signal()
    }

    /// Claims and sends until stopped, then waits for attempts in flight up to the drain deadline.
    func run() async {
        // Attempts are unstructured tasks so that shutdown can stop waiting for them at the drain
        // deadline; their deliveries are then released by the dispatcher and sent again later.
        do {
            // Set after one short wait with a few free slots: the next pass claims whatever is free.
            var coalesced = false
            while true {
                let (stopping, free, rateAllowed, rateNext) = state.withLock { s -> (Bool, Int, Int, Date?) in
                    let now = Date()
                    let free = config.concurrency - s.inFlight
                    guard var limiter = s.limiter else { return (s.stopping, free, free, nil) }
                    let allowed = limiter.available(now)
                    let next = allowed > 0 ? nil : limiter.nextStart(now)
                    s.limiter = limiter
                    s.rateWaitUntil = next
                    return (s.stopping, free, allowed, next)
                }
                if stopping { break }
                // A paused channel starts one probe per `probe_every`; its other work waits.
                let admitted = health.admits(config.name, want: min(free, rateAllowed, options.claimBatch), at: Date(),
                                             policy: config.health)
                if admitted.count == 0, let probe = admitted.nextProbe {
                    await wakeup.wait(until: probe)
                    continue
                }
                var deadline: Date?
                let want = admitted.count
                // Under load, claim in batches rather than one query per finished attempt: with
                // fewer than a quarter of the slots free, wait up to 5 ms for more to free up, then
                // claim anyway — so an all-clear is never held longer than that by batching.
                let batchFloor = free < config.concurrency ? max(1, config.concurrency / 4) : 1
                let limitedByRate = rateAllowed < free
                if want > 0 && (want >= batchFloor || limitedByRate || coalesced) {
                    coalesced = false
                    var want = want
                    if let rate = sharedRate {
                        do {
                            let grant = try await store.takeRateTokens(channel: config.name, want: want, rate: rate,
                                                                       burst: RateLimiter.burst(for: rate), now: Date())
                            state.withLock { $0.rateWaitUntil = grant?.granted == 0 ? grant?.nextAt : nil }
                            if let grant, grant.granted == 0 {
                                await wakeup.wait(until: grant.nextAt ?? Date().addingTimeInterval(1 / rate))
                                continue
                            }
                            want = grant?.granted ?? want
                        } catch {
                            logger.error("rate limit check failed; retrying in 1s", metadata: ["error": "\(redactor.redact("\(error)"))"])
                            await wakeup.wait(until: Date().addingTimeInterval(1))
                            continue
                        }
                    }
                    let now = Date()
                    let lease = now.addingTimeInterval(config.timeout.seconds + options.leaseMargin.seconds)
                    let answer: ClaimAnswer
                    do {
                        answer = try await claims(ClaimRequest(channel: config.name, limit: want, leaseUntil: lease,
                                                               idle: free == config.concurrency,
                                                               expected: committed.exchange(false, ordering: .acquiring)), now)
                    } catch {
                        logger.error("claim failed; retrying in 1s", metadata: ["error": "\(redactor.redact("\(error)"))"])
                        await wakeup.wait(until: Date().addingTimeInterval(1))
                        continue
                    }
                    let claimed = answer.claimed
                    if !claimed.isEmpty {
                        health.probed(config.name, at: now)
                        state.withLock { s in
                            s.inFlight += claimed.count
                            s.limiter?.take(claimed.count, now)
                        }
                        for item in claimed {
                            Task { await self.attempt(item, leaseUntil: lease) }
                        }
                    }
                    if claimed.count == want { continue }
                    // Everything due is taken: sleep until the next one is due or a wake-up.
                    deadline = answer.nextDue
                    // Something due was not claimable (an all-clear waiting for its notice, which
                    // signals this lane when it finishes) or arrived just now (its enqueue
                    // signalled): either way a wake-up is coming; the short deadline only guards.
                    if let d = deadline, d <= Date() { deadline = Date().addingTimeInterval(0.1) }
                } else if want > 0 {
                    coalesced = true
                    deadline = Date().addingTimeInterval(0.005)
                } else if let rateNext {
                    deadline = rateNext
                }
                // With every slot busy, a finishing attempt signals the wake-up.
                await wakeup.wait(until: deadline)
            }
            await drain()
        }
    }

    /// Waits for attempts in flight, up to the drain deadline.
    private func drain() async {
        while true {
            let (n, deadline) = state.withLock { ($0.inFlight, $0.drainDeadline) }
            if n == 0 { return }
            if let deadline, deadline <= Date() {
                logger.warning("drain timeout: releasing attempts still in flight", metadata: ["in_flight": "\(n)"])
                return
            }
            await wakeup.wait(until: deadline)
        }
    }

    private func attempt(_ item: ClaimedDelivery, leaseUntil: Date) async {
        let delivery = item.delivery
        let startedAt = Date()
        let clock = ContinuousClock()
        let start = clock.now
        let (title, text) = channel.fitted(renderer.render(kind: delivery.kind, event: item.event, incident: item.incident))
        // Event text escaped for the provider's markup: it may not mention, link or format.
        let formatted = channel.markup == .plain ? (title, text)
            : channel.fitted(renderer.render(kind: delivery.kind, event: item.event, incident: item.incident, markup: channel.markup))
        // A follow-up carries the title its notice had, so a reply keeps the conversation's subject.
        let noticeTitle = item.notice.map { channel.fitted(renderer.render(kind: .notice, event: $0.event, incident: item.incident)).title }
        let message = OutboundMessage(deliveryId: delivery.id, kind: delivery.kind, recipient: delivery.recipient, event: item.event,
                                      incident: item.incident, title: title, text: text, thread: item.thread,
                                      threadDeliveryId: item.threadDeliveryId, noticeTitle: noticeTitle,
                                      noticeDeliveryId: item.notice?.deliveryId, references: item.references,
                                      formattedTitle: formatted.0, formattedText: formatted.1)
        let record: AttemptRecord
        do {
            let receipt = try await channel.deliver(message)
            let elapsed = clock.now - start
            record = AttemptRecord(deliveryId: delivery.id, lease: item.lease, startedAt: startedAt, duration: elapsed,
                                   outcome: .delivered(reference: receipt.reference), status: receipt.status)
            delivered.increment()
            health.record(config.name, failure: nil, at: Date(), policy: config.health)
            duration.recordNanoseconds(elapsed.nanoseconds)
            if delivery.kind == .allClear {
                let waited = min(max(0, Date().timeIntervalSince(item.event.receivedAt)), 1e9)
                allClearDelay.recordNanoseconds(Int64(waited * 1e9))
            }
        } catch {
            let elapsed = clock.now - start
            duration.recordNanoseconds(elapsed.nanoseconds)
            var failure = (error as? DeliveryError) ?? .transient(.other, "\(error)")
            failure.detail = redactor.redact(failure.detail)
            health.record(config.name, failure: failure.description, at: Date(), policy: config.health)
            var outcome = DeliveryLifecycle.judge(failure, attempts: item.budgetAttempts + 1, since: item.budgetSince, now: Date(),
                                                  policy: config.retry, random: Double.random(in: 0...1))
            switch outcome {
            case .retry(let at):
                retried.increment()
                logger.notice("attempt failed; will retry", metadata: [
                    "delivery": "\(delivery.id)", "incident": "\(delivery.incident)", "reason": "\(failure.reason.rawValue)",
                    "retry_in": "\(Duration.seconds(clamping: at.timeIntervalSinceNow).formatted)",
                    "error": "\(failure.description)",
                ])
            case .failed(let reason):
                outcome = .failed(reason: redactor.redact(reason))
                failed.increment()
                logger.warning("delivery failed", metadata: [
                    "delivery": "\(delivery.id)", "incident": "\(delivery.incident)", "reason": "\(failure.reason.rawValue)", "error": "\(redactor.redact(reason))",
                ])
            default:
                break
            }
            var isFinalFailure = false
            if case .failed = outcome { isFinalFailure = true }
            record = AttemptRecord(deliveryId: delivery.id, lease: item.lease, startedAt: startedAt, duration: elapsed,
                                   outcome: outcome, status: failure.status, reason: failure.reason.rawValue,
                                   error: failure.description,
                                   fallback: isFinalFailure && delivery.kind == .notice ? fallback?.targets ?? [] : [])
        }
        let tallied: AttemptWindow.Outcome? = switch record.outcome {
        case .delivered: .delivered
        case .retry: .retried
        case .failed: .failed
        case .released: nil
        }
        if let tallied { health.tally(config.name, tallied, durationMs: Double(record.duration.nanoseconds) / 1e6, error: record.error, at: Date()) }
        do {
            // The failure and its fallback commit together; the store decides (fenced by the lease,
            // and by whether the incident is still open) what the outcome changes.
            try await self.record(record, leaseUntil: leaseUntil)
            if !record.fallback.isEmpty { fallback?.wake() }
        } catch {
            // The delivery stays in flight in the store; its lease expires and it is sent again.
            logger.error("cannot record attempt outcome", metadata: [
                "delivery": "\(delivery.id)", "incident": "\(delivery.incident)", "error": "\(redactor.redact("\(error)"))",
            ])
        }
        state.withLock { $0.inFlight -= 1 }
        wakeup.signal()
    }

    /// Records an attempt's outcome, trying again while its lease holds. An outcome not recorded
    /// leaves the delivery in flight until the lease expires, and then it is sent again, here or on
    /// another node: a database restart fails the commits running at that moment, and their
    /// outcomes go in a moment later instead of their messages going out twice. The slot stays
    /// taken meanwhile, so a store that cannot record stops the lane from claiming more. An outcome
    /// the store refused (the data's fault) is not tried again.
    private func record(_ record: AttemptRecord, leaseUntil: Date) async throws {
        var pause = 0.05
        while true {
            do {
                return try await recorder.submit(record)
            } catch let error as StoreError where error.isRejected {
                throw error
            } catch {
                if Task.isCancelled || Date().addingTimeInterval(pause) >= leaseUntil { throw error }
                try? await Task.sleep(for: .seconds(pause))
                pause = min(pause * 2, 1)
            }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
