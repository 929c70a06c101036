import Foundation

final class LoadContext {
    let file: String
    let environment: [String: String]
    let directory: String
    let reader: NodeReader
    var errors: [ConfigError] = []
    /// Channels' own `templates:`, by channel, applied over the global ones once those are read.
    var channelTemplates: [String: [String: String]] = [:]
    /// Each channel's own `health:` node, read once the global one is known.
    var channelHealth: [String: YNode] = [:]

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

    func loadRoot(_ root: YNode, into config: inout HeraldConfig) {
        guard let top = MapReader(self, root, "") else { return }
        top.checkKeys(["server", "store", "retry", "channels", "routes", "templates", "retention", "health", "quiet_hours", "status_page"])
        if let node = top.value("server") { loadServer(node, into: &config.server) }
        if let node = top.value("store") { loadStore(node, into: &config.store) }
        if let node = top.value("retention") { loadRetention(node, into: &config.retention) }
        if let node = top.value("retry") { config.retry = loadRetry(node, path: "retry", base: .default) }
        var names: Set<String> = []
        if let node = top.value("channels") { (config.channels, names) = loadChannels(node, retry: config.retry) }
        let subscriberChannels = Set(config.channels.filter { $0.type == "subscribers" }.map(\.name))
        if let node = top.value("routes") {
            config.routes = loadRoutes(node, channels: names, subscriberChannels: subscriberChannels)
        }
        if subscriberChannels.count > 1, let second = config.channels.filter({ $0.type == "subscribers" }).dropFirst().first {
            report(second.settings.line, second.settings.column, "channels.\(second.name)",
                   "only one channel may be of type subscribers (the status page has one list of subscribers)")
        }
        if let node = top.value("status_page") { config.statusPage = loadStatusPage(node) }
        if let node = top.value("quiet_hours") { config.quietHours = loadQuietHours(node, channels: names) }
        if let node = top.value("health") { config.health = loadHealth(node, path: "health", base: config.health, channels: names) }
        for i in config.channels.indices {
            let name = config.channels[i].name
            config.channels[i].health = channelHealth[name].map { loadHealth($0, path: "channels.\(name).health", base: config.health, channels: names) }
                ?? config.health
        }
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
