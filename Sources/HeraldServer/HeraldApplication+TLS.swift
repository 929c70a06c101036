import Foundation
import HeraldCore
import Hummingbird
import HummingbirdCore
import NIOCore

extension HeraldApplication {
    /// HTTP/1, behind TLS when `server.tls` is set.
    func serverBuilder(idleTimeout: TimeAmount) -> HTTPServerBuilder {
        let http1 = HTTP1Channel.Configuration(idleTimeout: idleTimeout)
        guard let tls = listenerTLS else { return .http1(configuration: http1) }
        return HTTPServerBuilder { responder in
            ReloadableTLSChannel(base: HTTP1Channel(responder: responder, configuration: http1), tls: tls)
        }
    }

    /// Serves the certificate and key in these files to every connection accepted from now on
    /// (connections already open keep theirs). On any problem — a file that cannot be read, no
    /// PEM certificate or key in it, a key that is not the certificate's — nothing changes and
    /// `ConfigErrors` says which file and why. Throws when the server was started without
    /// `server.tls`: a plain listener cannot become a TLS one without a restart.
    public func reloadTLS(certFile: String, keyFile: String) throws {
        var files = ListenerTLSConfig(certFile: certFile, keyFile: keyFile)
        if let current = listenerTLS?.config {
            files.certAt = current.certAt
            files.keyAt = current.keyAt
        }
        try reloadTLS(files)
    }

    /// The reload of `server.tls` as a re-read configuration has it: the same files read again
    /// (a renewed certificate) or other files, located for errors at their keys in the new file.
    /// Turning TLS on or off changes what the port speaks, which needs a restart: that throws
    /// and changes nothing.
    public func reloadTLS(_ tls: ListenerTLSConfig?) throws {
        switch (listenerTLS, tls) {
        case (nil, nil):
            return
        case (let listener?, let tls?):
            try listener.reload(tls)
            logger.info("TLS certificate reloaded from \(tls.certFile), valid until \(RFC3339.format(listener.notValidAfter))")
        case (nil, let tls?):
            throw ConfigErrors(errors: [tls.certAt.error("the server was started without TLS: turning it on needs a restart")])
        case (.some, nil):
            throw ConfigErrors(errors: [ConfigError(file: config.file, line: 0, column: 0, keyPath: "server.tls",
                                                    message: "the server was started with TLS: turning it off needs a restart")])
        }
    }
}
