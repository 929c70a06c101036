import ArgumentParser
import Foundation
import HeraldCore

struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries",
        abstract: "List deliveries (newest first), e.g. the failed ones and why.",
        discussion: "States: queued, in_flight, delivered, retrying, failed, superseded, silenced.")

    @OptionGroup var client: ClientOptions

    @Option(help: "Only this state (e.g. failed).")
    var state: String?

    @Flag(name: .customLong("failed"), help: "Shorthand for --state failed.")
    var failedOnly = false

    @Option(help: "Only this channel.")
    var channel: String?

    @Option(help: "Only this incident key.")
    var incident: String?

    @Option(help: "At most this many (1–1000).")
    var limit: Int = 100

    @Option(help: "Show one delivery with all its attempts.")
    var id: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let api = ServerClient(options: client)
        if let id {
            let answer = try await api.call("GET", "/v1/deliveries/\(percentEncode(id))")
            if json { return printJSON(answer) }
            guard let d = answer as? [String: Any] else { return }
            print("\(d["id"] ?? "") \(d["state"] ?? "") channel=\(d["channel"] ?? "") incident=\(d["incident"] ?? "") kind=\(d["kind"] ?? "")")
            if let receipt = d["receipt"] as? String { print("receipt: \(receipt)") }
            for a in d["attempts"] as? [[String: Any]] ?? [] {
                let status = (a["status"] as? Int).map { " \($0)" } ?? ""
                let error = (a["error"] as? String).map { " — \($0)" } ?? ""
                print("  #\(a["number"] ?? "") replay \(a["replay"] ?? 0) \(a["started_at"] ?? "") \(a["outcome"] ?? "")\(status) \(wholeMilliseconds(a["duration_ms"]) ?? "0")ms\(error)")
            }
            return
        }
        var query: [String] = ["limit=\(limit)"]
        if let s = failedOnly ? "failed" : state { query.append("state=\(percentEncode(s))") }
        if let channel { query.append("channel=\(percentEncode(channel))") }
        if let incident { query.append("incident=\(percentEncode(incident))") }
        let answer = try await api.call("GET", "/v1/deliveries?" + query.joined(separator: "&"))
        if json { return printJSON(answer) }
        let rows = (answer as? [String: Any])?["deliveries"] as? [[String: Any]] ?? []
        if rows.isEmpty {
            print("no deliveries")
            return
        }
        var table = [["ID", "STATE", "CHANNEL", "INCIDENT", "KIND", "ATTEMPTS", "UPDATED", "LAST ERROR"]]
        for d in rows {
            table.append([
                "\(d["id"] ?? "")", "\(d["state"] ?? "")", "\(d["channel"] ?? "")", "\(d["incident"] ?? "")",
                "\(d["kind"] ?? "")", "\(d["attempts"] ?? 0)", "\(d["updated_at"] ?? "")",
                (d["last_error"] as? String).map { String($0.prefix(80)) } ?? "",
            ])
        }
        printTable(table)
    }
}

