import Foundation

/// `channels:`: the keys every channel has; the channel registry checks the type's own.
extension LoadContext {
    static let channelKeys = ["type", "retry", "concurrency", "rate_per_second", "timeout", "fallback", "templates", "health"]

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
                case "health":
                    if !v.isNull { channelHealth[name] = v }
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
}
