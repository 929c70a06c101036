import Foundation
import Yams

/// Reads the YAML configuration file into a validated `HeraldConfig`, reporting every problem at once.
public enum ConfigLoader {
    /// Reads and validates the file. Throws `ConfigErrors` listing every problem found.
    /// `environment` replaces `${VAR}`; defaults to `ProcessInfo.processInfo.environment`.
    /// `validate` adds checks this module cannot make (channel types and their keys, done by the
    /// channel registry) so that every problem is reported in one run.
    public static func load(file: String, environment: [String: String]? = nil,
                            validate: ((HeraldConfig) -> [ConfigError])? = nil) throws -> HeraldConfig {
        let text: String
        switch readTextFile(file) {
        case .success(let contents): text = contents
        case .failure(let reason):
            throw ConfigErrors(errors: [ConfigError(file: file, line: 0, column: 0, keyPath: "", message: "cannot read: \(reason.text)")])
        }
        return try load(yaml: text, file: file, environment: environment, validate: validate)
    }

    public static func load(yaml: String, file: String, environment: [String: String]? = nil,
                            validate: ((HeraldConfig) -> [ConfigError])? = nil) throws -> HeraldConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigErrors(errors: [yamlError(error, file: file)])
        }
        var config = HeraldConfig(file: file)
        guard let root else { return config }
        let context = LoadContext(file: file, environment: environment ?? ProcessInfo.processInfo.environment)
        let tree = context.substitute(YNode(root), path: "")
        context.loadRoot(tree, into: &config)
        var errors = context.errors
        if let validate { errors += validate(config) }
        if !errors.isEmpty {
            throw ConfigErrors(errors: errors.inFileOrder())
        }
        return config
    }

    static func yamlError(_ error: any Error, file: String) -> ConfigError {
        func make(_ mark: Mark?, _ message: String) -> ConfigError {
            ConfigError(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, keyPath: "", message: message)
        }
        func make(line: Int, column: Int, _ message: String) -> ConfigError {
            ConfigError(file: file, line: line, column: column, keyPath: "", message: message)
        }
        guard let error = error as? YamlError else { return make(nil, "invalid YAML") }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "invalid YAML: \(problem)"
            if let context, !context.text.isEmpty { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            return make(mark, message)
        case let .reader(problem, offset, _, yaml):
            guard let offset else { return make(nil, "invalid YAML: \(problem)") }
            let lines = yaml.utf8.prefix(offset).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            return make(line: lines.count, column: (lines.last?.count ?? 0) + 1, "invalid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            return make(context.mark, "invalid YAML: duplicate key \(keys)")
        case .dataCouldNotBeDecoded:
            return make(nil, "invalid YAML: not valid UTF-8")
        default:
            return make(nil, "invalid YAML")
        }
    }
}

// MARK: - Document tree

/// A Sendable copy of the YAML node tree, with positions, after `${VAR}` substitution.
struct YNode: Sendable {
    enum Kind: Sendable {
        case null
        case scalar(String)
        case mapping([YPair])
        case sequence([YNode])
    }

    var kind: Kind
    var line: Int
    var column: Int

    init(kind: Kind, line: Int, column: Int) {
        self.kind = kind
        self.line = line
        self.column = column
    }

    init(_ node: Node) {
        line = node.mark?.line ?? 0
        column = node.mark?.column ?? 0
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                kind = .null
            } else {
                kind = .scalar(scalar.string)
            }
        case .mapping(let mapping):
            kind = .mapping(mapping.map { pair in
                YPair(key: pair.key.string ?? "\(pair.key)", line: pair.key.mark?.line ?? 0,
                      column: pair.key.mark?.column ?? 0, value: YNode(pair.value))
            })
        case .sequence(let sequence):
            kind = .sequence(sequence.map(YNode.init))
        case .alias:
            kind = .null
        }
    }

    var isNull: Bool {
        if case .null = kind { return true }
        return false
    }
}

/// One `key: value` of a mapping; the position is the key's.
struct YPair: Sendable {
    var key: String
    var line: Int
    var column: Int
    var value: YNode
}

