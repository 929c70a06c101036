import Foundation
import HeraldChannels
import HeraldCore
import HeraldDispatcher
import HeraldStore
import Synchronization

extension HeraldApplication {
    /// What a reload did.
    public struct ReloadReport: Sendable, Encodable, Equatable {
        public var file: String
        /// Channels that did not exist before, channels rebuilt with their (possibly new)
        /// settings, and channels that are gone (their waiting deliveries stay in the store).
        public var added: [String]
        public var replaced: [String]
        public var removed: [String]
        /// Changes that take effect only at the next start (the listen address, the store).
        public var notes: [String]
    }

    /// What the command line set over the file (`--listen`, `--store`): applied to every re-read
    /// file too, so a reload does not undo them.
    public func keepOverrides(_ apply: @escaping @Sendable (inout HeraldConfig) -> Void) {
        commandLineOverrides.withLock { $0 = apply }
    }

    /// A reload already running: reloads do not overlap.
    public struct ReloadBusy: Error, CustomStringConvertible {
        public var description: String { "a reload is already running; try again when it is done" }
    }

    /// Re-reads the configuration file this server started from and puts it to work without a
    /// restart: channels (new, changed, removed), routes, tokens, templates, retry policies and
    /// the listener's certificate apply to work claimed and requests answered from now on;
    /// attempts already in flight finish on the settings they started with. A file with any
    /// problem changes nothing: `ConfigErrors` says what, exactly as `herald check` does.
    public func reload() async throws -> ReloadReport {
        guard reloading.withLock({ busy -> Bool in
            defer { busy = true }
            return !busy
        }) else { throw ReloadBusy() }
        defer { reloading.withLock { $0 = false } }
        let old = config
        var fresh = try ConfigLoader.load(file: old.file, validate: { ChannelRegistry.validate($0) + ListenerTLS.validate($0) })
        commandLineOverrides.withLock { $0 }?(&fresh)
        let channels = try ChannelRegistry.build(fresh, transport: transport, console: console,
                                                 statusBoard: StoreStatusBoard(store: store, cache: statusCache),
                                                 subscribers: StoreSubscriberDirectory(store: store))
        let renderer = try MessageRenderer(templates: fresh.templates)
        try reloadTLS(fresh.server.tls)
        var notes: [String] = []
        if fresh.server.listen != old.server.listen {
            notes.append("server.listen changed to \(fresh.server.listen): it takes effect at the next start")
        }
        if fresh.server.publicListen != old.server.publicListen {
            notes.append("server.public_listen changed to \(fresh.server.publicListen.map(\.description) ?? "none"): it takes effect at the next start")
        }
        if fresh.store.path != old.store.path || fresh.store.url?.value != old.store.url?.value {
            notes.append("store changed: it takes effect at the next start")
        }
        // Errors of attempts still running on old settings may quote old secrets: mask both.
        let redactor = Redactor(secrets: old.secrets + fresh.secrets)
        let applied = dispatcher.apply(channels: channels, configs: fresh.channels, renderer: renderer, redactor: redactor)
        dispatcher.setQuietHours(fresh.quietHours)
        live.withLock { live in
            live = Live(config: fresh, channels: channels, routing: Self.routing(fresh, channels),
                        auth: Authenticator(tokens: fresh.server.tokens, throttle: live.auth.throttle), redactor: redactor,
                        status: StatusSettings(fresh))
        }
        for name in applied.removed {
            notes.append(await waitingNote(removed: name))
        }
        let report = ReloadReport(file: fresh.file, added: applied.added, replaced: applied.replaced, removed: applied.removed,
                                  notes: notes)
        logger.notice("configuration reloaded", metadata: [
            "file": "\(fresh.file)", "added": "\(report.added.joined(separator: ","))",
            "removed": "\(report.removed.joined(separator: ","))", "channels": "\(channels.count)",
        ])
        for note in notes { logger.warning("\(note)") }
        return report
    }

    /// What waits for a channel a reload removed: it stays in the store, untouched.
    func waitingNote(removed name: String) async -> String {
        let cap = 1000
        var waiting = 0
        for state in [DeliveryState.queued, .retrying] {
            waiting += (try? await store.deliveries(DeliveryFilter(state: state, channel: name, limit: cap)).count) ?? 0
        }
        let count = waiting >= cap ? "\(cap) or more deliveries wait" : waiting == 1 ? "1 delivery waits" : "\(waiting) deliveries wait"
        return "channel \(name) removed: \(count) for it in the store (herald deliveries --channel \(name)); "
            + "they go out if it comes back, and nothing is sent for it meanwhile"
    }
}
