import Foundation
import HeraldCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The listener's certificate and key (`server.tls`), swappable while serving. Each accepted
/// connection takes the context that is current at that moment, so after `reload` every new
/// connection is served the new certificate while connections already open keep the one they
/// shook hands with. Hummingbird's own `TLSChannel` fixes one context for the server's lifetime,
/// which is why Herald wraps the HTTP/1 channel itself (`ReloadableTLSChannel`).
public final class ListenerTLS: Sendable {
    private let current: Mutex<(context: NIOSSLContext, config: ListenerTLSConfig, notValidAfter: Date)>

    /// Reads and checks the files; throws `ConfigErrors` located at the key naming the bad file.
    public init(_ config: ListenerTLSConfig) throws {
        let (context, notValidAfter) = try Self.makeContext(config)
        current = Mutex((context, config, notValidAfter))
    }

    /// The context a connection accepted now should use.
    var context: NIOSSLContext { current.withLock { $0.context } }

    /// The files in use.
    public var config: ListenerTLSConfig { current.withLock { $0.config } }

    /// When the certificate being served expires.
    public var notValidAfter: Date { current.withLock { $0.notValidAfter } }

    /// Reads `config`'s files again (a renewed certificate, or other files) and serves them to
    /// every connection accepted from now on. On any problem nothing changes and the error says
    /// which file and why (`ConfigErrors`, as `herald check` prints them). Reads files and builds
    /// a TLS context: call it off the event loops (a reload task is fine).
    public func reload(_ config: ListenerTLSConfig) throws {
        let (context, notValidAfter) = try Self.makeContext(config)
        current.withLock { $0 = (context, config, notValidAfter) }
    }

    /// The problems `herald check` reports for `server.tls`: files that cannot be read, that
    /// hold no PEM certificate or key, or a key that is not the certificate's.
    public static func validate(_ config: HeraldConfig) -> [ConfigError] {
        guard let tls = config.server.tls else { return [] }
        do {
            _ = try makeContext(tls)
            return []
        } catch let errors as ConfigErrors {
            return errors.errors
        } catch {
            return [tls.certAt.error("\(error)")]
        }
    }

    /// A server context for the certificate chain and key in `config`'s files, TLS 1.2 or newer,
    /// and the certificate's expiry.
    static func makeContext(_ config: ListenerTLSConfig) throws -> (NIOSSLContext, Date) {
        if let problem = unreadable(config.certFile) {
            throw ConfigErrors(errors: [config.certAt.error("cannot read \(config.certFile): \(problem)")])
        }
        if let problem = unreadable(config.keyFile) {
            throw ConfigErrors(errors: [config.keyAt.error("cannot read \(config.keyFile): \(problem)")])
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(config.certFile)
        } catch {
            chain = []
        }
        guard let leaf = chain.first else {
            throw ConfigErrors(errors: [config.certAt.error("\(config.certFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")])
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: config.keyFile, format: .pem)
        } catch {
            // Never the file's contents: it is a key.
            throw ConfigErrors(errors: [config.keyAt.error("\(config.keyFile) holds no unencrypted PEM private key")])
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        do {
            let context = try NIOSSLContext(configuration: tls)
            return (context, Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter)))
        } catch {
            // Both files parsed, so what BoringSSL refuses here is the pair: it compares the key
            // with the certificate's public key as it loads them (X509_R_KEY_VALUES_MISMATCH).
            throw ConfigErrors(errors: [config.keyAt.error("the key in \(config.keyFile) does not match the certificate in \(config.certFile)")])
        }
    }

    private static func unreadable(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file" }
        if isDirectory.boolValue { return "is a directory" }
        guard FileManager.default.isReadableFile(atPath: path) else { return "permission denied" }
        return nil
    }
}

/// Hummingbird's HTTP/1 channel behind a TLS handler whose context is read from `tls` when each
/// connection is accepted (Hummingbird's `TLSChannel` fixes one for the server's lifetime).
struct ReloadableTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let tls: ListenerTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = tls.context
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
