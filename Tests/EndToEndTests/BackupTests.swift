import Foundation
import HeraldTransport
import Synchronization
import Testing
import TestSupport

/// `herald backup --to FILE` against a running `herald serve` on SQLite, as an operator runs it
/// from cron: under load, the copy holds every delivery committed before the backup began, and a
/// second herald opens the copy and serves from it.
@Suite(.serialized) struct BackupTests {
    static let ingest = "backup-ingest-token-0123456789abc"
    static let admin = "backup-admin-token-0123456789abcd"

    func writeConfig(dir: URL, name: String, sink: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try """
            server:
              listen: 127.0.0.1:0
              drain_timeout: 2s
              max_body_bytes: 4194304
              tokens:
                - {name: monitoring, token: "\(Self.ingest)", scopes: [ingest]}
                - {name: ops, token: "\(Self.admin)", scopes: [admin]}
            retry: {initial: 100ms, max: 300ms, max_attempts: 1000, max_age: 1h}
            channels:
              hook: {type: webhook, url: "\(sink)/hook", concurrency: 8}
            routes:
              - channels: [hook]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// One Alertmanager call of `count` firing alerts, each its own incident.
    static func alerts(batch: Int, count: Int) -> [UInt8] {
        let alerts = (0..<count).map { i in
            #"{"status":"firing","labels":{"alertname":"DiskFull","instance":"db\#(batch)-\#(i)","severity":"critical"},"annotations":{"summary":"Disk full on db\#(batch)-\#(i)"},"startsAt":"2026-11-25T10:02:00Z","fingerprint":"b\#(batch)-\#(i)"}"#
        }
        return Array(#"{"version":"4","status":"firing","receiver":"herald","alerts":[\#(alerts.joined(separator: ","))]}"#.utf8)
    }

    /// Each delivery's incident and state in a SQLite file, read with Python's own sqlite3 module
    /// (not Herald's code, and present wherever the test peers run).
    static func deliveriesIn(_ file: String) throws -> [String: String] {
        let python = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "/usr/bin/python3"
        let script = """
            import json, sqlite3, sys
            db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
            print(json.dumps(dict(db.execute("SELECT incident, state FROM deliveries").fetchall())))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, file]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "python: \(errors)")
        return (try JSONSerialization.jsonObject(with: data) as? [String: String]) ?? [:]
    }

    final class Acks: Sendable {
        /// When each call's 202 arrived, and the incidents it created.
        let calls = Mutex<[(at: ContinuousClock.Instant, incidents: [String])]>([])
        func record(_ incidents: [String]) { calls.withLock { $0.append((ContinuousClock.now, incidents)) } }
        var count: Int { calls.withLock { $0.count } }
        func incidents(where keep: (ContinuousClock.Instant) -> Bool) -> [String] {
            calls.withLock { $0.filter { keep($0.at) }.flatMap(\.incidents) }
        }
    }

    @Test func aBackupUnderLoadHoldsEveryDeliveryCommittedBeforeItBegan() async throws {
        let dir = try temporaryDirectory("herald-backup")
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let config = try writeConfig(dir: dir, name: "herald.yaml", sink: sink.url)
        let store = dir.appendingPathComponent("herald.sqlite").path
        let herald = try HeraldProcess(["serve", "--config", config, "--store", store])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")

        // The load: 100 Alertmanager calls of 100 alerts, four at a time: 10,000 events, each
        // a new incident with one delivery to the webhook, which is sending them meanwhile.
        let calls = 100, perCall = 100, senders = 4
        let acks = Acks()
        let client = CurlTransport()
        defer { client.shutdown() }
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sender in 0..<senders {
                    group.addTask {
                        for batch in stride(from: sender, to: calls, by: senders) {
                            let response = try await client.send(HTTPRequest(
                                url: "http://127.0.0.1:\(port)/v1/hooks/alertmanager",
                                headers: [("Authorization", "Bearer \(Self.ingest)"), ("Content-Type", "application/json")],
                                body: Self.alerts(batch: batch, count: perCall), timeout: .seconds(120)))
                            #expect(response.status == 202, "\(response.bodyText)")
                            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                            acks.record(json?["incidents"] as? [String] ?? [])
                        }
                    }
                }
                try await group.waitForAll()
            }
        }

        // A third of the way in, back up while the load goes on.
        #expect(await eventually(timeout: .seconds(300)) { acks.count >= calls / 3 })
        let copy = dir.appendingPathComponent("copy.sqlite").path
        let began = ContinuousClock.now
        let backup = try await HeraldBinary.run(["backup", "--to", copy, "--server", "http://127.0.0.1:\(port)", "--token", Self.admin],
                                                timeout: .seconds(300))
        let ended = ContinuousClock.now
        #expect(backup.0 == 0, "herald backup: \(backup)")
        try await load.value

        let before = acks.incidents { $0 < began }
        let during = acks.incidents { $0 >= began && $0 <= ended }
        let after = acks.incidents { $0 > ended }
        print("backup: \(backup.1.trimmingCharacters(in: .newlines)); wall \(ended - began); committed before it \(before.count), "
              + "during it \(during.count), after it \(after.count); delivered by the sink so far \(sink.received.count)")
        #expect(before.count + during.count + after.count == calls * perCall)
        #expect(before.count >= calls / 3 * perCall)
        // The backup really ran under load: events were still being accepted once it ended.
        #expect(!after.isEmpty || !during.isEmpty, "the load had finished before the backup: nothing was tested")

        // Every delivery committed before the backup began is in the copy.
        let copied = try Self.deliveriesIn(copy)
        let missing = before.filter { copied[$0] == nil }
        #expect(missing.isEmpty, "\(missing.count) committed deliveries are missing from the copy, e.g. \(missing.prefix(3))")
        #expect(Set(copied.keys).isSubset(of: Set(before + during + after)))
        #expect(backup.1.contains("backed up \(copied.count) deliveries"), "\(backup.1)")
        let states = Dictionary(grouping: copied.values, by: { $0 }).mapValues(\.count)
        print("backup: states in the copy \(states.sorted { $0.key < $1.key })")

        // The live store goes on, untouched: all 10,000 are delivered, each once.
        #expect(await eventually(timeout: .seconds(300)) { Set(sink.received.compactMap { $0.headers["webhook-id"] }).count >= calls * perCall })
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: copy + ".partial"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".herald-backup-") }
        #expect(leftovers.isEmpty, "the server left its temporary copy behind: \(leftovers)")

        // A second herald opens the copy, answers ready, reports what it holds, and sends what was
        // still waiting in it when the backup was taken (as a restore after a crash would).
        let secondSink = TestSink()
        try await secondSink.start()
        defer { Task { await secondSink.stop() } }
        let secondConfig = try writeConfig(dir: dir, name: "second.yaml", sink: secondSink.url)
        let second = try HeraldProcess(["serve", "--config", secondConfig, "--store", copy])
        let secondPort = try #require(await second.waitForPort(), "herald did not start on the copy: \(second.stderr)")
        let ready = try await client.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(secondPort)/readyz"))
        #expect(ready.status == 200)
        let key = try #require(before.first)
        let incident = try await client.send(HTTPRequest(
            method: "GET", url: "http://127.0.0.1:\(secondPort)/v1/incidents/\(key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)",
            headers: [("Authorization", "Bearer \(Self.admin)")]))
        #expect(incident.status == 200 && incident.bodyText.contains(key), "\(incident.status) \(incident.bodyText.prefix(300))")
        let waiting = copied.filter { $0.value != "delivered" }.count
        #expect(await eventually(timeout: .seconds(300)) {
            Set(secondSink.received.compactMap { $0.headers["webhook-id"] }).count >= waiting
        }, "the copy's \(waiting) waiting deliveries were not sent: \(secondSink.received.count)")
        // And it takes new events.
        let fresh = try await client.send(HTTPRequest(
            url: "http://127.0.0.1:\(secondPort)/v1/hooks/alertmanager",
            headers: [("Authorization", "Bearer \(Self.ingest)"), ("Content-Type", "application/json")],
            body: Self.alerts(batch: 999, count: 1)))
        #expect(fresh.status == 202)
        second.signal(SIGTERM)
        #expect(await second.waitForExit() == 0)
    }

    /// What the command refuses, with the exit codes scripts rely on.
    @Test func refusalsAndTheirExitCodes() async throws {
        let dir = try temporaryDirectory("herald-backup")
        let config = try writeConfig(dir: dir, name: "herald.yaml", sink: "http://127.0.0.1:\(closedPort())")
        let herald = try HeraldProcess(["serve", "--config", config, "--store", dir.appendingPathComponent("herald.sqlite").path])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let server = ["--server", "http://127.0.0.1:\(port)"]
        let copy = dir.appendingPathComponent("copy.sqlite").path

        // An ingest token is not enough: 403, exit 3, and no file.
        let wrongScope = try await HeraldBinary.run(["backup", "--to", copy, "--token", Self.ingest] + server)
        #expect(wrongScope.0 == 3 && wrongScope.2.contains("403"), "\(wrongScope)")
        #expect(!FileManager.default.fileExists(atPath: copy) && !FileManager.default.fileExists(atPath: copy + ".partial"))
        // A file already there is kept unless --force.
        try "precious".write(toFile: copy, atomically: true, encoding: .utf8)
        let exists = try await HeraldBinary.run(["backup", "--to", copy, "--token", Self.admin] + server)
        #expect(exists.0 == 1 && exists.2.contains("exists (use --force"), "\(exists)")
        #expect(try String(contentsOfFile: copy, encoding: .utf8) == "precious")
        let forced = try await HeraldBinary.run(["backup", "--to", copy, "--force", "--token", Self.admin] + server)
        #expect(forced.0 == 0 && forced.1.contains("backed up 0 deliveries"), "\(forced)")
        // Nobody listening: exit 4 once --wait runs out.
        let unreachable = try await HeraldBinary.run(["backup", "--to", copy + "2", "--token", Self.admin, "--wait", "1",
                                                      "--server", "http://127.0.0.1:\(closedPort())"])
        #expect(unreachable.0 == 4, "\(unreachable)")
        // A directory that does not exist: exit 1.
        let nowhere = try await HeraldBinary.run(["backup", "--to", dir.path + "/no/such/dir/copy.sqlite", "--token", Self.admin] + server)
        #expect(nowhere.0 == 1 && nowhere.2.contains("cannot write"), "\(nowhere)")
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        #expect(!herald.stderr.contains(Self.admin))
    }

    /// On PostgreSQL the server refuses and names the tool to use instead.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"] != nil,
                   "set HERALD_TEST_POSTGRES_URL (scripts/test starts a server) to run against PostgreSQL"))
    func aPostgreSQLStoreIsRefusedWithThePgDumpHint() async throws {
        let server = try #require(ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"])
        let name = "herald_backup_\(UUID().uuidString.prefix(8).lowercased())"
        let psql = ["/usr/bin/psql", "/usr/local/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "psql"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: psql)
        p.arguments = [server, "-q", "-c", "CREATE DATABASE \(name)"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "psql could not create the database")
        let url = server.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/") + "/" + name
        let dir = try temporaryDirectory("herald-backup")
        let config = try writeConfig(dir: dir, name: "herald.yaml", sink: "http://127.0.0.1:\(closedPort())")
        let herald = try HeraldProcess(["serve", "--config", config, "--store", url, "--migrate"])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let copy = dir.appendingPathComponent("copy.sqlite").path
        let r = try await HeraldBinary.run(["backup", "--to", copy, "--token", Self.admin, "--server", "http://127.0.0.1:\(port)"])
        #expect(r.0 == 3 && r.2.contains("409") && r.2.contains("pg_dump"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: copy) && !FileManager.default.fileExists(atPath: copy + ".partial"))
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
    }
}
