import ArgumentParser
import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport

struct TestChannel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-channel",
        abstract: "Send one test message through a configured channel and print the receipt or the error.",
        discussion: "Nothing is stored and no route is consulted. Exit 0 when delivered, 1 when the provider refused or could not be reached.")

    @Argument(help: "The channel's name in the configuration.")
    var name: String

    @Option(help: "Configuration file (default: $HERALD_CONFIG).")
    var config: String?

    func run() async throws {
        let loaded = try loadConfig(config)
        guard loaded.channel(named: name) != nil else {
            let known = loaded.channels.map(\.name).joined(separator: ", ")
            throw CLIExit.usage("herald: no channel \"\(name)\" in \(loaded.file) (channels: \(known.isEmpty ? "none" : known))")
        }
        let transport = CurlTransport()
        defer { transport.shutdown() }
        let channels = try ChannelRegistry.build(loaded, transport: transport)
        let redactor = Redactor(secrets: loaded.secrets)
        guard let channel = channels[name] else { throw CLIExit.local("herald: channel \(name) could not be built") }
        let now = Date()
        let event = Event(id: Identifier.make(prefix: "evt"), incident: "herald-test", status: .triggered, severity: .info,
                          title: "Herald test message", message: "This is a test of the \(name) channel. No action is needed.",
                          occurredAt: now, receivedAt: now)
        let incident = Incident(key: "herald-test", status: .open, cycle: 1, title: event.title, severity: .info,
                                openedAt: now, resolvedAt: nil, updatedAt: now)
        let renderer = try MessageRenderer(templates: loaded.templates)
        func fitted(_ rendered: (title: String, text: String)) -> (title: String, text: String) {
            (channel.limits.maxTitle.map { rendered.title.truncated(to: $0) } ?? rendered.title,
             channel.limits.maxBody.map { rendered.text.truncated(to: $0) } ?? rendered.text)
        }
        let (title, text) = fitted(renderer.render(kind: .notice, event: event, incident: incident))
        let formatted = fitted(renderer.render(kind: .notice, event: event, incident: incident, markup: channel.markup))
        let recipients = channel.recipients.isEmpty ? [nil] : channel.recipients.map(Optional.some)
        var failed = false
        for recipient in recipients {
            let message = OutboundMessage(deliveryId: Identifier.make(prefix: "dlv"), kind: .notice, recipient: recipient,
                                          event: event, incident: incident, title: title, text: text,
                                          formattedTitle: formatted.title, formattedText: formatted.text)
            let who = recipient.map { " to \($0)" } ?? ""
            do {
                let receipt = try await channel.deliver(message)
                print("delivered via \(channel.redactedDescription)\(who): reference \(receipt.reference ?? "(none)")\(receipt.status.map { ", status \($0)" } ?? "")")
            } catch let error as DeliveryError {
                failed = true
                let kind = error.isTransient ? "failed (would be retried)" : "failed (permanent)"
                FileHandle.standardError.write(Data("\(kind) via \(channel.redactedDescription)\(who): \(redactor.redact(error.description))\n".utf8))
            }
        }
        if failed { throw CLIExit(code: 1, message: "") }
    }
}
