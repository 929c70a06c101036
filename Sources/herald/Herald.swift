import ArgumentParser
import Foundation
import HeraldCore

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Incident notification dispatcher: durable events, fan-out to channels, retries, receipts, replay.",
        discussion: """
            Exit codes:
              0  done
              1  failed locally (bad configuration, store or port unavailable)
              2  usage error (bad arguments)
              3  rejected by the server (its answer is printed)
              4  server unreachable after retrying for --wait seconds

            Client commands read HERALD_URL (default http://127.0.0.1:8080) and HERALD_TOKEN.
            """,
        version: HeraldVersion.current,
        subcommands: [Serve.self, Migrate.self, Send.self, Deliveries.self, Replay.self, Incidents.self, Check.self, TestChannel.self,
                      Preview.self, Reload.self, Backup.self, Channels.self, Silences.self, MaintenanceWindows.self,
                      Subscribers.self]
    )

    /// ArgumentParser exits 64 for usage errors; Herald documents 2, as shells expect.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as CLIExit {
            if !exit.message.isEmpty { FileHandle.standardError.write(Data((exit.message + "\n").utf8)) }
            Foundation.exit(exit.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// Ends the program with a documented exit code and a message on standard error.
struct CLIExit: Error {
    var code: Int32
    var message: String
    static func local(_ message: String) -> CLIExit { CLIExit(code: 1, message: message) }
    static func usage(_ message: String) -> CLIExit { CLIExit(code: 2, message: message) }
    static func rejected(_ message: String) -> CLIExit { CLIExit(code: 3, message: message) }
    static func unreachable(_ message: String) -> CLIExit { CLIExit(code: 4, message: message) }
}
