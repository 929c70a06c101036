import Foundation

extension LoadContext {
    /// `server.tls: {cert_file, key_file}`: both required. Only the keys are read here; whether
    /// the files hold a certificate and its key is checked by the server module (`herald check`
    /// reports it at these positions).
    func loadListenerTLS(_ node: YNode, path: String) -> ListenerTLSConfig? {
        guard let m = MapReader(self, node, path) else { return nil }
        m.checkKeys(["cert_file", "key_file"])
        func file(_ key: String) -> (String, ConfigPosition)? {
            guard case let (v, p)? = m.entry(key) else {
                m.missing(key)
                return nil
            }
            guard let s = get({ try reader.string(v, p) }) else { return nil }
            if s.isEmpty {
                report(v, p, "must not be empty")
                return nil
            }
            let resolved = s.hasPrefix("/") || directory.isEmpty ? s : (directory as NSString).appendingPathComponent(s)
            return (resolved, ConfigPosition(file: self.file, line: v.line, column: v.column, keyPath: p))
        }
        let cert = file("cert_file")
        let key = file("key_file")
        guard let cert, let key else { return nil }
        return ListenerTLSConfig(certFile: cert.0, keyFile: key.0, certAt: cert.1, keyAt: key.1)
    }
}
