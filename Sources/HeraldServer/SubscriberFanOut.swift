import Foundation
import HeraldDispatcher
import HeraldStore
import Logging
import ServiceLifecycle

/// Plans the deliveries of public events to the subscribers channel, a page of subscribers per
/// transaction (`Store.fanOut`), so a hundred thousand subscribers never sit in memory or in one
/// long write. Woken by the commits of public events; looks again every `sweep` for what another
/// node committed or a failed page left.
final class SubscriberFanOut: Sendable {
    let store: any Store
    let logger: Logger
    let wakeup = Wakeup()
    /// Subscribers planned per transaction.
    let pageSize: Int

    init(store: any Store, logger: Logger, pageSize: Int = 1000) {
        self.store = store
        var logger = logger
        logger[metadataKey: "service"] = "fanout"
        self.logger = logger
        self.pageSize = pageSize
    }

    func signal() { wakeup.signal() }

    /// Runs until cancelled: plans every waiting page, waking `channel`'s lane as work becomes due.
    func run(channel: @escaping @Sendable () -> String?, wake: @escaping @Sendable (String) -> Void) async {
        await withTaskCancellationHandler {
            await loop(channel: channel, wake: wake)
        } onCancel: {
            wakeup.signal()
        }
    }

    private func loop(channel: @escaping @Sendable () -> String?, wake: @escaping @Sendable (String) -> Void) async {
        let sweep: TimeInterval = store.isShared ? 30 : 300
        var pause: TimeInterval = 1
        while !Task.isCancelled {
            var failed = false
            if let name = channel() {
                do {
                    while !Task.isCancelled {
                        let step = try await store.fanOut(channel: name, limit: pageSize, now: Date())
                        if step.due { wake(name) }
                        if !step.more { break }
                    }
                    pause = 1
                } catch {
                    failed = true
                    logger.warning("cannot plan the subscribers' deliveries; retrying", metadata: ["error": "\(error)"])
                }
            }
            await wakeup.wait(until: Date().addingTimeInterval(failed ? pause : sweep))
            if failed { pause = min(pause * 2, 60) }
        }
    }
}

struct SubscriberFanOutService: Service {
    let fanOut: SubscriberFanOut
    let channel: @Sendable () -> String?
    let wake: @Sendable (String) -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await fanOut.run(channel: channel, wake: wake)
        }
    }
}
