import ArgumentParser
import Foundation
import HeraldCore

/// `herald maintenance schedule|list|cancel`: the admin API's scheduled maintenance from the shell.
/// (Not named `Maintenance`: that is HeraldCore's window, which Herald.swift imports.)
struct MaintenanceWindows: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance",
        abstract: "Announce planned work: schedule, list and cancel maintenance windows.",
        discussion: """
            A maintenance window is posted on the status page, its feed and JSON, and as events of the \
            incident `maintenance:<id>` (label kind=maintenance, severity info) that go through the routes \
            like any event: announced when scheduled, a reminder before it begins (default 1 h before), \
            started and completed on time, threaded, the completion being the all-clear. During the window, \
            notices to the --silence channels of events touching its components are silenced, unless the \
            event carries the label breakthrough=true.
            """,
        subcommands: [Schedule.self, List.self, Cancel.self])

    struct Schedule: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schedule",
            abstract: "Schedule a maintenance window.",
            discussion: """
                Example: herald maintenance schedule --components web,api --from 2026-12-01T02:00:00Z \
                --duration 2h --title "Database upgrade" --silence oncall-slack
                """)

        @OptionGroup var client: ClientOptions

        @Option(help: "What is done, as customers read it (required).")
        var title: String

        @Option(name: [.customLong("components"), .customLong("component")],
                help: "The components it affects, comma separated (or repeat the option; required).")
        var components: [String] = []

        @Option(help: "When it begins: now, +DURATION from now (e.g. +30m), or an RFC 3339 time (required).")
        var from: String

        @Option(help: "When it ends (RFC 3339), instead of --duration.")
        var until: String?

        @Option(help: "How long, from --from (e.g. 30m, 2h).")
        var duration: String?

        @Option(help: "More for customers: what to expect.")
        var message: String?

        @Option(help: "How long before it begins to post a reminder (e.g. 30m; 0s: none; default 1h).")
        var reminder: String?

        @Option(name: .customLong("silence"),
                help: "During the window, silence this channel's notices of events touching the components (repeat for several).")
        var silence: [String] = []

        @Option(help: "Who (default: the token's name).")
        var author: String?

        @Flag(help: "Print JSON.")
        var json = false

        /// `--components web,api --components db` as [web, api, db].
        var componentNames: [String] {
            components.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// `now`, `+30m` (from now) or an RFC 3339 time, as the API takes it.
        static func time(_ text: String) throws -> String {
            if text == "now" { return RFC3339.format(Date()) }
            if text.hasPrefix("+") {
                guard let d = Duration(parsing: String(text.dropFirst())) else {
                    throw ValidationError("--from \(text): expected now, +DURATION (e.g. +30m) or an RFC 3339 time")
                }
                return RFC3339.format(Date().addingTimeInterval(d.seconds))
            }
            return text
        }

        func validate() throws {
            if componentNames.isEmpty { throw ValidationError("give the components it affects: --components web,api") }
            if (duration == nil) == (until == nil) { throw ValidationError("give one of --duration and --until") }
        }

        func run() async throws {
            var body: [String: Any] = ["title": title, "components": componentNames, "starts_at": try Self.time(from)]
            if let duration { body["duration"] = duration }
            if let until { body["ends_at"] = until }
            if let message { body["message"] = message }
            if let reminder { body["reminder"] = reminder }
            if !silence.isEmpty { body["silence"] = silence }
            if let author { body["created_by"] = author }
            let answer = try await ServerClient(options: client).call("POST", "/v1/maintenance", body: body)
            if json { return printJSON(answer) }
            guard let m = answer as? [String: Any] else { return }
            print("\(m["id"] ?? "") \(m["status"] ?? "") from \(m["starts_at"] ?? "") until \(m["ends_at"] ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List maintenance scheduled and in progress (with --all, the completed and cancelled too).")

        @OptionGroup var client: ClientOptions

        @Flag(help: "Include completed and cancelled maintenance.")
        var all = false

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let answer = try await ServerClient(options: client).call("GET", "/v1/maintenance?limit=1000" + (all ? "&all=true" : ""))
            if json { return printJSON(answer) }
            let rows = (answer as? [String: Any])?["maintenance"] as? [[String: Any]] ?? []
            if rows.isEmpty {
                print("no maintenance")
                return
            }
            var table = [["ID", "STATUS", "FROM", "UNTIL", "COMPONENTS", "SILENCE", "TITLE"]]
            for m in rows {
                let components = (m["components"] as? [String] ?? []).joined(separator: ",")
                let silence = (m["silence"] as? [String] ?? []).joined(separator: ",")
                table.append(["\(m["id"] ?? "")", "\(m["status"] ?? "")", "\(m["starts_at"] ?? "")", "\(m["ends_at"] ?? "")",
                              components, silence.isEmpty ? "-" : silence, String(((m["title"] as? String) ?? "").prefix(50))])
            }
            printTable(table)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel",
            abstract: "Cancel maintenance: one not begun is cancelled, one in progress ends now (its completion is posted).")

        @OptionGroup var client: ClientOptions

        @Argument(help: "Maintenance ids (mnt_…).")
        var ids: [String]

        func run() async throws {
            let api = ServerClient(options: client)
            for id in ids {
                let answer = try await api.call("DELETE", "/v1/maintenance/\(percentEncode(id))")
                let m = answer as? [String: Any]
                let status = m?["status"] as? String ?? ""
                switch status {
                case "completed": print("\(id) completed at \(m?["ends_at"] ?? "")")
                case "cancelled": print("\(id) cancelled")
                default: print("\(id) \(status)")
                }
            }
        }
    }
}
