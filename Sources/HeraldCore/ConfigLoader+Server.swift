import Foundation

/// `server:` and its tokens.
extension LoadContext {
    func loadServer(_ node: YNode, into server: inout ServerConfig) {
        guard let m = MapReader(self, node, "server") else { return }
        m.checkKeys(["listen", "public_listen", "max_body_bytes", "drain_timeout", "tokens", "status_title", "failed_auth", "tls", "log_format"])
        if case let (v, p)? = m.entry("log_format"), let s = get({ try reader.string(v, p) }) {
            if let format = LogFormat(rawValue: s) { server.logFormat = format } else { report(v, p, "expected text or json") }
        }
        if case let (v, p)? = m.entry("tls") { server.tls = loadListenerTLS(v, path: p) }
        if case let (v, p)? = m.entry("failed_auth"), let f = MapReader(self, v, p) {
            f.checkKeys(["burst", "per_second"])
            if case let (bv, bp)? = f.entry("burst"), let n = get({ try reader.int(bv, bp) }) {
                if (1...1_000_000).contains(n) { server.failedAuthBurst = n } else { report(bv, bp, "must be from 1 to 1000000") }
            }
            if case let (rv, rp)? = f.entry("per_second"), let d = get({ try reader.number(rv, rp) }) {
                if d > 0 && d <= 1_000_000 { server.failedAuthPerSecond = d } else { report(rv, rp, "must be greater than 0 and at most 1000000") }
            }
        }
        if case let (v, p)? = m.entry("status_title"), let s = get({ try reader.string(v, p) }) {
            if s.isEmpty { report(v, p, "must not be empty") } else { server.statusTitle = s }
        }
        if case let (v, p)? = m.entry("listen"), let s = get({ try reader.string(v, p) }) {
            if let hostPort = HostPort(parsing: s) {
                server.listen = hostPort
            } else {
                report(v, p, "expected HOST:PORT, like 127.0.0.1:8080")
            }
        }
        if case let (v, p)? = m.entry("public_listen"), let s = get({ try reader.string(v, p) }) {
            if let hostPort = HostPort(parsing: s) {
                if hostPort == server.listen && hostPort.port != 0 {
                    report(v, p, "must differ from server.listen")
                } else {
                    server.publicListen = hostPort
                }
            } else {
                report(v, p, "expected HOST:PORT, like 0.0.0.0:8081")
            }
        }
        if case let (v, p)? = m.entry("max_body_bytes"), let n = get({ try reader.int(v, p) }) {
            if n > 0 { server.maxBodyBytes = n } else { report(v, p, "must be greater than 0") }
        }
        if case let (v, p)? = m.entry("drain_timeout"), let d = get({ try reader.duration(v, p) }) {
            server.drainTimeout = d
        }
        if case let (v, p)? = m.entry("tokens") { server.tokens = loadTokens(v, path: p) }
    }

    func loadTokens(_ node: YNode, path: String) -> [TokenConfig] {
        guard case .sequence(let items) = node.kind else {
            report(node, path, "expected a list of tokens")
            return []
        }
        var tokens: [TokenConfig] = []
        var names: Set<String> = []
        var valueOwners: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let p = "\(path)[\(index)]"
            guard let m = MapReader(self, item, p) else { continue }
            m.checkKeys(["name", "token", "token_file", "scopes"])

            var name: String?
            if case let (v, np)? = m.entry("name") {
                if let s = get({ try reader.string(v, np) }) {
                    if s.isEmpty {
                        report(v, np, "must not be empty")
                    } else if s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                        report(v, np, "must not contain control characters")
                    } else if !names.insert(s).inserted {
                        report(v, np, "duplicate token name \"\(s)\"")
                    } else {
                        name = s
                    }
                }
            } else {
                m.missing("name")
            }

            var token: (value: String, node: YNode, path: String)?
            let direct = m.entry("token"), fromFile = m.entry("token_file")
            if direct != nil, fromFile != nil, let pair = m.pair("token_file") {
                report(pair.line, pair.column, m.keyPath("token_file"), "give either token or token_file, not both")
            } else if case let (v, tp)? = direct {
                if let s = get({ try reader.string(v, tp) }) {
                    if s.isEmpty { report(v, tp, "must not be empty") } else { token = (s, v, tp) }
                }
            } else if case let (v, tp)? = fromFile {
                if let filePath = get({ try reader.string(v, tp) }) {
                    switch readSecretFile(filePath, relativeTo: directory) {
                    case .success(let s): token = (s, v, tp)
                    case .failure(let failure): report(v, tp, "cannot read \(filePath): \(failure.text)")
                    }
                }
            } else {
                m.missing("token", message: "missing required key (give token or token_file)")
            }

            var scopes: Set<TokenScope>?
            if case let (v, sp)? = m.entry("scopes") {
                if let list = get({ try reader.listItems(v, sp) }) {
                    if list.isEmpty { report(v, sp, "must list at least one scope (ingest, admin)") }
                    var parsed: Set<TokenScope> = []
                    var ok = !list.isEmpty
                    for item in list {
                        if let scope = TokenScope(rawValue: item.value) {
                            parsed.insert(scope)
                        } else {
                            ok = false
                            report(item.node, item.path, "unknown scope \"\(item.value)\"; expected ingest or admin")
                        }
                    }
                    if ok { scopes = parsed }
                }
            } else {
                m.missing("scopes")
            }

            if let t = token, t.value.count < ServerConfig.minimumTokenLength {
                // The length only, never the value.
                report(t.node, t.path, "is \(t.value.count) characters; a token must be at least \(ServerConfig.minimumTokenLength) "
                       + "(generate one with: openssl rand -base64 32)")
                token = nil
            }
            if let token, let name {
                if let other = valueOwners[token.value] {
                    report(token.node, token.path, "token \"\(name)\" has the same value as token \"\(other)\"")
                } else {
                    valueOwners[token.value] = name
                }
            }
            if let name, let token, let scopes {
                tokens.append(TokenConfig(name: name, token: Secret(token.value), scopes: scopes))
            }
        }
        return tokens
    }
}
