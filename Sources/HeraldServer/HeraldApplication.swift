import Foundation
import HeraldChannels
import HeraldCore
import HeraldDispatcher
import HeraldPostgres
import HeraldSQLite
import HeraldStore
import HeraldTransport
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The composition root: builds Herald from its configuration — store, transport, channels,
/// dispatcher, HTTP routes — and runs it until SIGTERM/SIGINT. Tests build it the same way and
/// may swap the console sink.
public final class HeraldApplication: Sendable {
    public let store: any Store
    public let transport: CurlTransport
    public let dispatcher: Dispatcher
    /// Commits groups of events (one request's, or one monitoring call's alerts) together with
    /// whatever other groups arrived meanwhile; a group is never split across transactions.
    let ingest: GroupCommitter<[EnqueueRequest], [EnqueueResult]>
    let logger: Logger
    let console: @Sendable (String) -> Void

    /// What a reload replaces as a whole: the configuration and everything built from it that
    /// requests read. A request sees one consistent state, the old or the new.
    struct Live: Sendable {
        var config: HeraldConfig
        var channels: [String: any HeraldChannels.Channel]
        /// The routes and the recipients of each channel, as the lifecycle planner routes events.
        var routing: Routing
        var auth: Authenticator
        var redactor: Redactor
        /// What the public status documents show of the configuration.
        var status: StatusSettings
    }
    let live: Mutex<Live>
    /// A reload is running.
    let reloading = Mutex(false)
    let commandLineOverrides = Mutex<(@Sendable (inout HeraldConfig) -> Void)?>(nil)
    /// The last operator notice about a channel's health being committed: each waits for the one
    /// before, so a recovery never commits ahead of its pause.
    let announcing = Mutex<Task<Void, Never>?>(nil)

    public var config: HeraldConfig { live.withLock { $0.config } }
    public var channels: [String: any HeraldChannels.Channel] { live.withLock { $0.channels } }
    var routing: Routing { live.withLock { $0.routing } }
    var auth: Authenticator { live.withLock { $0.auth } }
    var redactor: Redactor { live.withLock { $0.redactor } }
    let ready = Atomic<Bool>(false)
    /// `server.tls`: the listener's certificate, swapped by `reloadTLS`; nil serves plain HTTP.
    public let listenerTLS: ListenerTLS?
    let boundPort = Atomic<Int>(0)
    /// `server.public_listen`'s port once it listens; 0 without one.
    let publicBoundPort = Atomic<Int>(0)
    /// Listeners accepting connections: Herald is ready when all are.
    let listenersRunning = Atomic<Int>(0)
    /// The public status documents as last rendered.
    let statusCache: StatusCache
    /// Posts the steps of scheduled maintenance.
    let maintenance: MaintenanceScheduler
    /// Plans public events' deliveries to the subscribers.
    let fanOut: SubscriberFanOut
    /// Sign-ups per client address and in total.
    let signUpThrottle: SignUpThrottle
    /// The status page's logo as last read, by path: read once, not per request (a reload naming
    /// another file reads that one).
    let logoCache = Mutex<(path: String, body: ByteBuffer)?>(nil)

    /// Opens the SQLite store at `store.path` and builds every channel. Throws `ConfigErrors` for
    /// channel configuration problems and `StoreError` when the store cannot be opened.
    public convenience init(config: HeraldConfig, logger: Logger,
                            console: @escaping @Sendable (String) -> Void = ConsoleChannel.standardOutput) throws {
        try self.init(config: config, store: SQLiteStore(path: config.store.path), logger: logger, console: console)
    }

    /// Opens the store the configuration names: PostgreSQL for `store.url`, else SQLite at
    /// `store.path`. A PostgreSQL database without Herald's schema is refused unless `migrate`.
    public static func openStore(_ config: StoreConfig, migrate: Bool, logger: Logger) async throws -> any Store {
        if let url = config.url {
            return try await PostgresStore.open(url: url.value, migrate: migrate, logger: logger)
        }
        return try SQLiteStore(path: config.path)
    }

