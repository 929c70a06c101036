import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's core storage, and the address the
/// connection came from (failed authentication is throttled per address).
public struct HeraldRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address as text (`?` when unknown, e.g. a Unix socket).
    var client: String { remoteAddress?.ipAddress ?? "?" }
}
