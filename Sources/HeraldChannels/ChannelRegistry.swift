import HeraldCore
import HeraldTransport

/// From a channel's `type:` to the factory that builds it. A new channel type is one file and one
/// line here.
public enum ChannelRegistry {
    public typealias Factory = @Sendable (ChannelSettings, ChannelContext) throws -> any Channel

    public static let factories: [String: Factory] = [
        "webhook": WebhookChannel.make,
        "email": EmailChannel.make,
        "console": ConsoleChannel.make,
        "statuspage": StatusPageChannel.make,
        "slack": SlackChannel.make,
        "mattermost": MattermostChannel.make,
        "discord": DiscordChannel.make,
        "teams": TeamsChannel.make,
        "telegram": TelegramChannel.make,
        "mastodon": MastodonChannel.make,
        "bluesky": BlueskyChannel.make,
        "x": XChannel.make,
        "matrix": MatrixChannel.make,
        "subscribers": SubscribersChannel.make,
    ]

    public static var types: [String] { factories.keys.sorted() }

    /// Every channel configuration problem, without sending anything (for `herald check` and
    /// for loading, so that one run reports them all).
    public static func validate(_ config: HeraldConfig) -> [ConfigError] {
        do {
            _ = try build(config, transport: NoTransport(), console: { _ in })
            return []
        } catch let errors as ConfigErrors {
            return errors.errors
        } catch {
            return [ConfigError(file: config.file, line: 0, column: 0, keyPath: "channels", message: "\(error)")]
        }
    }

    /// A transport that sends nothing: channels are only built, never used.
    struct NoTransport: HTTPTransport {
        func send(_ request: HTTPRequest) async throws -> HTTPResponse {
            throw TransportError(kind: .invalidRequest, message: "validation only")
        }
    }

    /// Builds every configured channel, reporting every configuration problem at once (unknown
    /// type, missing or unknown keys) with file:line:column.
    public static func build(_ config: HeraldConfig, transport: any HTTPTransport,
                             console: @escaping @Sendable (String) -> Void = ConsoleChannel.standardOutput,
                             statusBoard: (any StatusBoard)? = nil,
                             subscribers: (any SubscriberDirectory)? = nil) throws -> [String: any Channel] {
        var channels: [String: any Channel] = [:]
        var errors: [ConfigError] = []
        for channelConfig in config.channels {
            let settings = channelConfig.settings
            guard let factory = factories[channelConfig.type] else {
                errors.append(settings.typeError(
                    "unknown channel type \"\(channelConfig.type)\" (known: \(types.joined(separator: ", ")))"))
                continue
            }
            do {
                let context = ChannelContext(transport: transport, timeout: channelConfig.timeout, console: console,
                                             statusBoard: statusBoard, subscribers: subscribers)
                channels[channelConfig.name] = try factory(settings, context)
                try settings.finish()
            } catch let error as ConfigError {
                errors.append(error)
            } catch let error as ConfigErrors {
                errors.append(contentsOf: error.errors)
            }
        }
        if !errors.isEmpty { throw ConfigErrors(errors: errors) }
        return channels
    }
}
