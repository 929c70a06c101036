import ArgumentParser
import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport
import Synchronization

struct Preview: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview",
        abstract: "Print exactly what a channel would send for an event, without sending anything.",
        discussion: """
            Renders the channel's templates (its own, else the global ones) for the kind asked,
            cuts them to the channel's limits, escapes the event's words for the provider's markup,
            and prints the request the channel would make (secrets masked), or, for email, the
            message. The event is a sample unless --event names a file in the format of
            POST /v1/events.
            """)

    @Option(help: "Configuration file (default: $HERALD_CONFIG).")
    var config: String?

    @Option(help: "The channel to preview.")
    var channel: String

    @Option(help: "notice, update, all_clear or summary.")
    var kind: String = "notice"

    @Option(help: "A JSON event as POST /v1/events takes it (default: a sample event).")
    var event: String?

    func validate() throws {
        guard DeliveryKind(rawValue: kind) != nil else {
            throw ValidationError("--kind: expected notice, update, all_clear or summary (got \"\(kind)\")")
        }
    }

    func run() async throws {
        let loaded = try loadConfig(config)
        guard let channelConfig = loaded.channels.first(where: { $0.name == channel }) else {
            throw CLIExit.usage("herald: no channel \"\(channel)\" in \(loaded.file) (channels: \(loaded.channels.map(\.name).joined(separator: ", ")))")
        }
        let kind = DeliveryKind(rawValue: kind)!
        let capture = RequestCapture()
        let channels = try ChannelRegistry.build(loaded, transport: capture, console: { capture.console($0) })
        guard let target = channels[channel] else { throw CLIExit.local("herald: channel \(channel) could not be built") }
        let redactor = Redactor(secrets: loaded.secrets)
        let now = Date()
        var e = try sampleOrGivenEvent(now: now)
        e.status = kind == .notice ? .triggered : kind == .update ? .updated : .resolved
        let opened = e.occurredAt.addingTimeInterval(kind.isResolution ? -2340 : 0)
        let incident = Incident(key: e.incident, status: kind.isResolution ? .resolved : .open, cycle: 1, title: e.title,
                                severity: e.severity, openedAt: opened, resolvedAt: kind.isResolution ? e.occurredAt : nil, updatedAt: now,
                                components: e.components, labels: e.labels, link: e.link, triggers: 1, lastSeenAt: now)
        let renderer = try MessageRenderer(templates: channelConfig.templates ?? loaded.templates)
        let plain = target.fitted(renderer.render(kind: kind, event: e, incident: incident))
        let formatted = target.fitted(renderer.render(kind: kind, event: e, incident: incident, markup: target.markup))
        var notice = e
        notice.status = .triggered
        let noticeTitle = kind.isFollowUp ? target.fitted(renderer.render(kind: .notice, event: notice, incident: incident)).title : nil
        let message = OutboundMessage(
            deliveryId: "dlv_preview", kind: kind, recipient: target.recipients.first, event: e, incident: incident,
            title: plain.title, text: plain.text, thread: kind.isFollowUp ? "preview-notice-reference" : nil,
            threadDeliveryId: kind.isFollowUp ? "dlv_preview_notice" : nil, noticeTitle: noticeTitle,
            noticeDeliveryId: kind.isFollowUp ? "dlv_preview_notice" : nil,
            references: kind.isFollowUp ? ["<dlv_preview_notice@preview.invalid>"] : [],
            formattedTitle: formatted.title, formattedText: formatted.text)
        var out = "channel \(channel) (\(target.redactedDescription)), kind \(kind.rawValue), markup \(target.markup.rawValue)\n"
        out += "title: \(plain.title)\n"
        out += "text:\n" + plain.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n") + "\n"
        if target.markup != .plain {
            out += "as the provider reads it (\(target.markup.rawValue)):\n"
            out += "  " + formatted.title + "\n"
            out += formatted.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n") + "\n"
        }
        do {
            _ = try await target.deliver(message)
        } catch let error as DeliveryError where capture.sent.isEmpty {
            out += "(nothing to show: \(error.description))\n"
        } catch {
            // The capture answered as little as it could; what was sent is what counts here.
        }
        for sent in capture.sent { out += sent }
        print(redactor.redact(out), terminator: "")
    }

    func sampleOrGivenEvent(now: Date) throws -> Event {
        guard let event else {
            return Event(id: "evt_preview", incident: "preview", status: .triggered, severity: .critical,
                         title: "Example: database connections failing", message: "Connections to db-primary time out since 10:02 UTC.",
                         components: ["api", "db"], labels: ["team": "platform"], link: "https://status.example.com/incidents/preview",
                         occurredAt: now, receivedAt: now, actor: "preview")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: event))
        } catch {
            throw CLIExit.usage("herald: cannot read \(event): \(error.localizedDescription)")
        }
        do {
            return try EventInput.parse(json: Array(data), id: "evt_preview", receivedAt: now)
        } catch {
            throw CLIExit.usage("herald: \(event): \(error)")
        }
    }
}
