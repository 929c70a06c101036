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
        let renderer = try MessageRenderer(templates: loaded.templates)
        var failed = false
        for outcome in await TestMessage.send(through: channel, name: name, renderer: renderer) {
            let who = outcome.recipient.map { " to \($0)" } ?? ""
            if let error = outcome.error {
                failed = true
                let kind = error.isTransient ? "failed (would be retried)" : "failed (permanent)"
                FileHandle.standardError.write(Data("\(kind) via \(channel.redactedDescription)\(who): \(redactor.redact(error.description))\n".utf8))
            } else {
                print("delivered via \(channel.redactedDescription)\(who): reference \(outcome.reference ?? "(none)")\(outcome.status.map { ", status \($0)" } ?? "")")
            }
        }
        if failed { throw CLIExit(code: 1, message: "") }
    }
}
