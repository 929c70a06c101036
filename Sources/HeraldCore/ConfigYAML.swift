import Yams

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
