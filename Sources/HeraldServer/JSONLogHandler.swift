import Foundation
import HeraldCore
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The configured secrets that log lines are cleaned of: the loaded configuration's until the
/// application runs, then always the application's current ones (a reload may bring new secrets).
public final class LogRedaction: Sendable {
    private enum Source {
        case fixed(Redactor)
        case application(HeraldApplication)
    }
    private let source: Mutex<Source>

    public init(_ redactor: Redactor = .none) {
        source = Mutex(.fixed(redactor))
    }

    /// From now on, the secrets of `app`'s configuration in force.
    public func follow(_ app: HeraldApplication) {
        source.withLock { $0 = .application(app) }
    }

    public func redact(_ text: String) -> String {
        switch source.withLock({ $0 }) {
        case .fixed(let redactor): return redactor.redact(text)
        case .application(let app): return app.redactor.redact(text)
        }
    }
}

/// One JSON object per log line on standard error, for log pipelines (Loki, Elasticsearch,
/// CloudWatch):
///
///     {"time":"2026-11-25T10:02:03.120Z","level":"warning","label":"herald","message":"delivery failed",
///      "channel":"slack-ops","delivery":"dlv_01J…","incident":"dns","reason":"serverError","error":"…"}
///
/// `time` is UTC with milliseconds; metadata are top-level string fields (nested metadata become
/// objects and arrays); a metadata key that would shadow `time`, `level`, `label` or `message`
/// is written as `meta_KEY`. Every configured secret is masked in the message and every value,
/// whatever the call site did. A line is written with one `write(2)` under a lock, so lines from
/// several threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let redaction: LogRedaction
    private let output: LogOutput

    public init(label: String, redaction: LogRedaction, output: LogOutput = .standardError) {
        self.label = label
        self.redaction = redaction
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let reserved: Set<String> = ["time", "level", "label", "message"]

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        var fields = self.metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let explicit { fields.merge(explicit) { _, new in new } }
        var json = "{\"time\":\"" + Self.timestamp(Date()) + "\",\"level\":\"" + level.rawValue + "\",\"label\":"
        Self.appendString(label, to: &json)
        json += ",\"message\":"
        Self.appendString(redaction.redact(message.description), to: &json)
        for key in fields.keys.sorted() {
            json += ","
            Self.appendString(Self.reserved.contains(key) ? "meta_" + key : key, to: &json)
            json += ":"
            appendValue(fields[key]!, to: &json)
        }
        json += "}\n"
        output.write(json)
    }

    private func appendValue(_ value: Logger.Metadata.Value, to json: inout String) {
        switch value {
        case .string(let s):
            Self.appendString(redaction.redact(s), to: &json)
        case .stringConvertible(let c):
            Self.appendString(redaction.redact(c.description), to: &json)
        case .dictionary(let d):
            json += "{"
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { json += "," }
                Self.appendString(key, to: &json)
                json += ":"
                appendValue(d[key]!, to: &json)
            }
            json += "}"
        case .array(let a):
            json += "["
            for (i, v) in a.enumerated() {
                if i > 0 { json += "," }
                appendValue(v, to: &json)
            }
            json += "]"
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped; other characters as they are (UTF-8).
    static func appendString(_ s: String, to json: inout String) {
        json += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": json += "\\\""
            case "\\": json += "\\\\"
            case "\n": json += "\\n"
            case "\r": json += "\\r"
            case "\t": json += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                json += String(format: "\\u%04x", scalar.value)
            default:
                json.unicodeScalars.append(scalar)
            }
        }
        json += "\""
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T10:02:03.120Z`.
    static func timestamp(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = time_t(t.rounded(.down))
        let millis = Int((t - t.rounded(.down)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), min(999, max(0, millis)))
    }
}

/// Where log lines go: a file descriptor written whole lines at a time.
public final class LogOutput: Sendable {
    private let fd: Int32
    private let lock = Mutex(())

    public init(fd: Int32) {
        self.fd = fd
    }

    public static let standardError = LogOutput(fd: 2)

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.withLock { _ in
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += n
                }
            }
        }
    }
}

/// Logging for `herald serve`: text (`key=value`, swift-log's stream handler) or JSON lines, at
/// `level`. Both formats clean messages and metadata of `redaction`'s secrets.
public enum HeraldLogging {
    public static func bootstrap(format: LogFormat, level: Logger.Level, redaction: LogRedaction) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                var handler = JSONLogHandler(label: label, redaction: redaction)
                handler.logLevel = level
                return handler
            case .text:
                var handler = RedactingLogHandler(StreamLogHandler.standardError(label: label), redaction: redaction)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// Any log handler, with configured secrets masked in the message and the metadata.
public struct RedactingLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped
    private let redaction: LogRedaction

    public init(_ wrapped: Wrapped, redaction: LogRedaction) {
        self.wrapped = wrapped
        self.redaction = redaction
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        wrapped.log(level: level, message: "\(redaction.redact(message.description))",
                    metadata: metadata.map { $0.mapValues(redact) }, source: source, file: file, function: function, line: line)
    }

    private func redact(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let s): return .string(redaction.redact(s))
        case .stringConvertible(let c): return .string(redaction.redact(c.description))
        case .dictionary(let d): return .dictionary(d.mapValues(redact))
        case .array(let a): return .array(a.map(redact))
        }
    }
}
