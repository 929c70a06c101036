import ArgumentParser
import Foundation
import HeraldCore

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send an incident event to a running Herald (for monitoring hooks and scripts).",
        discussion: """
            Status accepts the words monitoring tools pass: PROBLEM/firing/trigger → triggered;
            RECOVERY/OK/resolve → resolved; ACKNOWLEDGEMENT → acknowledged; FLAPPINGSTART,
            FLAPPINGSTOP, FLAPPINGDISABLED, DOWNTIMESTART, DOWNTIMEEND, DOWNTIMECANCELLED and CUSTOM →
            updated (threaded to those already told; nobody new is paged). A repeated PROBLEM of an
            open incident pages nobody again. A retry after a lost answer is safe: each invocation
            sends one Idempotency-Key.

            Nagios/Icinga notification command:
              herald send --incident "$HOSTNAME$/$SERVICEDESC$" --status "$NOTIFICATIONTYPE$" \\
                --title "$SERVICEDESC$ on $HOSTNAME$ is $SERVICESTATE$" --message "$SERVICEOUTPUT$" \\
                --actor "$NOTIFICATIONAUTHOR$"
            """)

    @OptionGroup var client: ClientOptions

    @Option(help: "Incident key (the dedup key: the same key for every event of one incident).")
    var incident: String

    @Option(help: "triggered, updated, acknowledged or resolved (monitoring tools' words accepted, see above).")
    var status: String

    @Option(help: "One-line title.")
    var title: String

    @Option(help: "critical, major, minor or info.")
    var severity: String?

    @Option(help: "What is known.")
    var message: String?

    @Option(name: .customLong("component"), help: "An affected component (repeatable).")
    var components: [String] = []

    @Option(name: .customLong("label"), help: "A label as key=value (repeatable).")
    var labels: [String] = []

    @Option(help: "A link to more information.")
    var link: String?

    @Option(help: "Who is acting (an acknowledgement's author); empty or absent: the token's name.")
    var actor: String?

    @Option(help: "Idempotency key (default: a fresh one per invocation).")
    var idempotencyKey: String?

    @Flag(help: "Print the server's JSON answer.")
    var json = false

    func validate() throws {
        guard EventStatus(alias: status) != nil else {
            throw ValidationError("--status: unknown status \"\(status)\" (expected \(EventStatus.expected))")
        }
        if let severity, Severity(alias: severity) == nil {
            throw ValidationError("--severity: unknown severity \"\(severity)\" (expected critical, major, minor or info)")
        }
        for label in labels where !label.contains("=") || label.hasPrefix("=") {
            throw ValidationError("--label: expected key=value, got \"\(label)\"")
        }
    }

    func run() async throws {
        var body: [String: Any] = [
            "incident": incident,
            "status": EventStatus(alias: status)!.rawValue,
            "title": title,
        ]
        if let severity { body["severity"] = Severity(alias: severity)!.rawValue }
        if let message, !message.isEmpty { body["message"] = message }
        if !components.isEmpty { body["components"] = components }
        if let link { body["link"] = link }
        if let actor, !actor.isEmpty { body["actor"] = actor }
        if !labels.isEmpty {
            var map: [String: String] = [:]
            for label in labels {
                let parts = label.split(separator: "=", maxSplits: 1)
                map[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            body["labels"] = map
        }
        let key = idempotencyKey ?? Identifier.make(prefix: "send")
        let answer = try await ServerClient(options: client).call("POST", "/v1/events", body: body,
                                                                    headers: [("Idempotency-Key", key)])
        if json {
            printJSON(answer)
        } else if let a = answer as? [String: Any] {
            print("accepted \(a["event_id"] ?? "?") for incident \(a["incident"] ?? incident): \(a["deliveries"] ?? 0) deliveries")
        }
    }
}
