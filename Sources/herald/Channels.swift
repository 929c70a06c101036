import ArgumentParser
import Foundation

/// `herald channels`: every channel of a running server with its health.
struct Channels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channels",
        abstract: "List a running server's channels and their health: healthy, failing or paused.",
        discussion: """
            A channel whose every attempt failed for its health.pause_after is paused: its \
            deliveries wait (nothing is dropped) and one is tried every health.probe_every; the \
            first success resumes it. Needs an admin token.
            """)

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let answer = try await ServerClient(options: client).call("GET", "/v1/channels")
        if json { return printJSON(answer) }
        let rows = (answer as? [String: Any])?["channels"] as? [[String: Any]] ?? []
        if rows.isEmpty {
            print("no channels")
            return
        }
        var table = [["CHANNEL", "TYPE", "STATE", "IN FLIGHT", "FAILING SINCE", "FAILURES", "NEXT PROBE", "LAST ERROR"]]
        for c in rows {
            table.append([
                "\(c["name"] ?? "")", "\(c["type"] ?? "")", "\(c["state"] ?? "")", "\(c["in_flight"] ?? 0)",
                c["failing_since"] as? String ?? "", "\(c["failures"] ?? 0)", c["next_probe_at"] as? String ?? "",
                (c["last_error"] as? String).map { String($0.prefix(80)) } ?? "",
            ])
        }
        printTable(table)
    }
}
