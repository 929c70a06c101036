import Foundation
import Synchronization
import Testing
import TestSupport

private let postgresTestServer = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"]

/// `herald migrate` and `herald serve` on PostgreSQL, as an operator meets them: an unreachable
/// database, an un-migrated one, migrating, and two nodes sharing one database.
@Suite(.serialized, .enabled(if: postgresTestServer != nil,
                             "set HERALD_TEST_POSTGRES_URL (scripts/test starts a server) to run against PostgreSQL"))
struct PostgresCLITests {
    static let serverURL = postgresTestServer

    /// A new, empty database on the test server; answers its URL.
    func freshDatabase() async throws -> String {
        let server = try #require(Self.serverURL)
        let name = "herald_cli_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try psql(server, "CREATE DATABASE \(name)")
        let base = server.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return "\(base)/\(name)"
    }

    /// A node's config in a new folder of its own: answers its path.
    func config(storeURL: String, sink: String, rate: Int? = nil) throws -> String {
        let path = try temporaryDirectory("herald-pg-cli").appendingPathComponent("herald.yaml").path
        try """
            server:
              listen: 127.0.0.1:0
              drain_timeout: 2s
              tokens:
                - {name: monitoring, token: pg-cli-ingest-token-0123456789, scopes: [ingest]}
                - {name: ops, token: pg-cli-admin-token-0123456789, scopes: [admin]}
            store: {url: "\(storeURL)", lease_margin: 2s}
            retry: {initial: 100ms, max: 300ms, max_attempts: 20, max_age: 1h}
            channels:
              hook: {type: webhook, url: "\(sink)/hook"\(rate.map { ", rate_per_second: \($0)" } ?? "")}
            routes:
              - channels: [hook]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func anUnreachableDatabaseIsAClearErrorWithoutThePassword() async throws {
        let url = "postgres://herald:Sup3rSecretPw@127.0.0.1:\(closedPort())/herald?connect_timeout=2"
        let (status, out, err) = try await HeraldBinary.run(["migrate", "--store", url])
        #expect(status == 1)
        #expect(err.contains("cannot open store"), "stderr: \(err)")
        #expect(!(out + err).contains("Sup3rSecretPw"))
        let cfg = try config(storeURL: url, sink: "http://127.0.0.1:9")
        let (serveStatus, serveOut, serveErr) = try await HeraldBinary.run(["serve", "--config", cfg], timeout: .seconds(30))
        #expect(serveStatus == 1)
        #expect(serveErr.contains("cannot open store"), "stderr: \(serveErr)")
        #expect(!(serveOut + serveErr).contains("Sup3rSecretPw"))
    }

    @Test func serveRefusesAnUnmigratedDatabaseUntilMigrated() async throws {
        let url = try await freshDatabase()
        let cfg = try config(storeURL: url, sink: "http://127.0.0.1:9")
        let (status, _, err) = try await HeraldBinary.run(["serve", "--config", cfg], timeout: .seconds(30))
        #expect(status == 1)
        #expect(err.contains("herald migrate"), "stderr: \(err)")

        let first = try await HeraldBinary.run(["migrate", "--store", url])
        #expect(first.0 == 0)
        #expect(first.1.contains("migrated schema from version 0 to 6"), "\(first)")
        let again = try await HeraldBinary.run(["migrate", "--config", cfg])
        #expect(again.0 == 0)
        #expect(again.1.contains("up to date"), "\(again)")

        let herald = try HeraldProcess(["serve", "--config", cfg])
        #expect(await herald.waitForPort() != nil, "herald did not start on the migrated database: \(herald.stderr)")
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
    }

    @Test func twoNodesShareTheWorkAndAResolveOnOneClearsWhatTheOtherSent() async throws {
        let url = try await freshDatabase()
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let cfg = try config(storeURL: url, sink: sink.url)
        let a = try HeraldProcess(["serve", "--config", cfg, "--migrate"])
        let portA = try #require(await a.waitForPort(), "node A did not start: \(a.stderr)")
        let b = try HeraldProcess(["serve", "--config", cfg])
        let portB = try #require(await b.waitForPort(), "node B did not start: \(b.stderr)")
        defer { a.signal(SIGKILL); b.signal(SIGKILL) }

        func send(_ port: Int, _ args: [String]) async throws {
            let (status, out, err) = try await HeraldBinary.run(
                ["send", "--server", "http://127.0.0.1:\(port)", "--token", "pg-cli-ingest-token-0123456789", "--wait", "2"] + args)
            #expect(status == 0, "send failed: \(out) \(err)")
        }
        for i in 0..<20 {
            try await send(i % 2 == 0 ? portA : portB, ["--incident", "inc-\(i)", "--status", "triggered", "--title", "Outage \(i)"])
        }
        #expect(await sink.waitFor(count: 20, timeout: .seconds(20)))
        let notices = sink.received.compactMap { $0.headers["webhook-id"] }
        #expect(Set(notices).count == 20, "each notice once: \(notices.count) requests, \(Set(notices).count) distinct")

        // Resolve on the node that did not take the trigger: the all-clear threads onto the notice.
        try await send(portB, ["--incident", "inc-0", "--status", "resolved", "--title", "Outage 0"])
        #expect(await sink.waitFor(count: 21, timeout: .seconds(10)))
        let clear = try #require(sink.received.first { $0.json?["kind"] as? String == "all_clear" })
        let notice = try #require(sink.received.first {
            ($0.json?["incident"] as? [String: Any])?["key"] as? String == "inc-0" && $0.json?["kind"] as? String == "notice"
        })
        #expect(clear.json?["thread"] as? String == notice.headers["webhook-id"])
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(await a.waitForExit() == 0)
        #expect(await b.waitForExit() == 0)
    }

    @Test func aChannelsRateLimitHoldsForTheClusterNotPerNode() async throws {
        let url = try await freshDatabase()
        let arrivals = Mutex<[Date]>([])
        let sink = TestSink { _, _ in
            arrivals.withLock { $0.append(Date()) }
            return .ok
        }
        try await sink.start()
        defer { Task { await sink.stop() } }
        let cfg = try config(storeURL: url, sink: sink.url, rate: 4)
        let a = try HeraldProcess(["serve", "--config", cfg, "--migrate"])
        let portA = try #require(await a.waitForPort(), "node A did not start: \(a.stderr)")
        let b = try HeraldProcess(["serve", "--config", cfg])
        let portB = try #require(await b.waitForPort(), "node B did not start: \(b.stderr)")
        defer { a.signal(SIGKILL); b.signal(SIGKILL) }
        for i in 0..<16 {
            let (status, out, err) = try await HeraldBinary.run(
                ["send", "--server", "http://127.0.0.1:\(i % 2 == 0 ? portA : portB)", "--token", "pg-cli-ingest-token-0123456789",
                 "--incident", "paced-\(i)", "--status", "triggered", "--title", "Paced \(i)"])
            #expect(status == 0, "send failed: \(out) \(err)")
        }
        #expect(await sink.waitFor(count: 16, timeout: .seconds(20)))
        let times = arrivals.withLock { $0 }.sorted()
        // 4 per second for the cluster: a burst of 4, then 12 more take about 3 s. Two nodes each
        // keeping 4 per second would be done in about 1 s.
        let span = try #require(times.last).timeIntervalSince(try #require(times.first))
        #expect(span >= 2.5, "16 deliveries at 4/s across two nodes arrived within \(span) s")
    }

    @Test func twoNodesPostEachMaintenanceStepOnce() async throws {
        let url = try await freshDatabase()
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let cfg = try config(storeURL: url, sink: sink.url)
        let a = try HeraldProcess(["serve", "--config", cfg, "--migrate"])
        let portA = try #require(await a.waitForPort(), "node A did not start: \(a.stderr)")
        defer { a.signal(SIGKILL) }
        func admin(_ port: Int, _ args: [String]) async throws -> String {
            let (status, out, err) = try await HeraldBinary.run(
                ["maintenance"] + args + ["--server", "http://127.0.0.1:\(port)", "--token", "pg-cli-admin-token-0123456789"])
            #expect(status == 0, "herald maintenance \(args.first ?? "") failed: \(out) \(err)")
            return out
        }
        let start = Date().addingTimeInterval(4)
        let scheduled = try await admin(portA, ["schedule", "--title", "Failover drill", "--components", "db",
                                                "--from", ISO8601DateFormatter().string(from: start), "--duration", "1h",
                                                "--reminder", "0s"])
        let id = try #require(scheduled.split(separator: " ").first.map(String.init))
        #expect(await sink.waitFor(count: 1))
        // Node B starts after the announcement: both nodes now wait for the same start, and both
        // post it; the step's key lets one through.
        let b = try HeraldProcess(["serve", "--config", cfg])
        let portB = try #require(await b.waitForPort(), "node B did not start: \(b.stderr)")
        defer { b.signal(SIGKILL) }
        #expect(await sink.waitFor(count: 2, timeout: .seconds(20)))
        _ = try await admin(portB, ["cancel", id])
        #expect(await sink.waitFor(count: 3))
        // A later maintenance's announcement must arrive after any repeat of the first's steps.
        _ = try await admin(portB, ["schedule", "--title", "Later", "--components", "db",
                                    "--from", ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600)), "--duration", "1h"])
        #expect(await sink.waitFor(count: 4))
        let steps = sink.received.compactMap { r -> String? in
            guard let event = r.json?["event"] as? [String: Any], let labels = event["labels"] as? [String: String] else { return nil }
            return "\(labels["maintenance"] == id ? "first" : "later"):\(labels["step"] ?? "?")"
        }
        #expect(steps == ["first:announced", "first:started", "first:completed", "later:announced"])
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(await a.waitForExit() == 0)
        #expect(await b.waitForExit() == 0)
    }

    /// The database's answer to `sql` (psql, unaligned, tuples only).
    func psql(_ url: String, _ sql: String) throws -> String {
        let psql = ["/usr/bin/psql", "/usr/local/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "psql"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: psql)
        p.arguments = [url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "psql failed: \(sql)")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A sent message whose outcome the database refuses for a while (here a trigger fails the
    /// attempt's insert, as a full disk or a restart would fail the commit) is recorded when the
    /// database takes it again, within its lease — not left in flight to be sent a second time when
    /// the lease runs out. The all-clear, which waits for its notice's outcome, arrives after it;
    /// the notice was sent once.
    @Test func anOutcomeTheDatabaseRefusesForAWhileIsRecordedAndNotSentTwice() async throws {
        let url = try await freshDatabase()
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let cfg = try config(storeURL: url, sink: sink.url)
        #expect(try await HeraldBinary.run(["migrate", "--store", url]).0 == 0)
        _ = try psql(url, """
            CREATE TABLE test_refuse (refuse bool NOT NULL);
            INSERT INTO test_refuse VALUES (true);
            CREATE SEQUENCE test_refusals;
            CREATE FUNCTION test_refuse_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT refuse FROM test_refuse) THEN
                    PERFORM nextval('test_refusals');
                    RAISE EXCEPTION 'could not extend file (test)' USING ERRCODE = '53100';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse BEFORE INSERT ON attempts FOR EACH ROW EXECUTE FUNCTION test_refuse_attempts();
            """)
        let herald = try HeraldProcess(["serve", "--config", cfg])
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        defer { herald.signal(SIGKILL) }
        func send(_ status: String) async throws {
            let (code, out, err) = try await HeraldBinary.run(
                ["send", "--server", "http://127.0.0.1:\(port)", "--token", "pg-cli-ingest-token-0123456789", "--wait", "2",
                 "--incident", "db", "--status", status, "--title", "Database down"])
            #expect(code == 0, "send failed: \(out) \(err)")
        }
        try await send("triggered")
        #expect(await sink.waitFor(count: 1, timeout: .seconds(20)))
        // The outcome was refused, and tried again.
        var refusals = 0
        for _ in 0..<200 where refusals < 2 {
            refusals = Int(try psql(url, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM test_refusals")) ?? 0
            if refusals < 2 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(refusals >= 2, "the outcome was not tried again after the database refused it")
        _ = try psql(url, "UPDATE test_refuse SET refuse = false")
        try await send("resolved")
        #expect(await sink.waitFor(count: 2, timeout: .seconds(20)))
        let kinds = sink.received.map { $0.json?["kind"] as? String ?? "?" }
        #expect(kinds == ["notice", "all_clear"], "\(kinds)")
        #expect(sink.received.last?.json?["thread"] as? String == sink.received.first?.headers["webhook-id"])
        #expect(try psql(url, "SELECT state || ' ' || attempts FROM deliveries WHERE kind = 'notice'") == "delivered 1")
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
    }
}
