import ArgumentParser
import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file without starting anything.",
        discussion: "Prints every problem as FILE:LINE:COLUMN: KEY.PATH: MESSAGE and exits 1, or a summary and exits 0.")

    @Option(help: "Configuration file (default: $HERALD_CONFIG).")
    var config: String?

    func run() async throws {
        let loaded = try loadConfig(config)
        let transport = CurlTransport()
        defer { transport.shutdown() }
        let channels: [String: any Channel]
        do {
            channels = try ChannelRegistry.build(loaded, transport: transport)
        } catch let errors as ConfigErrors {
            throw CLIExit.local(errors.description)
        }
        do {
            _ = try MessageRenderer(templates: loaded.templates)
        } catch {
            throw CLIExit.local("\(loaded.file): templates: \(error)")
        }
        print("\(loaded.file): ok")
        print("  listen \(loaded.server.listen)\(loaded.server.publicListen.map { ", public pages on \($0)" } ?? ""), store \(loaded.store.path), \(loaded.server.tokens.count) token(s)")
        for c in loaded.channels {
            print("  channel \(c.name): \(channels[c.name]?.redactedDescription ?? c.type)")
        }
        for (i, route) in loaded.routes.enumerated() {
            print("  route \(i): \(route.match == nil ? "every event" : "matching events") -> \(route.channels.joined(separator: ", "))")
        }
        let unrouted = Set(loaded.channels.map(\.name)).subtracting(loaded.routes.flatMap(\.channels))
        for name in unrouted.sorted() {
            print("  note: channel \(name) is in no route and will receive nothing")
        }
    }
}
