import ArgumentParser
import Foundation

/// `herald silence add|list|expire`: the admin API's silences from the shell.
struct Silences: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence",
        abstract: "Quiet notices for a while: add, list and expire silences.",
        discussion: """
            A notice of an event that matches every matcher, to a silenced channel (every channel when the \
            silence names none), waits in the `silenced` state until the silence ends; if the incident is \
            still open then, it goes out. A resolve during the silence sends nothing to those never told. \
            Updates and all-clears to those already told are never held.
            """,
        subcommands: [Add.self, List.self, Expire.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a silence.",
            discussion: """
                Matchers as Alertmanager writes them: name=value, name!=value, name=~regex, name!~regex (the regex \
                matches the whole value). Names: a label, or severity, component, incident, source. Example: \
                herald silence add -m service=web -m 'severity=~"minor|info"' --channel pager --duration 2h \
                --comment "deploy of web 4.2"
                """)

        @OptionGroup var client: ClientOptions

        @Option(name: [.short, .customLong("matcher")], help: "A condition the event must meet (repeat for several).")
        var matchers: [String] = []

        @Option(name: .customLong("channel"), help: "Silence only this channel (repeat for several; default: every channel).")
        var channels: [String] = []

        @Option(help: "How long, from now or from --from (e.g. 30m, 2h, 1d).")
        var duration: String?

        @Option(help: "When it ends (RFC 3339), instead of --duration.")
        var until: String?

        @Option(help: "When it begins (RFC 3339; default: now).")
        var from: String?

        @Option(help: "Why (required).")
        var comment: String

        @Option(help: "Who (default: the token's name).")
        var author: String?

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            if matchers.isEmpty && channels.isEmpty {
                throw ValidationError("give at least one --matcher or --channel (a silence of everything is refused)")
            }
            if (duration == nil) == (until == nil) { throw ValidationError("give one of --duration and --until") }
        }

        func run() async throws {
            var body: [String: Any] = ["matchers": matchers, "channels": channels, "comment": comment]
            if let duration { body["duration"] = duration }
            if let until { body["ends_at"] = until }
            if let from { body["starts_at"] = from }
            if let author { body["created_by"] = author }
            let answer = try await ServerClient(options: client).call("POST", "/v1/silences", body: body)
            if json { return printJSON(answer) }
            guard let s = answer as? [String: Any] else { return }
            print("\(s["id"] ?? "") \(s["state"] ?? "") from \(s["starts_at"] ?? "") until \(s["ends_at"] ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List silences in force and pending (with --all, the expired too).")

        @OptionGroup var client: ClientOptions

        @Flag(help: "Include expired silences.")
        var all = false

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let answer = try await ServerClient(options: client).call("GET", "/v1/silences?limit=1000" + (all ? "&all=true" : ""))
            if json { return printJSON(answer) }
            let rows = (answer as? [String: Any])?["silences"] as? [[String: Any]] ?? []
            if rows.isEmpty {
                print("no silences")
                return
            }
            var table = [["ID", "STATE", "STARTS", "ENDS", "MATCHERS", "CHANNELS", "BY", "COMMENT"]]
            for s in rows {
                let matchers = (s["matchers"] as? [String] ?? []).joined(separator: " ")
                let channels = (s["channels"] as? [String] ?? []).joined(separator: ",")
                table.append(["\(s["id"] ?? "")", "\(s["state"] ?? "")", "\(s["starts_at"] ?? "")", "\(s["ends_at"] ?? "")",
                              matchers.isEmpty ? "-" : matchers,
                              // A maintenance window that names no channel silences nothing.
                              !channels.isEmpty ? channels : s["maintenance"] != nil ? "(none)" : "(all)", "\(s["created_by"] ?? "")",
                              String(((s["comment"] as? String) ?? "").prefix(50))])
            }
            printTable(table)
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "expire",
            abstract: "End silences now; the notices they held go out if their incident is still open.")

        @OptionGroup var client: ClientOptions

        @Argument(help: "Silence ids (sil_…).")
        var ids: [String]

        func run() async throws {
            let api = ServerClient(options: client)
            for id in ids {
                let answer = try await api.call("DELETE", "/v1/silences/\(percentEncode(id))")
                let s = answer as? [String: Any]
                print("\(id) expired at \(s?["ends_at"] ?? "")")
            }
        }
    }
}