func joinPath(_ path: String, _ key: String) -> String {
    path.isEmpty ? key : "\(path).\(key)"
}

/// Typed reads of single nodes, throwing `ConfigError` at the node's position. Messages never
/// quote the value (it may be a secret).
struct NodeReader {
    let file: String

    func error(_ node: YNode, _ path: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node.line, column: node.column, keyPath: path, message: message)
    }

    func string(_ node: YNode, _ path: String) throws -> String {
        guard case .scalar(let s) = node.kind else { throw error(node, path, "expected a string") }
        return s
    }

    func int(_ node: YNode, _ path: String) throws -> Int {
        guard case .scalar(let s) = node.kind, let i = Int(s.trimmingCharacters(in: .whitespaces)) else {
            throw error(node, path, "expected an integer")
        }
        return i
    }

    func number(_ node: YNode, _ path: String) throws -> Double {
        guard case .scalar(let s) = node.kind, let d = Double(s.trimmingCharacters(in: .whitespaces)), d.isFinite else {
            throw error(node, path, "expected a number")
        }
        return d
    }

    func bool(_ node: YNode, _ path: String) throws -> Bool {
        if case .scalar(let s) = node.kind {
            switch s.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        throw error(node, path, "expected true or false")
    }

    func duration(_ node: YNode, _ path: String) throws -> Duration {
        guard case .scalar(let s) = node.kind, let d = Duration(parsing: s) else {
            throw error(node, path, "expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)")
        }
        return d
    }

    /// The items of a sequence of scalars (a single scalar counts as a one-item list), each with
    /// its node and key path.
    func listItems(_ node: YNode, _ path: String) throws -> [(value: String, node: YNode, path: String)] {
        switch node.kind {
        case .scalar(let s):
            return [(s, node, path)]
        case .sequence(let items):
            return try items.enumerated().map { index, item in
                let itemPath = "\(path)[\(index)]"
                return (try string(item, itemPath), item, itemPath)
            }
        default:
            throw error(node, path, "expected a list of strings")
        }
    }

    func stringList(_ node: YNode, _ path: String) throws -> [String] {
        try listItems(node, path).map(\.value)
    }

    func stringMap(_ node: YNode, _ path: String) throws -> [String: String] {
        guard case .mapping(let pairs) = node.kind else { throw error(node, path, "expected a mapping of strings") }
        var out: [String: String] = [:]
        for pair in pairs {
            out[pair.key] = try string(pair.value, joinPath(path, pair.key))
        }
        return out
    }
}

// MARK: - Files

struct FileReadFailure: Error {
    var text: String
}

/// The contents of a text file, or why it cannot be read (without its contents).
func readTextFile(_ path: String) -> Result<String, FileReadFailure> {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        return .failure(.init(text: "no such file"))
    }
    if isDirectory.boolValue { return .failure(.init(text: "is a directory")) }
    guard FileManager.default.isReadableFile(atPath: path) else { return .failure(.init(text: "permission denied")) }
    guard let data = FileManager.default.contents(atPath: path) else { return .failure(.init(text: "read failed")) }
    guard let text = String(data: data, encoding: .utf8) else { return .failure(.init(text: "not valid UTF-8")) }
    return .success(text)
}

/// A secret kept in a file: the trimmed contents. Relative paths are resolved against `directory`.
func readSecretFile(_ path: String, relativeTo directory: String) -> Result<String, FileReadFailure> {
    let resolved = path.hasPrefix("/") || directory.isEmpty ? path : (directory as NSString).appendingPathComponent(path)
    switch readTextFile(resolved) {
    case .failure(let failure): return .failure(failure)
    case .success(let text):
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return .failure(.init(text: "file is empty")) }
        return .success(trimmed)
    }
}

func directoryOf(_ file: String) -> String {
    guard file.contains("/") else { return "" }
    return (file as NSString).deletingLastPathComponent
}

// MARK: - Environment substitution