    /// Builds Herald on an open store.
    public init(config: HeraldConfig, store: any Store, logger: Logger,
                console: @escaping @Sendable (String) -> Void = ConsoleChannel.standardOutput) throws {
        // Before anything creates a metric: swift-metrics binds each one to the factory at creation.
        HeraldMetrics.bootstrap()
        self.logger = logger
        self.console = console
        // Each channel's concurrency caps its transfers; a cap of the transport's own would hold
        // transfers to a host that several channels share, their timeouts running, so that an
        // attempt could time out without having been sent.
        transport = CurlTransport(maxConnectionsPerHost: 0, maxTotalConnections: 0)
        self.store = store
        // Another node of a cluster publishes too: its posts show within a second.
        let statusCache = StatusCache(ttl: store.isShared ? .seconds(1) : .seconds(5))
        self.statusCache = statusCache
        maintenance = MaintenanceScheduler(store: store, logger: logger)
        fanOut = SubscriberFanOut(store: store, logger: logger)
        signUpThrottle = SignUpThrottle()
        let channels = try ChannelRegistry.build(config, transport: transport, console: console,
                                                 statusBoard: StoreStatusBoard(store: store, cache: statusCache),
                                                 subscribers: StoreSubscriberDirectory(store: store))
        // After the channel factories ran: they record which of their settings are secrets.
        let redactor = Redactor(secrets: config.secrets)
        let renderer = try MessageRenderer(templates: config.templates)
        var options = Dispatcher.Options()
        options.drainTimeout = config.server.drainTimeout
        options.leaseMargin = config.store.leaseMargin
        if store.isShared {
            // Other nodes' claims are live: only expired leases come back, and a missed wake-up
            // (a notification lost while the database connection was being re-made) costs at
            // most one sweep.
            options.recoverAllOnStart = false
            options.leaseSweepInterval = .seconds(5)
        }
        dispatcher = Dispatcher(store: store, channels: channels, configs: config.channels, renderer: renderer,
                                redactor: redactor, options: options, logger: logger)
        dispatcher.setQuietHours(config.quietHours)

        ingest = GroupCommitter(maxBatch: 500, isolating: { ($0 as? StoreError)?.isRejected == true }) { groups in
            let results = try await store.enqueue(groups.flatMap { $0 }, now: Date())
            var rest = results[...]
            return groups.map { group in
                defer { rest = rest.dropFirst(group.count) }
                return Array(rest.prefix(group.count))
            }
        }
        listenerTLS = try config.server.tls.map(ListenerTLS.init)
        let auth = Authenticator(tokens: config.server.tokens,
                                 throttle: AuthThrottle(burst: config.server.failedAuthBurst, perSecond: config.server.failedAuthPerSecond))
        live = Mutex(Live(config: config, channels: channels, routing: Self.routing(config, channels), auth: auth, redactor: redactor,
                          status: StatusSettings(config)))
        dispatcher.health.onChange { [weak self] change in
            guard let self else { return }
            announcing.withLock { last in
                let before = last
                last = Task {
                    await before?.value
                    await self.announce(change)
                }
            }
        }
    }

    /// The routes and, for channels with several recipients, who they are.
    static func routing(_ config: HeraldConfig, _ channels: [String: any HeraldChannels.Channel]) -> Routing {
        Routing(routes: config.routes, recipients: channels.compactMapValues { $0.recipients.isEmpty ? nil : $0.recipients },
                subscriberChannel: config.channels.first { $0.type == "subscribers" }?.name,
                statusChannels: Set(config.channels.filter { $0.type == "statuspage" }.map(\.name)))
    }

    /// The port the server listens on, once it does (useful with `listen: 127.0.0.1:0`).
    public var port: Int { boundPort.load(ordering: .relaxed) }

    /// The public listener's port, once it listens; 0 without `server.public_listen`.
    public var publicPort: Int { publicBoundPort.load(ordering: .relaxed) }

    public var isReady: Bool { ready.load(ordering: .relaxed) }

    func buildRouter() -> Router<HeraldRequestContext> {
        let router = Router(context: HeraldRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        addIngestRoutes(to: router)
        addHookRoutes(to: router)
        addStatusRoutes(to: router)
        addSubscribeRoutes(to: router)
        addSubscriberRoutes(to: router)
        addAdminRoutes(to: router)
        addSilenceRoutes(to: router)
        addMaintenanceRoutes(to: router)
        addOpsRoutes(to: router)
        addOpenAPIRoutes(to: router)
        addBackupRoutes(to: router)
        addChannelRoutes(to: router)
        addConsoleRoutes(to: router)
        return router
    }

    /// Runs until SIGTERM/SIGINT (or cancellation): stops accepting, lets attempts in flight
    /// finish within `server.drain_timeout`, releases the rest to the store.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let listen = config.server.listen
        let scheme = listenerTLS == nil ? "http" : "https"
        let publicListen = config.server.publicListen
        let listeners = publicListen == nil ? 1 : 2
        let app = listener(buildRouter(), on: listen, key: "server.listen") { [self] port in
            boundPort.store(port, ordering: .relaxed)
            listenerRunning(of: listeners)
            logger.info("listening on \(scheme)://\(HostPort(host: listen.host, port: port))")
            await onListening(port)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: dispatcher),
            .init(service: RetentionService(store: store, retention: { [self] in config.retention }, logger: logger)),
            .init(service: MaintenanceService(scheduler: maintenance, post: { [self] event, key in
                _ = try await commit([event], idempotency: key)
            }, published: { [statusCache] in statusCache.invalidate() })),
            .init(service: SubscriberFanOutService(fanOut: fanOut, channel: { [self] in routing.subscriberChannel },
                                                   wake: { [dispatcher] in dispatcher.wake(channels: [$0]) })),
        ]
        // One thread: a crowd on the public pages gets at most one core's worth of turns.
        let publicGroup = publicListen.map { _ in MultiThreadedEventLoopGroup(numberOfThreads: 1) }
        if let publicListen, let publicGroup {
            services.append(.init(service: publicApplication(publicListen, on: publicGroup, listeners: listeners, scheme: scheme)))
        }
        services.append(.init(service: app))
        // Shut down in reverse order: first stop accepting, then drain the dispatcher.
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        defer {
            ready.store(false, ordering: .relaxed)
            transport.shutdown()
            publicGroup?.shutdownGracefully { _ in }
        }
        try await group.run()
    }
}
