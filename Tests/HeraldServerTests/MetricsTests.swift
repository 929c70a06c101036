import Foundation
import HeraldCore
import HeraldStore
import HeraldTransport
import Logging
import Testing
import TestSupport
@testable import HeraldServer
@testable import HeraldSQLite

/// /metrics as a Prometheus user sees it: valid for `promtool check metrics`, a HELP on every
/// family, the process metrics and the build info; and the shipped alerting rules and dashboard
/// refer to what Herald exposes.
@Suite(.serialized) struct MetricsTests {
    static let ingestToken = "metrics-ingest-token-0123456789"
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `promtool` from Debian's `prometheus` package (CI installs it). Without it the checks that
    /// need it are skipped locally, and fail in CI.
    static let promtool: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin")
        .split(separator: ":").map { "\($0)/promtool" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    static func requirePromtool() -> String? {
        if promtool == nil, ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("promtool is not installed (apt-get install prometheus): CI must check the metrics and the rules")
        }
        return promtool
    }

    /// Runs promtool with `input` on standard input: exit status and everything it printed.
    static func runPromtool(_ arguments: [String], input: String = "") throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool!)
        process.arguments = arguments
        process.currentDirectoryURL = root
        let dir = try temporaryDirectory("herald-promtool")
        let inPath = dir.appendingPathComponent("in").path
        let outPath = dir.appendingPathComponent("out").path
        FileManager.default.createFile(atPath: inPath, contents: Data(input.utf8))
        FileManager.default.createFile(atPath: outPath, contents: nil)
        process.standardInput = FileHandle(forReadingAtPath: inPath)
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: outPath)
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "")
    }

    func scrape(_ client: CurlTransport, _ base: String) async throws -> String {
        try await client.send(HTTPRequest(method: "GET", url: base + "/metrics", timeout: .seconds(10))).bodyText
    }

    /// A running server that has sent a notice and its all-clear, scraped: every family has HELP
    /// and TYPE, promtool finds no problem, the queue depth is the waiting states only, the
    /// all-clear delay was observed, and the process metrics are this process's.
    @Test func metricsPassPromtoolWithHelpProcessMetricsAndBuildInfo() async throws {
        let sink = TestSink()
        try await sink.start()
        let dir = try temporaryDirectory()
        let config = try ConfigLoader.load(yaml: """
            server:
              listen: 127.0.0.1:0
              tokens: [{name: monitoring, token: "\(Self.ingestToken)", scopes: [ingest]}]
            store: {path: \(dir.path)/herald.sqlite}
            channels:
              metrics-hook: {type: webhook, url: "\(sink.url)/in"}
            routes:
              - channels: [metrics-hook]
            """, file: "metrics.yaml")
        var logger = Logger(label: "metrics-test")
        logger.logLevel = .critical
        let app = try HeraldApplication(config: config, logger: logger, console: { _ in })
        let task = Task { try await app.run() }
        // The registry is the whole test process's: far past the transport's default 64 KiB cap.
        let client = CurlTransport(maxResponseBytes: 16 << 20)
        defer {
            task.cancel()
            client.shutdown()
            Task { await sink.stop() }
        }
        #expect(await eventually(timeout: .seconds(60)) { app.port != 0 }, "the server did not start listening")
        let base = "http://127.0.0.1:\(app.port)"
        for status in ["triggered", "resolved"] {
            var request = HTTPRequest(method: "POST", url: base + "/v1/events", timeout: .seconds(10))
            request.headers = [(name: "Authorization", value: "Bearer \(Self.ingestToken)"), (name: "Content-Type", value: "application/json")]
            request.body = Array(#"{"incident":"m1","status":"\#(status)","severity":"critical","title":"metrics"}"#.utf8)
            #expect(try await client.send(request).status == 202)
            #expect(await sink.waitFor(count: status == "triggered" ? 1 : 2))
        }
        var text = ""
        #expect(try await eventually {
            text = try await scrape(client, base)
            return text.contains(#"herald_allclear_delay_seconds_count{channel="metrics-hook"} 1"#)
        }, "the all-clear's delay was never observed:\n\(text)")

        // Every family has one HELP and one TYPE line.
        let lines = text.split(separator: "\n").map(String.init)
        let typed = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(lines.filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(!typed.isEmpty && typed == helped, "families without HELP: \(typed.subtracting(helped))")
        for family in ["herald_events_received_total", "herald_deliveries_total", "herald_attempt_duration_seconds",
                       "herald_allclear_delay_seconds", "herald_queue_depth", "herald_build_info",
                       "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                       "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
            #expect(typed.contains(Substring(family)), "\(family) is missing")
        }
        #expect(text.contains("herald_build_info{version=\"\(HeraldVersion.current)\"} 1"))
        // The queue depth is waiting work only: the delivered history is never counted per scrape.
        let depthStates = Set(lines.filter { $0.hasPrefix("herald_queue_depth{") }.compactMap { $0.split(separator: "\"").dropFirst().first })
        #expect(depthStates == ["queued", "retrying", "in_flight", "silenced"])
        // The metrics registry is the process's: this test's channel name is its own.
        #expect(lines.contains(#"herald_deliveries_total{channel="metrics-hook",outcome="delivered"} 2"#),
                "\(lines.filter { $0.contains("deliveries_total") })")
        // The process metrics are this process's own.
        func value(_ name: String) -> Double? {
            lines.first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        let start = try #require(value("process_start_time_seconds"))
        #expect(start <= Date().timeIntervalSince1970 && start > Date().timeIntervalSince1970 - 24 * 3600)
        #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((value("process_virtual_memory_bytes") ?? 0) >= (value("process_resident_memory_bytes") ?? 0))
        #expect((value("process_open_fds") ?? 0) > 3 && (value("process_max_fds") ?? 0) >= (value("process_open_fds") ?? 0))
        #expect((value("process_cpu_seconds_total") ?? 0) > 0)

        if Self.requirePromtool() != nil {
            let (status, output) = try Self.runPromtool(["check", "metrics"], input: text)
            #expect(status == 0 && output.isEmpty, "promtool check metrics:\n\(output)\n--- the scrape:\n\(text)")
        }
    }

    /// The shipped alerting rules load, and their unit tests (each alert fires on the series that
    /// should page and stays quiet on a healthy one) pass.
    @Test func alertingRulesPassPromtool() throws {
        guard Self.requirePromtool() != nil else { return }
        let check = try Self.runPromtool(["check", "rules", "examples/prometheus-rules.yaml"])
        #expect(check.0 == 0, "\(check.1)")
        let test = try Self.runPromtool(["test", "rules", "examples/prometheus-rules.test.yaml"])
        #expect(test.0 == 0 && test.1.contains("SUCCESS"), "\(test.1)")
    }

    /// Every metric the dashboard and the rules query is one Herald exposes (or Prometheus' own `up`).
    @Test func dashboardAndRulesQueryMetricsThatExist() throws {
        let known: Set<String> = Set(HeraldMetrics.help.keys).union([
            "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
            "process_open_fds", "process_max_fds", "process_start_time_seconds", "up",
        ])
        let dashboard = try String(contentsOf: Self.root.appendingPathComponent("examples/grafana-dashboard.json"), encoding: .utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(dashboard.utf8)) as? [String: Any])
        let panels = try #require(json["panels"] as? [[String: Any]])
        let exprs = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(exprs.count >= 10)
        let rules = try String(contentsOf: Self.root.appendingPathComponent("examples/prometheus-rules.yaml"), encoding: .utf8)
        let pattern = try Regex(#"\b(herald_[a-z_]+|process_[a-z_]+)"#)
        var used: Set<String> = []
        for text in exprs + [rules] {
            for match in text.matches(of: pattern) {
                var name = String(text[match.range])
                for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) && !known.contains(name) {
                    name = String(name.dropLast(suffix.count))
                }
                used.insert(name)
            }
        }
        #expect(used.contains("herald_allclear_delay_seconds") && used.contains("herald_queue_depth"))
        #expect(used.subtracting(known).isEmpty, "queried but not exposed: \(used.subtracting(known))")
    }

    /// A retention pass removes old history, counts it in /metrics, and hands SQLite's freed pages
    /// back.
    @Test func aRetentionPassPrunesAndIsCounted() async throws {
        HeraldMetrics.bootstrap()
        let dir = try temporaryDirectory()
        let store = try SQLiteStore(path: dir.appendingPathComponent("h.sqlite").path)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<300 {
            _ = try await store.enqueue([EnqueueRequest(event: makeEvent("old\(i)", .triggered, at: t0), channels: ["a"])], now: t0)
            _ = try await store.enqueue([EnqueueRequest(event: makeEvent("old\(i)", .resolved, at: t0), channels: ["a"])], now: t0)
        }
        // The summaries that replaced the notices are delivered: nothing waits.
        while true {
            let claimed = try await store.claim(channel: "a", limit: 500, now: t0, owner: "t", leaseUntil: t0.addingTimeInterval(60))
            if claimed.isEmpty { break }
            try await store.record(claimed.map {
                AttemptRecord(deliveryId: $0.delivery.id, lease: $0.lease, startedAt: t0, duration: .zero,
                              outcome: .delivered(reference: nil), status: 200)
            }, now: t0)
        }
        let before = HeraldMetrics.registry.emitToString()
        var logger = Logger(label: "retention-test")
        logger.logLevel = .critical
        let service = RetentionService(store: store, retention: { RetentionConfig() }, logger: logger)
        var retention = RetentionConfig()
        retention.batch = 50
        retention.pause = .zero
        await service.pass(now: t0.addingTimeInterval(400 * 86_400), retention: retention)
        #expect(try await store.deliveries(DeliveryFilter()).isEmpty)
        #expect(try await store.incidents(limit: 10).isEmpty)
        let after = HeraldMetrics.registry.emitToString()
        func count(_ text: String, _ table: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix("herald_pruned_rows_total{table=\"\(table)\"}") }
                .flatMap { Double($0.split(separator: " ").last!) } ?? 0
        }
        // Each incident: a notice superseded by its resolve and the summary that replaced it, two events.
        #expect(count(after, "deliveries") - count(before, "deliveries") == 600)
        #expect(count(after, "events") - count(before, "events") == 600)
        #expect(count(after, "incidents") - count(before, "incidents") == 300)
        #expect(try await store.reclaimSpace(pages: 1) == 0, "the pass gave every free page back")
    }
}
