import Foundation
import Testing
import TestSupport

/// `herald maintenance` as an operator runs it: a window scheduled an hour ahead is announced,
/// listed, is a silence (`herald silence list` shows it), and is cancelled before it begins.
@Suite(.serialized) struct MaintenanceCLITests {
    let e2e = EndToEndTests()

    @Test func aWindowIsScheduledListedAsASilenceAndCancelled() async throws {
        let dir = try temporaryDirectory("herald-maintenance")
        let sink = TestSink()
        try await sink.start()
        let config = try e2e.writeConfig(dir: dir, sinkURL: sink.url + "/hook")
        let herald = try e2e.serve(config, dir: dir)
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let from = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        let window = ["--from", from, "--components", "web,api", "--title", "Database upgrade"]

        let neither = try await e2e.cli(["maintenance", "schedule"] + window, port: port, token: EndToEndTests.admin)
        #expect(neither.0 == 2 && neither.2.contains("--duration"), "\(neither)")
        let both = try await e2e.cli(["maintenance", "schedule"] + window + ["--duration", "2h", "--until", "2099-01-01T00:00:00Z"],
                                     port: port, token: EndToEndTests.admin)
        #expect(both.0 == 2 && both.2.contains("--duration"), "\(both)")
        let unknown = try await e2e.cli(["maintenance", "schedule"] + window + ["--duration", "2h", "--silence", "nowhere"],
                                        port: port, token: EndToEndTests.admin)
        #expect(unknown.0 == 3 && unknown.2.contains("silence[0]"), "\(unknown)")

        let scheduled = try await e2e.cli(["maintenance", "schedule"] + window + ["--duration", "2h", "--silence", "hook"],
                                          port: port, token: EndToEndTests.admin)
        #expect(scheduled.0 == 0, "\(scheduled.2)")
        let id = try #require(scheduled.1.split(separator: " ").first.map(String.init))
        #expect(id.hasPrefix("mnt_") && scheduled.1.contains("scheduled"), "\(scheduled.1)")
        // Announced at once, through the routes, as an event of its own incident.
        #expect(await sink.waitFor(count: 1, timeout: .seconds(30)))
        let announced = sink.received.first?.json?["event"] as? [String: Any]
        #expect(announced?["incident"] as? String == "maintenance:\(id)")
        #expect((announced?["labels"] as? [String: Any])?["kind"] as? String == "maintenance")

        let listed = try await e2e.cli(["maintenance", "list"], port: port, token: EndToEndTests.admin)
        #expect(listed.0 == 0 && listed.1.contains(id) && listed.1.contains("scheduled") && listed.1.contains("web,api"), "\(listed)")
        let silences = try await e2e.cli(["silence", "list"], port: port, token: EndToEndTests.admin)
        #expect(silences.1.contains(id), "\(silences.1)")

        let cancelled = try await e2e.cli(["maintenance", "cancel", id], port: port, token: EndToEndTests.admin)
        #expect(cancelled.0 == 0 && cancelled.1.contains("\(id) cancelled"), "\(cancelled)")
        // The cancellation is the all-clear, threaded onto the announcement.
        #expect(await sink.waitFor(count: 2, timeout: .seconds(30)))
        let posts = sink.received.compactMap(\.json)
        #expect(posts.map { $0["kind"] as? String ?? "" } == ["notice", "all_clear"])
        #expect(posts.last?["thread"] as? String == posts.first?["delivery_id"] as? String)
        #expect(try await e2e.cli(["maintenance", "list"], port: port, token: EndToEndTests.admin).1.contains("no maintenance"))
        let all = try await e2e.cli(["maintenance", "list", "--all"], port: port, token: EndToEndTests.admin)
        #expect(all.1.contains(id) && all.1.contains("cancelled"), "\(all.1)")
        // --from takes now and +DURATION as well as a time.
        let emergency = try await e2e.cli(["maintenance", "schedule", "--from", "now", "--duration", "30m", "--components", "db",
                                           "--title", "Emergency patch"], port: port, token: EndToEndTests.admin)
        #expect(emergency.0 == 0 && emergency.1.contains("in_progress"), "\(emergency)")
        let later = try await e2e.cli(["maintenance", "schedule", "--from", "+2h", "--duration", "30m", "--components", "db",
                                       "--title", "Patch, part two"], port: port, token: EndToEndTests.admin)
        #expect(later.0 == 0 && later.1.contains("scheduled"), "\(later)")
        let starts = later.1.split(separator: " ").dropFirst(3).first.flatMap { ISO8601DateFormatter.withFraction.date(from: String($0)) }
        #expect(starts.map { abs($0.timeIntervalSinceNow - 7200) < 120 } == true, "\(later.1)")
        let vague = try await e2e.cli(["maintenance", "schedule", "--from", "+soon", "--duration", "30m", "--components", "db",
                                       "--title", "x"], port: port, token: EndToEndTests.admin)
        #expect(vague.0 != 0 && vague.2.contains("--from"), "\(vague)")
        #expect(!herald.stderr.contains(EndToEndTests.admin))
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        await sink.stop()
    }
}

extension ISO8601DateFormatter {
    /// `2026-12-01T02:00:00.000Z`, as the API writes times.
    nonisolated(unsafe) static let withFraction: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
}
