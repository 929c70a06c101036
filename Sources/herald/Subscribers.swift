import ArgumentParser
import Foundation

/// `herald subscribers list|count|remove|export`: the status page's subscribers from the shell.
struct Subscribers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscribers",
        abstract: "The status page's email subscribers: list, count, remove, export.",
        discussion: """
            People sign up on /status/subscribe (a `subscribers` channel must be configured) and confirm by a \
            mailed link; only confirmed subscribers receive anything. Removing one stops whatever still waited \
            to be sent to them.
            """,
        subcommands: [List.self, Count.self, Remove.self, Export.self])

    /// Every page of `/v1/subscribers`, in id order.
    static func all(_ api: ServerClient, pending: Bool) async throws -> [[String: Any]] {
        var rows: [[String: Any]] = []
        var after: String?
        repeat {
            var path = "/v1/subscribers?limit=1000" + (pending ? "&pending=true" : "")
            if let after { path += "&after=\(percentEncode(after))" }
            let answer = try await api.call("GET", path) as? [String: Any]
            rows += answer?["subscribers"] as? [[String: Any]] ?? []
            after = answer?["next"] as? String
        } while after != nil
        return rows
    }

    static func components(_ row: [String: Any]) -> String {
        let list = row["components"] as? [String] ?? []
        return list.isEmpty ? "(all)" : list.joined(separator: ",")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list",
                                                        abstract: "List confirmed subscribers (with --pending, the sign-ups still to confirm).")

        @OptionGroup var client: ClientOptions

        @Flag(help: "The sign-ups still waiting for confirmation instead.")
        var pending = false

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let rows = try await Subscribers.all(ServerClient(options: client), pending: pending)
            if json { return printJSON(["subscribers": rows]) }
            if rows.isEmpty {
                print(pending ? "no sign-ups waiting" : "no subscribers")
                return
            }
            var table = [["ID", "ADDRESS", "COMPONENTS", pending ? "SIGNED UP" : "CONFIRMED"]]
            for r in rows {
                table.append(["\(r["id"] ?? "")", "\(r["address"] ?? "")", Subscribers.components(r),
                              "\((pending ? r["created_at"] : r["confirmed_at"]) ?? "")"])
            }
            printTable(table)
        }
    }

    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "count", abstract: "How many are confirmed and how many wait.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let answer = try await ServerClient(options: client).call("GET", "/v1/subscribers/count") as? [String: Any]
            print("\(answer?["confirmed"] ?? 0) confirmed, \(answer?["pending"] ?? 0) waiting for confirmation")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove",
                                                        abstract: "Remove subscribers; nothing more is sent to them.")

        @OptionGroup var client: ClientOptions

        @Argument(help: "Subscriber ids (sub_…), as `list` prints them.")
        var ids: [String]

        func run() async throws {
            let api = ServerClient(options: client)
            for id in ids {
                _ = try await api.call("DELETE", "/v1/subscribers/\(percentEncode(id))")
                print("\(id) removed")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Every confirmed subscriber as CSV (id, address, components, confirmed_at) on standard output.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let rows = try await Subscribers.all(ServerClient(options: client), pending: false)
            print("id,address,components,confirmed_at")
            for r in rows {
                let fields = ["\(r["id"] ?? "")", "\(r["address"] ?? "")", (r["components"] as? [String] ?? []).joined(separator: " "),
                              "\(r["confirmed_at"] ?? "")"]
                print(fields.map(Subscribers.csv).joined(separator: ","))
            }
        }
    }

    /// RFC 4180: quoted when it holds a comma, quote or line break.
    static func csv(_ field: String) -> String {
        field.contains(where: { ",\"\r\n".contains($0) }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }
}