struct Incidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "incidents", abstract: "List incidents, or show one with its events and deliveries.")

    @OptionGroup var client: ClientOptions

    @Argument(help: "`show KEY` to show one incident.")
    var words: [String] = []

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if !(words.isEmpty || (words.count == 2 && words[0] == "show")) {
            throw ValidationError("expected `herald incidents` or `herald incidents show KEY`")
        }
    }

    func run() async throws {
        let api = ServerClient(options: client)
        if words.count == 2 {
            let answer = try await api.call("GET", "/v1/incidents/\(percentEncode(words[1]))")
            if json { return printJSON(answer) }
            guard let i = answer as? [String: Any] else { return }
            print("\(i["key"] ?? "") \(i["status"] ?? "") cycle \(i["cycle"] ?? 1): \(i["title"] ?? "")")
            print("opened \(i["opened_at"] ?? "")\((i["resolved_at"] as? String).map { ", resolved \($0)" } ?? "")")
            if let at = i["acknowledged_at"] as? String {
                print("acknowledged \(at)\((i["acknowledged_by"] as? String).map { " by \($0)" } ?? "")")
            }
            if let n = i["triggers"] as? Int, n > 1 {
                print("triggered \(n) times (repeats page nobody)\((i["last_seen_at"] as? String).map { ", last \($0)" } ?? "")")
            }
            var table = [["CHANNEL", "RECIPIENT", "NOTICE", "UPDATES", "ALL-CLEAR", "DELAY", "WHY NOT"]]
            func leg(_ l: [String: Any]?) -> String {
                guard let l else { return "-" }
                if let at = l["delivered_at"] as? String { return "\(l["kind"] as? String == "summary" ? "summary " : "")\(at)" }
                return "\(l["state"] ?? "")"
            }
            for r in i["recipients"] as? [[String: Any]] ?? [] {
                let notice = r["notice"] as? [String: Any]
                let clear = r["all_clear"] as? [String: Any]
                var why = (clear?["error"] as? String) ?? (notice?["error"] as? String) ?? ""
                if why.isEmpty, let silence = notice?["silenced_by"] as? String, notice?["state"] as? String != "delivered" {
                    why = "silenced by \(silence)" + ((notice?["silenced_until"] as? String).map { " until \($0)" } ?? "")
                }
                table.append(["\(r["channel"] ?? "")", (r["recipient"] as? String) ?? "-", leg(notice), "\(r["updates"] ?? 0)", leg(clear),
                              wholeMilliseconds(r["all_clear_delay_ms"]).map { "\($0) ms" } ?? "-", String(why.prefix(90))])
            }
            printTable(table)
            if let s = i["subscribers"] as? [String: Any], let counts = s["deliveries"] as? [String: Int] {
                print("subscribers (\(s["channel"] ?? "")): "
                      + counts.sorted { $0.key < $1.key }.map { "\($0.key.replacingOccurrences(of: ":", with: " ")) \($0.value)" }
                      .joined(separator: " · "))
            }
            return
        }
        let answer = try await api.call("GET", "/v1/incidents")
        if json { return printJSON(answer) }
        var table = [["INCIDENT", "STATUS", "SEVERITY", "OPENED", "RESOLVED", "TITLE"]]
        for i in (answer as? [String: Any])?["incidents"] as? [[String: Any]] ?? [] {
            table.append(["\(i["key"] ?? "")", "\(i["status"] ?? "")", "\(i["severity"] ?? "")", "\(i["opened_at"] ?? "")",
                          "\(i["resolved_at"] ?? "-")", "\(i["title"] ?? "")"])
        }
        printTable(table)
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-queue failed deliveries with a fresh retry budget (the old attempts are kept).",
        discussion: """
            Name delivery ids, or a filter: `herald replay --state failed --since 2h` replays every delivery \
            that failed in the last two hours. `herald replay --channel OLD --to NEW` sends OLD's waiting and \
            failed notices of open incidents to NEW instead (OLD was removed from the configuration, or its \
            endpoint is gone); their all-clears follow on NEW.
            """)

    @OptionGroup var client: ClientOptions

    @Argument(help: "Delivery ids.")
    var ids: [String] = []

    @Option(help: "Only failed deliveries can be replayed; `--state failed` selects all of them.")
    var state: String?

    @Option(help: "Only this channel.")
    var channel: String?

    @Option(help: "Only this incident key.")
    var incident: String?

    @Option(help: "Only deliveries created within this duration (2h, 30m) or since an RFC 3339 time.")
    var since: String?

    @Option(help: "Send --channel's waiting and failed notices of open incidents to this channel instead.")
    var to: String?

    @Flag(help: "Say what would be replayed without changing anything.")
    var dryRun = false

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if to != nil {
            guard channel != nil else { throw ValidationError("--to needs --channel: the channel whose notices go elsewhere") }
            guard ids.isEmpty && state == nil && incident == nil && since == nil else {
                throw ValidationError("--to moves every waiting or failed notice of --channel: no ids, --state, --incident or --since")
            }
            return
        }
        if ids.isEmpty && state == nil && channel == nil && incident == nil && since == nil {
            throw ValidationError("name delivery ids or a filter (--state failed replays every failed delivery)")
        }
        if let state, state != "failed" {
            throw ValidationError("--state: only failed deliveries can be replayed")
        }
        if !ids.isEmpty && (channel != nil || incident != nil || since != nil || dryRun) {
            throw ValidationError("give delivery ids or filters, not both")
        }
    }

    func run() async throws {
        let api = ServerClient(options: client)
        if !ids.isEmpty {
            for id in ids {
                let answer = try await api.call("POST", "/v1/deliveries/\(percentEncode(id))/replay")
                if json { printJSON(answer) } else { print("replayed \(id)") }
            }
            return
        }
        if let to, let channel {
            let answer = try await api.call("POST", "/v1/replay", body: ["channel": channel, "to": to, "dry_run": dryRun])
            if json { return printJSON(answer) }
            let result = answer as? [String: Any] ?? [:]
            let n = result["replayed"] as? Int ?? 0, left = result["skipped"] as? Int ?? 0
            print("\(dryRun ? "would send" : "sent") \(n) notices of \(channel) to \(to)"
                  + (left > 0 ? "; \(left) other deliveries of \(channel) left as they are (updates, all-clears, closed incidents)" : ""))
            return
        }
        var body: [String: Any] = ["state": "failed", "dry_run": dryRun]
        if let channel { body["channel"] = channel }
        if let incident { body["incident"] = incident }
        if let since { body["since"] = since }
        let answer = try await api.call("POST", "/v1/replay", body: body)
        if json { return printJSON(answer) }
        let n = (answer as? [String: Any])?["replayed"] as? Int ?? 0
        print(dryRun ? "would replay \(n) failed deliveries" : "replayed \(n) failed deliveries")
    }
}

func percentEncode(_ s: String) -> String {
    s.percentEncodedUnreserved
}

func printTable(_ rows: [[String]]) {
    guard let header = rows.first else { return }
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    for row in rows {
        let line = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        print(line.trimmingCharacters(in: .whitespaces))
    }
}

/// A millisecond figure from the server's JSON as whole digits; nil when absent or not a finite
/// number a clock could give (`Int(_:)` of NaN, infinity or 1e30 would trap).
func wholeMilliseconds(_ value: Any?) -> String? {
    guard let ms = (value as? NSNumber)?.doubleValue, ms.isFinite, abs(ms) < 1e15 else { return nil }
    return String(Int(ms))
}
