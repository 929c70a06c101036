import Foundation

/// The type-specific keys of one channel, handed to that type's factory. Every accessor marks its
/// key as read; `finish()` then reports the keys nobody read. Errors are located in the file and
/// never quote a value.
public final class ChannelSettings: @unchecked Sendable {
    public let channel: String
    public let type: String
    public let file: String

    let entries: [YPair]
    /// Position of the channel's name key (for errors about absent keys).
    let line: Int
    let column: Int
    /// Position of its `type:` key.
    let typeLine: Int
    let typeColumn: Int
    /// Relative `*_file` paths are resolved against this directory (the config file's).
    let directory: String
    private let reader: NodeReader

    private let lock = NSLock()
    private var consumed: Set<String> = []
    private var asked: Set<String> = []
    private var secrets: [String] = []

    init(channel: String, type: String, file: String, entries: [YPair], line: Int, column: Int,
         typeLine: Int, typeColumn: Int, directory: String) {
        self.channel = channel
        self.type = type
        self.file = file
        self.entries = entries
        self.line = line
        self.column = column
        self.typeLine = typeLine
        self.typeColumn = typeColumn
        self.directory = directory
        self.reader = NodeReader(file: file)
    }

    /// Flat string values without positions, for tests and code.
    public convenience init(channel: String, type: String, values: [String: String] = [:], file: String = "<memory>") {
        let entries = values.sorted { $0.key < $1.key }.map {
            YPair(key: $0.key, line: 0, column: 0, value: YNode(kind: .scalar($0.value), line: 0, column: 0))
        }
        self.init(channel: channel, type: type, file: file, entries: entries, line: 0, column: 0,
                  typeLine: 0, typeColumn: 0, directory: "")
    }

    // MARK: Accessors

    /// A required, non-empty string.
    public func string(_ key: String) throws -> String {
        guard let node = take(key) else { throw missing(key) }
        let s = try reader.string(node, path(key))
        if s.isEmpty { throw reader.error(node, path(key), "must not be empty") }
        return s
    }

    public func optionalString(_ key: String) throws -> String? {
        guard let node = take(key) else { return nil }
        return try reader.string(node, path(key))
    }

    /// The value of `key`, or the trimmed contents of the file named by `key_file`; nil when
    /// neither is given (or the value is empty). Records the value as a secret.
    public func secret(_ key: String) throws -> Secret? {
        let fileKey = key + "_file"
        let direct = take(key)
        let fromFile = take(fileKey)
        if direct != nil, fromFile != nil {
            let pair = entry(fileKey)!
            throw ConfigError(file: file, line: pair.line, column: pair.column, keyPath: path(fileKey),
                              message: "give either \(key) or \(fileKey), not both")
        }
        let value: String
        if let direct {
            value = try reader.string(direct, path(key))
            if value.isEmpty { return nil }
        } else if let fromFile {
            let filePath = try reader.string(fromFile, path(fileKey))
            switch readSecretFile(filePath, relativeTo: directory) {
            case .success(let s): value = s
            case .failure(let failure):
                throw reader.error(fromFile, path(fileKey), "cannot read \(filePath): \(failure.text)")
            }
        } else {
            return nil
        }
        record(value)
        return Secret(value)
    }

    public func requiredSecret(_ key: String) throws -> Secret {
        if let secret = try secret(key) { return secret }
        throw missing(key, message: "missing required key (give \(key) or \(key)_file)")
    }

    /// Like `secret`, but `key` may be a list of values and `key_file` a list of files — several
    /// keys in use at once, while one replaces another. In order, without repeats; an empty value
    /// is skipped (so `${PREVIOUS_SECRET:-}` can be left unset), an unreadable file is an error at
    /// its item. Empty when neither key is given. Records every value as a secret.
    public func secretList(_ key: String) throws -> [Secret] {
        let fileKey = key + "_file"
        let direct = take(key)
        let fromFile = take(fileKey)
        if direct != nil, fromFile != nil {
            let pair = entry(fileKey)!
            throw ConfigError(file: file, line: pair.line, column: pair.column, keyPath: path(fileKey),
                              message: "give either \(key) or \(fileKey), not both")
        }
        var values: [String] = []
        if let direct {
            values = try reader.listItems(direct, path(key)).map(\.value)
        } else if let fromFile {
            for item in try reader.listItems(fromFile, path(fileKey)) {
                switch readSecretFile(item.value, relativeTo: directory) {
                case .success(let s): values.append(s)
                case .failure(let failure):
                    throw reader.error(item.node, item.path, "cannot read \(item.value): \(failure.text)")
                }
            }
        }
        var seen: Set<String> = []
        let secrets = values.filter { !$0.isEmpty && seen.insert($0).inserted }
        secrets.forEach(record)
        return secrets.map(Secret.init)
    }

