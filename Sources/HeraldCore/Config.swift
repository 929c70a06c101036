import Foundation
/// The whole configuration, as loaded from the YAML file (see `ConfigLoader`) and validated.
/// Every key is documented in `channels.yaml.example`.
public struct HeraldConfig: Sendable {
    public var server: ServerConfig
    public var store: StoreConfig
    /// The default retry policy; a channel may override any of its fields.
    public var retry: RetryPolicy
    /// In file order.
    public var channels: [ChannelConfig]
    public var routes: [Route]
    /// `templates:` — overrides of the default message templates.
    public var templates: MessageRenderer.Templates = .defaults
    /// `retention:` — how long finished history is kept (see `RetentionConfig`).
    public var retention = RetentionConfig()
    /// `health:` — every channel's default health policy (see `HealthPolicy`).
    public var health = HealthPolicy()
    /// `quiet_hours:` — recurring silences (see `QuietHours`).
    public var quietHours: [QuietHours] = []
    /// `status_page:` — the public page's name, home link, logo and declared components.
    public var statusPage = StatusPageConfig()
    /// Where the configuration came from (for messages).
    public var file: String

    public init(server: ServerConfig = .init(), store: StoreConfig = .init(), retry: RetryPolicy = .default,
                channels: [ChannelConfig] = [], routes: [Route] = [], file: String = "<memory>") {
        self.server = server
        self.store = store
        self.retry = retry
        self.channels = channels
        self.routes = routes
        self.file = file
    }

    public func channel(named name: String) -> ChannelConfig? {
        channels.first { $0.name == name }
    }

    /// Every secret value in the configuration (tokens, channel secrets, passwords, secret URLs),
    /// for redaction.
    public var secrets: [String] {
        server.tokens.map(\.token.value) + channels.flatMap(\.settings.secretValues) + store.secretValues
    }
}

public struct ServerConfig: Sendable {
    /// `server.listen`, default `127.0.0.1:8080`.
    public var listen: HostPort
    /// `server.public_listen`, default none: a second listener that serves only the public pages
    /// (`/status`, its feed and JSON, the subscription pages, `/healthz`) on an event loop of its
    /// own, so a crowd reading them never queues ahead of the API's requests — and the API's port
    /// need not face the internet.
    public var publicListen: HostPort?
    /// `server.max_body_bytes`, default 1 MiB.
    public var maxBodyBytes: Int
    /// `server.tokens`.
    public var tokens: [TokenConfig]
    /// `server.drain_timeout`, default 10s: how long SIGTERM waits for attempts in flight.
    public var drainTimeout: Duration
    /// `server.status_title`, default "Service status": the heading of /status and its feed.
    public var statusTitle: String = "Service status"
    /// `server.failed_auth: {burst, per_second}`, default 10 and 1: failed authentications one
    /// client address may make at once, and how fast that budget refills; beyond it, `429`.
    public var failedAuthBurst: Int = 10
    public var failedAuthPerSecond: Double = 1
    /// `server.log_format`, default `text`: `json` writes one JSON object per log line.
    public var logFormat: LogFormat = .text
    /// `server.tls: {cert_file, key_file}`, default none: plain HTTP (see `ListenerTLSConfig`).
    public var tls: ListenerTLSConfig?

    /// Tokens shorter than this are refused: a token is the only thing between the internet and
    /// paging a company.
    public static let minimumTokenLength = 24

    public init(listen: HostPort = .init(host: "127.0.0.1", port: 8080), maxBodyBytes: Int = 1_048_576,
                tokens: [TokenConfig] = [], drainTimeout: Duration = .seconds(10)) {
        self.listen = listen
        self.maxBodyBytes = maxBodyBytes
        self.tokens = tokens
        self.drainTimeout = drainTimeout
    }
}

public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `:PORT` (all interfaces) and `[::1]:PORT`.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public enum TokenScope: String, Sendable, CaseIterable {
    case ingest, admin
}

public struct TokenConfig: Sendable {
    public var name: String
    public var token: Secret
    public var scopes: Set<TokenScope>
    public init(name: String, token: Secret, scopes: Set<TokenScope>) {
        self.name = name
        self.token = token
        self.scopes = scopes
    }
}

public struct StoreConfig: Sendable {
    /// `store.path`, default `./herald.sqlite`: the embedded SQLite store.
    public var path: String
    /// `store.url` (`postgres://…`): a PostgreSQL store shared by several nodes. Wins over `path`.
    public var url: Secret?
    /// `store.lease_margin`, default 60s: how long past a channel's timeout a claim stays leased
    /// before another node may take the delivery over (a node that died mid-attempt).
    public var leaseMargin: Duration

    public init(path: String = "./herald.sqlite", url: Secret? = nil, leaseMargin: Duration = .seconds(60)) {
        self.path = path
        self.url = url
        self.leaseMargin = leaseMargin
    }

    /// Whether `text` names a PostgreSQL store rather than a SQLite file.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// The URL and its password, for redaction.
    var secretValues: [String] {
        guard let url = url?.value else { return [] }
        var values = [url]
        if let c = URLComponents(string: url), let password = c.password, !password.isEmpty {
            values.append(password)
            if let decoded = password.removingPercentEncoding { values.append(decoded) }
        }
        return values
    }
}

/// One configured destination. The keys every channel has are read here; the rest belong to the
/// channel type and are read from `settings` by that type's factory.
public struct ChannelConfig: Sendable {
    public var name: String
    public var type: String
    /// The default policy with this channel's `retry:` overrides applied.
    public var retry: RetryPolicy
    /// `concurrency`, default 16: attempts in flight at once on this channel.
    public var concurrency: Int
    /// `rate_per_second`, default none: attempts started per second on this channel, at most
    /// `maxRatePerSecond`.
    public var ratePerSecond: Double?
    /// A million starts a second: far above any provider's limit, and a token count that stays a
    /// small integer (a larger rate would be no limit, and 1e300 would overflow counting tokens).
    public static let maxRatePerSecond: Double = 1_000_000
    /// `timeout`, default 30s: the whole HTTP exchange.
    public var timeout: Duration
    /// `fallback`: another channel that sends a notice this one failed to deliver (permanently
    /// or out of retries). One hop: the fallback's own fallback is not used.
    public var fallback: String?
    /// The type-specific keys.
    public var settings: ChannelSettings
    /// `templates:` under the channel, over the global ones (nil: the global templates as they are).
    public var templates: MessageRenderer.Templates?
    /// `health:` under the channel over the global one: when it pauses, how it is probed, who is told.
    public var health = HealthPolicy()

    public init(name: String, type: String, retry: RetryPolicy = .default, concurrency: Int = 16,
                ratePerSecond: Double? = nil, timeout: Duration = .seconds(30), settings: ChannelSettings) {
        self.name = name
        self.type = type
        self.retry = retry
        self.concurrency = concurrency
        self.ratePerSecond = ratePerSecond
        self.timeout = timeout
        self.settings = settings
    }
}