/// Replaces `${VAR}`, `${VAR:-default}` and `$$` in `text`. Returns the problem instead when a
/// variable without default is unset or a reference is malformed.
func substituteEnvironment(_ text: String, _ environment: [String: String]) -> Result<String, FileReadFailure> {
    guard text.contains("$") else { return .success(text) }
    var out = ""
    var i = text.startIndex
    while i < text.endIndex {
        let ch = text[i]
        guard ch == "$" else {
            out.append(ch)
            i = text.index(after: i)
            continue
        }
        let next = text.index(after: i)
        if next < text.endIndex, text[next] == "$" {
            out.append("$")
            i = text.index(after: next)
        } else if next < text.endIndex, text[next] == "{" {
            let start = text.index(after: next)
            guard let close = text[start...].firstIndex(of: "}") else {
                return .failure(.init(text: "unterminated ${ in value"))
            }
            let body = text[start..<close]
            var name = Substring(body)
            var fallback: Substring?
            if let sep = body.range(of: ":-") {
                name = body[..<sep.lowerBound]
                fallback = body[sep.upperBound...]
            }
            guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                  name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
                return .failure(.init(text: "invalid environment variable reference (use ${NAME} or ${NAME:-default})"))
            }
            let value = environment[String(name)]
            if let fallback {
                out += (value?.isEmpty ?? true) ? String(fallback) : value!
            } else if let value {
                out += value
            } else {
                return .failure(.init(text: "environment variable \(name) is not set"))
            }
            i = text.index(after: close)
        } else {
            out.append("$")
            i = next
        }
    }
    return .success(out)
}

// MARK: - Loading

