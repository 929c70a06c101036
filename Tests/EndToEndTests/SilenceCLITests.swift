import Foundation
import Testing
import TestSupport

/// `herald silence` as an operator runs it, across a kill -9: the silence and the notice it holds
/// are in the store, and the notice goes out once, when the silence is expired.
@Suite(.serialized) struct SilenceCLITests {
    let e2e = EndToEndTests()

    @Test func aSilenceSurvivesKillDashNineAndItsNoticeGoesOutOnceWhenExpired() async throws {
        let dir = try temporaryDirectory("herald-silence")
        let sink = TestSink()
        try await sink.start()
        let config = try e2e.writeConfig(dir: dir, sinkURL: sink.url + "/hook")
        var herald = try e2e.serve(config, dir: dir)
        var port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        let refused = try await e2e.cli(["silence", "add", "--duration", "1h", "--comment", "x"], port: port, token: EndToEndTests.admin)
        #expect(refused.0 != 0 && refused.2.contains("--matcher"))
        let added = try await e2e.cli(["silence", "add", "-m", "team=net", "-m", "severity=~\"major|critical\"", "--duration", "1h",
                                       "--comment", "router swap"], port: port, token: EndToEndTests.admin)
        #expect(added.0 == 0, "\(added.2)")
        let id = try #require(added.1.split(separator: " ").first.map(String.init))
        #expect(id.hasPrefix("sil_") && added.1.contains("active"))
        #expect(try await e2e.cli(["send", "--incident", "core", "--status", "triggered", "--title", "Core router down",
                                   "--severity", "critical", "--label", "team=net"], port: port).0 == 0)
        let shown = try await e2e.cli(["incidents", "show", "core"], port: port, token: EndToEndTests.admin)
        #expect(shown.1.contains("silenced by \(id) until"), "\(shown.1)")

        herald.signal(SIGKILL)
        _ = await herald.waitForExit()
        herald = try e2e.serve(config, dir: dir)
        port = try #require(await herald.waitForPort(), "herald did not restart: \(herald.stderr)")
        let listed = try await e2e.cli(["silence", "list"], port: port, token: EndToEndTests.admin)
        #expect(listed.1.contains(id) && listed.1.contains("team=net") && listed.1.contains("router swap"), "\(listed.1)")

        // A notice that must arrive (another team): nothing of `core` arrived before it.
        #expect(try await e2e.cli(["send", "--incident", "db", "--status", "triggered", "--title", "DB slow",
                                   "--severity", "critical", "--label", "team=db"], port: port).0 == 0)
        #expect(await sink.waitFor(count: 1))
        let expired = try await e2e.cli(["silence", "expire", id], port: port, token: EndToEndTests.admin)
        #expect(expired.0 == 0 && expired.1.contains("\(id) expired at"))
        #expect(await sink.waitFor(count: 2))
        let incidents = sink.received.compactMap { ($0.json?["event"] as? [String: Any])?["incident"] as? String }
        #expect(incidents == ["db", "core"])
        #expect(try await e2e.cli(["silence", "list"], port: port, token: EndToEndTests.admin).1.contains("no silences"))
        #expect(try await e2e.cli(["silence", "list", "--all"], port: port, token: EndToEndTests.admin).1.contains("expired"))
        #expect(!herald.stderr.contains(EndToEndTests.admin))
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        await sink.stop()
    }

    @Test func quietHoursDroppedByAReloadLetTheirNoticeGo() async throws {
        let dir = try temporaryDirectory("herald-quiet")
        let sink = TestSink()
        try await sink.start()
        let config = try e2e.writeConfig(dir: dir, sinkURL: sink.url + "/hook")
        let quiet = "\nquiet_hours:\n  - {name: all-day, time_zone: Pacific/Auckland, times: [\"00:00-24:00\"], channels: [hook]}\n"
        let handle = try #require(FileHandle(forWritingAtPath: config))
        handle.seekToEndOfFile()
        handle.write(Data(quiet.utf8))
        try handle.close()
        let herald = try e2e.serve(config, dir: dir)
        let port = try #require(await herald.waitForPort(), "herald did not start: \(herald.stderr)")
        var listed = (Int32(0), "", "")
        #expect(try await eventually {
            listed = try await e2e.cli(["silence", "list"], port: port, token: EndToEndTests.admin)
            return listed.1.contains("quiet_all-day_") && listed.1.contains("active")
        }, "\(listed)")
        #expect(try await e2e.cli(["send", "--incident", "night", "--status", "triggered", "--title", "Disk 91%",
                                   "--severity", "minor"], port: port).0 == 0)
        let shown = try await e2e.cli(["incidents", "show", "night"], port: port, token: EndToEndTests.admin)
        #expect(shown.1.contains("silenced by quiet_all-day_"), "\(shown.1)")
        // The quiet hours leave the configuration: the occurrence in force ends, its notice goes out.
        _ = try e2e.writeConfig(dir: dir, sinkURL: sink.url + "/hook")
        let reloaded = try await HeraldBinary.run(["reload", "--server", "http://127.0.0.1:\(port)", "--token", EndToEndTests.admin])
        #expect(reloaded.0 == 0, "\(reloaded)")
        #expect(await sink.waitFor(count: 1, timeout: .seconds(30)))
        #expect(sink.received.first?.json.flatMap { ($0["event"] as? [String: Any])?["incident"] as? String } == "night")
        #expect(try await e2e.cli(["silence", "list"], port: port, token: EndToEndTests.admin).1.contains("no silences"))
        herald.signal(SIGTERM)
        #expect(await herald.waitForExit() == 0)
        await sink.stop()
    }
}
