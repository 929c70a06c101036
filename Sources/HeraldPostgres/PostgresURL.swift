import Foundation
import HeraldStore
import PostgresNIO

/// A parsed `postgres://user:password@host:port/database?sslmode=…` URL (libpq's form).
///
/// Parameters: `sslmode` (`disable`, `prefer` — the default, as libpq's: encrypted if the server
/// offers it, never verified —, `require`, `verify-ca`, `verify-full`: use this one),
/// `sslrootcert` (a PEM file of the CA certificates to verify the server with, e.g. a private CA;
/// `system` or absent: the system's), `sslcert` + `sslkey` (a client certificate and its key, PEM,
/// for servers that authenticate by certificate), `connect_timeout` (seconds, default 5, at most
/// 3600), `host` (a directory holding the server's Unix socket, instead of TCP), `pool_max`
/// (connections per node, default 10), `application_name` (default `herald`).
struct PostgresURL: Sendable {
    enum SSLMode: String, Sendable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    var host: String
    var port: Int
    var socketDirectory: String?
    var user: String
    var password: String?
    var database: String
    var sslMode: SSLMode = .prefer
    var connectTimeout: Duration = .seconds(5)
    var poolSize = 10
    var applicationName = "herald"
    /// PEM files: the CAs to verify the server with (nil: the system's), and a client certificate and key.
    var rootCertificates: String?
    var clientCertificate: String?
    var clientKey: String?

    init(_ url: String) throws {
        let scheme = url.prefix { $0 != ":" }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError.cannotOpen("a PostgreSQL store URL starts with postgres:// (got \(Self.schemeOnly(url)))")
        }
        guard let parts = URLComponents(string: url) else {
            throw StoreError.cannotOpen("\(scheme)://…: not a valid URL")
        }
        password = parts.percentEncodedPassword.map { $0.removingPercentEncoding ?? $0 }
        user = parts.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        var host = parts.percentEncodedHost.flatMap { $0.removingPercentEncoding } ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "localhost" : host
        port = parts.port ?? 5432
        let path = parts.percentEncodedPath.drop { $0 == "/" }
        database = String(path).removingPercentEncoding ?? String(path)
        if database.isEmpty { database = user }
        for item in parts.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw StoreError.cannotOpen("sslmode must be disable, prefer, require, verify-ca or verify-full (got \(value))")
                }
                sslMode = mode
            case "connect_timeout":
                guard let seconds = Double(value), seconds > 0, seconds <= 3600 else {
                    throw StoreError.cannotOpen("connect_timeout must be a number of seconds from 0 to 3600 (got \(value))")
                }
                connectTimeout = .milliseconds(Int64(seconds * 1000))
            case "sslrootcert":
                rootCertificates = value == "system" ? nil : try Self.readable(value, "sslrootcert")
            case "sslcert":
                clientCertificate = try Self.readable(value, "sslcert")
            case "sslkey":
                clientKey = try Self.readable(value, "sslkey")
            case "host":
                if value.hasPrefix("/") { socketDirectory = value } else { self.host = value }
            case "pool_max":
                guard let n = Int(value), n >= 2 else {
                    throw StoreError.cannotOpen("pool_max must be at least 2 (got \(value))")
                }
                poolSize = n
            case "application_name":
                applicationName = value
            default:
                throw StoreError.cannotOpen("unknown PostgreSQL URL parameter \(item.name)")
            }
        }
        if host.hasPrefix("/") { socketDirectory = host }
        if (clientCertificate == nil) != (clientKey == nil) {
            throw StoreError.cannotOpen("give both sslcert and sslkey, or neither")
        }
    }

    /// The path, if the file can be read; else a clear error naming the parameter.
    private static func readable(_ path: String, _ name: String) throws -> String {
        guard !path.isEmpty, FileManager.default.isReadableFile(atPath: path) else {
            throw StoreError.cannotOpen("\(name): cannot read \(path.isEmpty ? "(empty path)" : path)")
        }
        return path
    }

    private static func schemeOnly(_ url: String) -> String {
        url.firstIndex(of: ":").map { String(url[..<$0]) + ":…" } ?? "no scheme"
    }

    /// The URL as it may be logged: the password replaced by `***`.
    var redacted: String {
        let who = password == nil ? user : "\(user):***"
        if let socketDirectory {
            return "postgres://\(who)@:\(port)/\(database)?host=\(socketDirectory)"
        }
        return "postgres://\(who)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
    }

    /// Removes the password from any text (error messages from libraries may quote input).
    func redact(_ text: String) -> String {
        guard let password, password.count >= 1 else { return text }
        var out = text.replacingOccurrences(of: password, with: "***")
        if let encoded = password.addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed), encoded != password {
            out = out.replacingOccurrences(of: encoded, with: "***")
        }
        return out
    }

    private var startupParameters: [(String, String)] {
        [
            ("application_name", applicationName),
            // A statement stuck behind a lock, or a transaction left open by a vanished client,
            // must not block the other nodes for long.
            ("statement_timeout", "30s"),
            ("lock_timeout", "10s"),
            ("idle_in_transaction_session_timeout", "60s"),
        ]
    }

    private func tlsConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .verifyFull: break
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        default: tls.certificateVerification = .none
        }
        if let rootCertificates { tls.trustRoots = .file(rootCertificates) }
        if let clientCertificate, let clientKey {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKey, format: .pem))
            } catch {
                throw StoreError.cannotOpen("sslcert/sslkey: cannot use \(clientCertificate) and \(clientKey): \(error)")
            }
        }
        return tls
    }

    func clientConfiguration() throws -> PostgresClient.Configuration {
        var config: PostgresClient.Configuration
        if let socketDirectory {
            config = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch sslMode {
            case .disable: tls = .disable
            case .allow, .prefer: tls = .prefer(try tlsConfiguration())
            case .require, .verifyCA, .verifyFull: tls = .require(try tlsConfiguration())
            }
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        config.options.connectTimeout = connectTimeout
        config.options.additionalStartupParameters = startupParameters
        return config
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if let socketDirectory {
            config = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch sslMode {
            case .disable: tls = .disable
            case .allow, .prefer: tls = .prefer(try NIOSSLContext(configuration: try tlsConfiguration()))
            case .require, .verifyCA, .verifyFull: tls = .require(try NIOSSLContext(configuration: try tlsConfiguration()))
            }
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        config.options.connectTimeout = .nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000
                                                     + connectTimeout.components.attoseconds / 1_000_000_000)
        config.options.additionalStartupParameters = startupParameters
        return config
    }
}
