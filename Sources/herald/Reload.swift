import ArgumentParser
import Foundation

/// `herald reload`: asks a running server to re-read its configuration file (as SIGHUP does),
/// and says what changed — or, for a file with a problem, what is wrong, exiting 3 with the
/// running configuration unchanged.
struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Make a running server re-read its configuration file, without a restart.",
        discussion: """
            Channels, routes, templates, tokens, retry policies and the listener's certificate \
            change for work claimed from then on; attempts in flight finish on the settings they \
            started with. A file with a problem changes nothing: the errors are printed as \
            `herald check` prints them and the exit code is 3. Needs an admin token.
            """)

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let answer = try await ServerClient(options: client).call("POST", "/v1/reload")
        if json { return printJSON(answer) }
        let report = answer as? [String: Any] ?? [:]
        print("reloaded \(report["file"] as? String ?? "the configuration")")
        for (key, verb) in [("added", "added"), ("replaced", "rebuilt"), ("removed", "removed")] {
            let names = report[key] as? [String] ?? []
            if !names.isEmpty { print("  \(verb): \(names.joined(separator: ", "))") }
        }
        for note in report["notes"] as? [String] ?? [] { print("  note: \(note)") }
    }
}
