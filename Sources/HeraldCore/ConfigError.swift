/// One problem in the configuration file, located as precisely as the loader can.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The path as given to the loader.
    public var file: String
    /// 1-based; 0 when unknown.
    public var line: Int
    /// 1-based; 0 when unknown.
    public var column: Int
    /// Where in the document, e.g. `channels.ops-hook.url` or `routes[0].channels[1]`; empty for the whole file.
    public var keyPath: String
    /// What is wrong. Never contains a secret value.
    public var message: String

    public init(file: String, line: Int, column: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// `FILE:LINE:COLUMN: KEYPATH: MESSAGE`, without `:LINE:COLUMN` when the line is unknown and
    /// without `KEYPATH: ` when the problem concerns the whole file.
    public var description: String {
        var out = file
        if line > 0 { out += ":\(line):\(column)" }
        out += ": "
        if !keyPath.isEmpty { out += "\(keyPath): " }
        return out + message
    }
}

/// Every problem found in one configuration file, in file order.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]

    public init(errors: [ConfigError]) {
        self.errors = errors
    }

    /// One error per line.
    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}

extension Array where Element == ConfigError {
    /// Sorted by position (stable, so errors at one place keep the order they were found in).
    func inFileOrder() -> [ConfigError] {
        enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
    }
}

/// `unknown key`, with a suggestion when a known key is a likely misspelling.
func unknownKeyMessage(_ key: String, known: some Sequence<String>) -> String {
    var best: (name: String, distance: Int)?
    for candidate in known where candidate != key {
        let d = editDistance(key, candidate)
        if d <= 2, d < key.count, best == nil || d < best!.distance || (d == best!.distance && candidate < best!.name) {
            best = (candidate, d)
        }
    }
    if let best { return "unknown key; did you mean \"\(best.name)\"?" }
    return "unknown key"
}

/// Levenshtein distance.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