    /// A required absolute URL with one of `schemes` and a host. `secret: true` records it for
    /// redaction (webhook URLs carry tokens).
    public func url(_ key: String, schemes: Set<String>, secret: Bool = false) throws -> String {
        let s = try string(key)
        let node = take(key)!
        if secret { record(s) }
        guard let components = URLComponents(string: s),
              let scheme = components.scheme?.lowercased(), schemes.contains(scheme),
              let host = components.host, !host.isEmpty else {
            let names = schemes.sorted()
            let list = names.count <= 1 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!
            throw reader.error(node, path(key), "expected a URL with scheme \(list) and a host")
        }
        if secret {
            // A provider or a proxy may quote only part of the URL back (the path of a Slack or
            // Discord webhook is the credential), so each secret-bearing part is redacted too.
            for part in [components.percentEncodedPath, components.path, components.percentEncodedQuery ?? "",
                         components.password ?? "", components.user ?? ""] where part.count >= 4 && part != "/" {
                record(part)
            }
            for segment in components.path.split(separator: "/") where segment.count >= 8 {
                record(String(segment))
            }
        }
        return s
    }

    /// A sequence of scalars; a single scalar is a one-element list.
    public func stringList(_ key: String) throws -> [String]? {
        guard let node = take(key) else { return nil }
        return try reader.stringList(node, path(key))
    }

    /// A mapping of scalars.
    public func stringMap(_ key: String) throws -> [String: String]? {
        guard let node = take(key) else { return nil }
        return try reader.stringMap(node, path(key))
    }

    /// `true`/`false`/`yes`/`no`/`on`/`off`.
    public func bool(_ key: String) throws -> Bool? {
        guard let node = take(key) else { return nil }
        return try reader.bool(node, path(key))
    }

    public func int(_ key: String) throws -> Int? {
        guard let node = take(key) else { return nil }
        return try reader.int(node, path(key))
    }

    /// `250ms`, `1s`, `5m`, `24h`, … (see `Duration(parsing:)`).
    public func duration(_ key: String) throws -> Duration? {
        guard let node = take(key) else { return nil }
        return try reader.duration(node, path(key))
    }

    /// An error about `key`, located at its value (or at the channel when the key is absent).
    public func error(_ key: String, _ message: String) -> ConfigError {
        if let pair = entry(key) {
            let at = pair.value.line > 0 && !pair.value.isNull ? (pair.value.line, pair.value.column) : (pair.line, pair.column)
            return ConfigError(file: file, line: at.0, column: at.1, keyPath: path(key), message: message)
        }
        return ConfigError(file: file, line: line, column: column, keyPath: path(key), message: message)
    }

    /// An error about the channel's type (e.g. "unknown channel type"), located at its `type:` key.
    public func typeError(_ message: String) -> ConfigError {
        ConfigError(file: file, line: typeLine, column: typeColumn, keyPath: path("type"), message: message)
    }

    /// Reports every key that no accessor read, as "unknown key". Call after the factory ran.
    public func finish() throws {
        let (read, known) = lock.withLock { (consumed, asked) }
        let suggestions = known.union(LoadContext.channelKeys)
        let errors = entries.filter { !read.contains($0.key) }.map {
            ConfigError(file: file, line: $0.line, column: $0.column, keyPath: path($0.key),
                        message: unknownKeyMessage($0.key, known: suggestions.sorted()))
        }
        if !errors.isEmpty { throw ConfigErrors(errors: errors.inFileOrder()) }
    }

    /// Every secret value recorded by `secret`, `requiredSecret` and `url(secret: true)` so far.
    public var secretValues: [String] {
        lock.withLock { secrets }
    }

    // MARK: Internals

    private func path(_ key: String) -> String { "channels.\(channel).\(key)" }

    private func entry(_ key: String) -> YPair? { entries.first { $0.key == key } }

    /// Marks `key` as read; its value unless absent or null.
    private func take(_ key: String) -> YNode? {
        lock.withLock {
            asked.insert(key)
            consumed.insert(key)
        }
        guard let pair = entry(key), !pair.value.isNull else { return nil }
        return pair.value
    }

    /// Marks a value read with another accessor as a secret (an `Authorization` header, say), so
    /// it is redacted wherever it could appear.
    public func recordSecret(_ value: String) {
        record(value)
    }

    private func record(_ value: String) {
        guard !value.isEmpty else { return }
        lock.withLock {
            if !secrets.contains(value) { secrets.append(value) }
        }
    }

    private func missing(_ key: String, message: String = "missing required key") -> ConfigError {
        if let pair = entry(key) {
            return ConfigError(file: file, line: pair.line, column: pair.column, keyPath: path(key), message: message)
        }
        return ConfigError(file: file, line: line, column: column, keyPath: path(key), message: message)
    }
}