final class LoadContext {
    let file: String
    let environment: [String: String]
    let directory: String
    let reader: NodeReader
    var errors: [ConfigError] = []
    /// Channels' own `templates:`, by channel, applied over the global ones once those are read.
    var channelTemplates: [String: [String: String]] = [:]

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
        self.directory = directoryOf(file)
        self.reader = NodeReader(file: file)
    }

    /// Positions of values whose substitution failed: later complaints about them would only
    /// be consequences of that error.
    var poisoned: Set<[Int]> = []

    func add(_ error: ConfigError) {
        guard !poisoned.contains([error.line, error.column]) else { return }
        errors.append(error)
    }

    func report(_ line: Int, _ column: Int, _ path: String, _ message: String) {
        add(ConfigError(file: file, line: line, column: column, keyPath: path, message: message))
    }

    func report(_ node: YNode, _ path: String, _ message: String) {
        report(node.line, node.column, path, message)
    }

    /// Runs a typed read; records its error and returns nil when it fails.
    func get<T>(_ body: () throws -> T) -> T? {
        do {
            return try body()
        } catch let error as ConfigError {
            add(error)
        } catch let error as ConfigErrors {
            error.errors.forEach(add)
        } catch {
            report(0, 0, "", "\(error)")
        }
        return nil
    }

    /// `${VAR}` substitution in every scalar value (not in keys).
    func substitute(_ node: YNode, path: String) -> YNode {
        var node = node
        switch node.kind {
        case .null:
            break
        case .scalar(let text):
            switch substituteEnvironment(text, environment) {
            case .success(let value): node.kind = .scalar(value)
            case .failure(let failure):
                report(node, path, failure.text)
                if node.line > 0 { poisoned.insert([node.line, node.column]) }
                node.kind = .scalar("")
            }
        case .mapping(let pairs):
            node.kind = .mapping(pairs.map { pair in
                var pair = pair
                pair.value = substitute(pair.value, path: joinPath(path, pair.key))
                return pair
            })
        case .sequence(let items):
            node.kind = .sequence(items.enumerated().map { substitute($1, path: "\(path)[\($0)]") })
        }
        return node
    }

    // MARK: Sections

    func loadRoot(_ root: YNode, into config: inout HeraldConfig) {
        guard let top = MapReader(self, root, "") else { return }
        top.checkKeys(["server", "store", "retry", "channels", "routes", "templates", "retention"])
        if let node = top.value("server") { loadServer(node, into: &config.server) }
        if let node = top.value("store") { loadStore(node, into: &config.store) }
        if let node = top.value("retention") { loadRetention(node, into: &config.retention) }
        if let node = top.value("retry") { config.retry = loadRetry(node, path: "retry", base: .default) }
        var names: Set<String> = []
        if let node = top.value("channels") { (config.channels, names) = loadChannels(node, retry: config.retry) }
        if let node = top.value("routes") { config.routes = loadRoutes(node, channels: names) }
        if let node = top.value("templates") { loadTemplates(node, into: &config.templates) }
        // A channel's own templates go over the global ones, key by key.
        for i in config.channels.indices {
            guard let overrides = channelTemplates[config.channels[i].name] else { continue }
            var templates = config.templates
            for (key, field) in MessageRenderer.Templates.keys {
                if let source = overrides[key] { templates[keyPath: field] = source }
            }
            config.channels[i].templates = templates
        }
    }

    /// `templates:` — Mustache sources for `notice_title`, `notice_text`, `update_title`,
    /// `update_text`, `all_clear_title`, `all_clear_text`, `summary_title`, `summary_text`; each
    /// is compiled here so a syntax error is reported with its location.
    func loadTemplates(_ node: YNode, into templates: inout MessageRenderer.Templates) {
        let sources = templateSources(node, path: "templates")
        for (key, field) in MessageRenderer.Templates.keys {
            if let source = sources[key] { templates[keyPath: field] = source }
        }
    }

    /// The templates a `templates:` mapping sets, by key, each compiled here so a syntax error is
    /// reported with its location (the global section, or a channel's).
    func templateSources(_ node: YNode, path: String) -> [String: String] {
        guard let m = MapReader(self, node, path) else { return [:] }
        let keys = MessageRenderer.Templates.keys
        m.checkKeys(keys.map(\.0))
        var sources: [String: String] = [:]
        for (key, field) in keys {
            guard case let (v, p)? = m.entry(key), let source = get({ try reader.string(v, p) }) else { continue }
            var candidate = MessageRenderer.Templates()
            candidate[keyPath: field] = source
            do {
                _ = try MessageRenderer(templates: candidate)
                if let unknown = TemplateNames.firstUnknown(in: source) {
                    report(v, p, "invalid template: \(unknown)")
                    continue
                }
                sources[key] = source
            } catch {
                report(v, p, "invalid template: \(error)")
            }
        }
        return sources
    }

    func loadServer(_ node: YNode, into server: inout ServerConfig) {
        guard let m = MapReader(self, node, "server") else { return }
        m.checkKeys(["listen", "max_body_bytes", "drain_timeout", "tokens", "status_title", "failed_auth", "tls", "log_format"])
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

    func loadStore(_ node: YNode, into store: inout StoreConfig) {
        guard let m = MapReader(self, node, "store") else { return }
        m.checkKeys(["path", "url", "lease_margin"])
        if case let (v, p)? = m.entry("path"), let s = get({ try reader.string(v, p) }) {
            if s.isEmpty { report(v, p, "must not be empty") } else { store.path = s }
        }
        if case let (v, p)? = m.entry("url"), let s = get({ try reader.string(v, p) }) {
            if !StoreConfig.isPostgresURL(s) {
                report(v, p, "must be a postgres:// URL (for SQLite, use store.path)")
            } else if m.entry("path") != nil {
                report(v, p, "give store.path (SQLite) or store.url (PostgreSQL), not both")
            } else {
                store.url = Secret(s)
            }
        }
        if case let (v, p)? = m.entry("lease_margin"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { store.leaseMargin = d } else { report(v, p, "must be greater than 0") }
        }
    }

    /// Reads a `retry:` mapping over `base`. Only the fields given here are checked, so a bad
    /// top-level value is not reported again for every channel.
    func loadRetry(_ node: YNode, path: String, base: RetryPolicy) -> RetryPolicy {
        guard let m = MapReader(self, node, path) else { return base }
        m.checkKeys(["initial", "max", "max_attempts", "max_age"])
        var policy = base
        var initialAt: (YNode, String)?
        var maxAt: (YNode, String)?
        if case let (v, p)? = m.entry("initial"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { policy.initial = d; initialAt = (v, p) } else { report(v, p, "must be greater than 0") }
        }
        if case let (v, p)? = m.entry("max"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { policy.max = d; maxAt = (v, p) } else { report(v, p, "must be greater than 0") }
        }
        if case let (v, p)? = m.entry("max_attempts"), let n = get({ try reader.int(v, p) }) {
            if n >= 1 { policy.maxAttempts = n } else { report(v, p, "must be at least 1") }
        }
        if case let (v, p)? = m.entry("max_age"), let d = get({ try reader.duration(v, p) }) {
            if d > .zero { policy.maxAge = d } else { report(v, p, "must be greater than 0") }
        }
        if policy.max < policy.initial, case let (v, p)? = maxAt ?? initialAt {
            report(v, p, "max (\(policy.max.formatted)) must not be less than initial (\(policy.initial.formatted))")
            policy.max = policy.initial
        }
        return policy
    }

    static let channelKeys = ["type", "retry", "concurrency", "rate_per_second", "timeout", "fallback", "templates"]

    func loadChannels(_ node: YNode, retry: RetryPolicy) -> ([ChannelConfig], Set<String>) {
        guard case .mapping(let pairs) = node.kind else {
            report(node, "channels", "expected a mapping of channel names to channel settings")
            return ([], [])
        }
        var channels: [ChannelConfig] = []
        var names: Set<String> = []
        var fallbacks: [(channel: String, target: String, node: YNode, path: String)] = []
        for pair in pairs {
            let name = pair.key
            let path = "channels.\(name)"
            names.insert(name)
            if name.isEmpty {
                report(pair.line, pair.column, "channels", "channel name must not be empty")
            } else if !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) {
                report(pair.line, pair.column, path, "invalid channel name; use letters, digits, \"_\", \".\" and \"-\"")
            }
            guard case .mapping(let fields) = pair.value.kind else {
                report(pair.value.isNull ? pair.line : pair.value.line, pair.value.isNull ? pair.column : pair.value.column,
                       path, pair.value.isNull ? "missing required key type" : "expected a mapping")
                continue
            }
            var config = ChannelConfig(name: name, type: "", retry: retry,
                                       settings: ChannelSettings(channel: name, type: ""))
            var typeAt = (line: pair.line, column: pair.column)
            var sawType = false
            var rest: [YPair] = []
            for field in fields {
                let p = joinPath(path, field.key)
                let v = field.value
                switch field.key {
                case "type":
                    sawType = true
                    typeAt = (field.line, field.column)
                    if v.isNull {
                        report(field.line, field.column, p, "missing value")
                    } else if let s = get({ try reader.string(v, p) }) {
                        if s.isEmpty { report(v, p, "must not be empty") } else { config.type = s }
                    }
                case "retry":
                    if !v.isNull { config.retry = loadRetry(v, path: p, base: retry) }
                case "concurrency":
                    if !v.isNull, let n = get({ try reader.int(v, p) }) {
                        if n >= 1 { config.concurrency = n } else { report(v, p, "must be at least 1") }
                    }
                case "rate_per_second":
                    if !v.isNull, let d = get({ try reader.number(v, p) }) {
                        if d > 0 && d <= ChannelConfig.maxRatePerSecond {
                            config.ratePerSecond = d
                        } else {
                            report(v, p, "must be greater than 0 and at most \(Int(ChannelConfig.maxRatePerSecond))")
                        }
                    }
                case "timeout":
                    if !v.isNull, let d = get({ try reader.duration(v, p) }) {
                        if d > .zero { config.timeout = d } else { report(v, p, "must be greater than 0") }
                    }
                case "fallback":
                    if !v.isNull, let s = get({ try reader.string(v, p) }) {
                        config.fallback = s
                        fallbacks.append((name, s, v, p))
                    }
                case "templates":
                    if !v.isNull { channelTemplates[name] = templateSources(v, path: p) }
                default:
                    rest.append(field)
                }
            }
            if !sawType { report(pair.line, pair.column, joinPath(path, "type"), "missing required key") }
            config.settings = ChannelSettings(channel: name, type: config.type, file: file, entries: rest,
                                              line: pair.line, column: pair.column,
                                              typeLine: typeAt.line, typeColumn: typeAt.column, directory: directory)
            channels.append(config)
        }
        for f in fallbacks {
            if f.target == f.channel {
                report(f.node, f.path, "a channel cannot be its own fallback")
            } else if !names.contains(f.target) {
                report(f.node, f.path, "unknown channel \"\(f.target)\"")
            }
        }
        return (channels, names)
    }

    func loadRoutes(_ node: YNode, channels: Set<String>) -> [Route] {
        guard case .sequence(let items) = node.kind else {
            report(node, "routes", "expected a list of routes")
            return []
        }
        var routes: [Route] = []
        for (index, item) in items.enumerated() {
            let path = "routes[\(index)]"
            guard let m = MapReader(self, item, path) else { continue }
            m.checkKeys(["match", "channels"])
            var route = Route(channels: [])
            if case let (v, p)? = m.entry("match"), let mm = MapReader(self, v, p) {
                mm.checkKeys(["severity", "labels", "components"])
                var match = Route.Match()
                if case let (sv, sp)? = mm.entry("severity"), let list = get({ try reader.listItems(sv, sp) }) {
                    if list.isEmpty { report(sv, sp, "must list at least one severity") }
                    var severities: Set<Severity> = []
                    for item in list {
                        if let severity = Severity(rawValue: item.value) {
                            severities.insert(severity)
                        } else {
                            report(item.node, item.path, "unknown severity \"\(item.value)\"; expected info, minor, major or critical")
                        }
                    }
                    match.severity = severities
                }
                if case let (lv, lp)? = mm.entry("labels"), let labels = get({ try reader.stringMap(lv, lp) }) {
                    match.labels = labels
                }
                if case let (cv, cp)? = mm.entry("components"), let list = get({ try reader.stringList(cv, cp) }) {
                    if list.isEmpty { report(cv, cp, "must list at least one component") }
                    match.components = Set(list)
                }
                route.match = match
            }
            if case let (v, p)? = m.entry("channels") {
                if let list = get({ try reader.listItems(v, p) }) {
                    if list.isEmpty { report(v, p, "must list at least one channel") }
                    for item in list {
                        if channels.contains(item.value) {
                            route.channels.append(item.value)
                        } else {
                            report(item.node, item.path, "unknown channel \"\(item.value)\"")
                        }
                    }
                }
            } else {
                m.missing("channels")
            }
            routes.append(route)
        }
        return routes
    }
}

