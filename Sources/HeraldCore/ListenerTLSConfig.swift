/// `server.tls: {cert_file, key_file}` — serve HTTPS on `server.listen` with this certificate and
/// key (PEM). Absent: plain HTTP, for use behind a proxy that terminates TLS. The files are read
/// when the server starts and again on each reload, so a renewed certificate is served to new
/// connections without a restart. Reading and matching them needs TLS code this module does not
/// have: `HeraldServer.ListenerTLS` does it, for `herald check` as for the server.
public struct ListenerTLSConfig: Sendable, Equatable {
    /// The certificate, then any intermediates (a "fullchain" file), PEM. Relative paths in the
    /// file are resolved against the configuration file's directory.
    public var certFile: String
    /// The certificate's private key, PEM, unencrypted.
    public var keyFile: String
    /// Where each was configured, for errors about the file it names.
    public var certAt: ConfigPosition
    public var keyAt: ConfigPosition

    public init(certFile: String, keyFile: String, certAt: ConfigPosition = .init(keyPath: "server.tls.cert_file"),
                keyAt: ConfigPosition = .init(keyPath: "server.tls.key_file")) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.certAt = certAt
        self.keyAt = keyAt
    }
}

/// Where a value was configured: enough to report a problem found after loading (a file that
/// cannot be read or parsed) the way the loader reports its own.
public struct ConfigPosition: Sendable, Equatable {
    public var file: String
    public var line: Int
    public var column: Int
    public var keyPath: String

    public init(file: String = "<memory>", line: Int = 0, column: Int = 0, keyPath: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
    }

    public func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: line, column: column, keyPath: keyPath, message: message)
    }
}
