import Foundation
import HeraldCore
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP listeners: `server.listen` (everything) and `server.public_listen` (the public pages
/// only). The public one's connections live on an event loop of their own, so a crowd reloading
/// `/status` during an outage takes turns only with itself: the API's requests — the resolve that
/// sends the all-clear among them — are read on other loops and never wait behind the crowd.
extension HeraldApplication {
    /// What the public listener serves: the status documents, the subscription pages and
    /// `/healthz` (for a load balancer's check). Nothing that takes a token.
    func buildPublicRouter() -> Router<HeraldRequestContext> {
        let router = Router(context: HeraldRequestContext.self)
        router.add(middleware: JSONErrorMiddleware(allowedMethods: { Self.allowedMethods(path: $0, among: Self.publicRouteMethods) }))
        addStatusRoutes(to: router)
        addSubscribeRoutes(to: router)
        addHealthRoute(to: router)
        return router
    }

    /// The application of `server.public_listen` on `listen`, its connections on `group`.
    func publicApplication(_ listen: HostPort, on group: any EventLoopGroup, listeners: Int, scheme: String) -> some Service {
        listener(buildPublicRouter(), on: listen, key: "server.public_listen", group: group) { [self] port in
            publicBoundPort.store(port, ordering: .relaxed)
            logger.info("public pages on \(scheme)://\(HostPort(host: listen.host, port: port))")
            listenerRunning(of: listeners)
        }
    }

    /// An HTTP listener on `listen` (the value of `key`) serving `router`; `running` gets the port
    /// it bound. Its failure (the port taken) names the listener.
    func listener(_ router: Router<HeraldRequestContext>, on listen: HostPort, key: String, group: (any EventLoopGroup)? = nil,
                  running: @escaping @Sendable (Int) async -> Void) -> some Service {
        NamedListener(key: key, address: listen, base: Application(
            router: router,
            server: serverBuilder(idleTimeout: .seconds(60)),
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "herald"),
            onServerRunning: { channel in await running(channel.localAddress?.port ?? listen.port) },
            eventLoopGroupProvider: group.map { .shared($0) } ?? .singleton,
            logger: logger
        ))
    }

    /// Herald is ready once every listener accepts connections.
    func listenerRunning(of listeners: Int) {
        if listenersRunning.add(1, ordering: .relaxed).newValue == listeners {
            ready.store(true, ordering: .relaxed)
        }
    }
}

/// A listener that failed (its port taken, an address it may not bind): which one, and why.
public struct ListenerError: Error, CustomStringConvertible {
    /// `server.listen` or `server.public_listen`.
    public var key: String
    public var address: HostPort
    public var underlying: any Error
    public var description: String { "cannot listen on \(address) (\(key)): \(underlying)" }
}

/// A listener's service whose failure says which listener it was.
struct NamedListener<Base: Service>: Service {
    let key: String
    let address: HostPort
    let base: Base

    func run() async throws {
        do {
            try await base.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ListenerError(key: key, address: address, underlying: error)
        }
    }
}