/// A mapping being read by the loader. A null node reads as an empty mapping (all defaults).
struct MapReader {
    let context: LoadContext
    let node: YNode
    let path: String
    let pairs: [YPair]

    init?(_ context: LoadContext, _ node: YNode, _ path: String) {
        self.context = context
        self.node = node
        self.path = path
        switch node.kind {
        case .null: pairs = []
        case .mapping(let pairs): self.pairs = pairs
        default:
            context.report(node, path, "expected a mapping")
            return nil
        }
    }

    func keyPath(_ key: String) -> String { joinPath(path, key) }

    func pair(_ key: String) -> YPair? { pairs.first { $0.key == key } }

    /// The value of `key` and its key path; nil when absent or null.
    func entry(_ key: String) -> (YNode, String)? {
        guard let pair = pair(key), !pair.value.isNull else { return nil }
        return (pair.value, keyPath(key))
    }

    func value(_ key: String) -> YNode? { entry(key)?.0 }

    /// Reports a required key that is absent (at the mapping) or null (at the key).
    func missing(_ key: String, message: String = "missing required key") {
        if let pair = pair(key) {
            context.report(pair.line, pair.column, keyPath(key), message)
        } else {
            context.report(node, keyPath(key), message)
        }
    }

    func checkKeys(_ known: [String]) {
        for pair in pairs where !known.contains(pair.key) {
            context.report(pair.line, pair.column, keyPath(pair.key), unknownKeyMessage(pair.key, known: known))
        }
    }
}
