import Foundation
import Testing
@testable import HeraldCore

/// A channel pauses only when every attempt failed for the whole window (and at least three
/// times), probes once per interval while paused, and any success makes it healthy again.
@Suite struct ChannelHealthTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    var policy: HealthPolicy {
        var p = HealthPolicy()
        p.pauseAfter = .seconds(3600)
        p.probeEvery = .seconds(300)
        return p
    }

    @Test func pausesAfterTheWindowAndEnoughFailuresOnly() {
        var h = ChannelHealth()
        #expect(h.failed("503", at: t0, policy: policy) == nil)
        #expect(h.state == .failing)
        // The window passed, but only two attempts failed: one failure after a quiet hour is not a dead endpoint.
        #expect(h.failed("503", at: t0.addingTimeInterval(3600), policy: policy) == nil)
        #expect(h.failed("timeout", at: t0.addingTimeInterval(3601), policy: policy) == .paused)
        #expect(h.state == .paused && h.failures == 3 && h.lastError == "timeout" && h.failingSince == t0)
        // Already paused: further failures change nothing.
        #expect(h.failed("503", at: t0.addingTimeInterval(4000), policy: policy) == nil)
    }

    @Test func aSuccessInsideTheWindowStartsItAgain() {
        var h = ChannelHealth()
        for i in 0..<10 { _ = h.failed("503", at: t0.addingTimeInterval(Double(i) * 300), policy: policy) }
        #expect(h.succeeded() == nil)
        #expect(h.state == .healthy && h.failures == 0)
        #expect(h.failed("503", at: t0.addingTimeInterval(3600), policy: policy) == nil)
        #expect(h.failingSince == t0.addingTimeInterval(3600))
    }

    @Test func offNeverPauses() {
        var off = policy
        off.pauseAfter = nil
        var h = ChannelHealth()
        for i in 0..<100 { #expect(h.failed("503", at: t0.addingTimeInterval(Double(i) * 3600), policy: off) == nil) }
        #expect(h.state == .failing)
        #expect(h.admits(16, at: t0.addingTimeInterval(1e6), policy: off).count == 16)
    }

    @Test func pausedAdmitsOneProbePerInterval() {
        var h = ChannelHealth()
        #expect(h.admits(16, at: t0, policy: policy).count == 16)
        for i in 0...3 { _ = h.failed("503", at: t0.addingTimeInterval(Double(i) * 1200), policy: policy) }
        let pausedAt = t0.addingTimeInterval(3600)
        #expect(h.pausedAt == pausedAt)
        // The pause itself counts as the last look: the first probe is one interval later.
        #expect(h.admits(16, at: pausedAt.addingTimeInterval(10), policy: policy) == (0, pausedAt.addingTimeInterval(300)))
        let probeAt = pausedAt.addingTimeInterval(300)
        #expect(h.admits(16, at: probeAt, policy: policy).count == 1)
        h.probed(at: probeAt)
        #expect(h.admits(16, at: probeAt.addingTimeInterval(299), policy: policy).count == 0)
        #expect(h.admits(16, at: probeAt.addingTimeInterval(300), policy: policy).count == 1)
        // A reload may have fixed the address: probe at once.
        h.probeNow()
        #expect(h.admits(16, at: probeAt.addingTimeInterval(1), policy: policy).count == 1)
        // The probe succeeds: recovered, and every slot is free again.
        #expect(h.succeeded() == .recovered)
        #expect(h.state == .healthy && h.admits(16, at: probeAt, policy: policy).count == 16)
    }

    @Test func configuredGloballyAndPerChannel() throws {
        let config = try ConfigLoader.load(yaml: """
            health: {pause_after: 30m, probe_every: 1m, notify: [ops]}
            channels:
              hook: {type: webhook, url: "http://127.0.0.1:9/x"}
              ops:
                type: webhook
                url: "http://127.0.0.1:9/y"
                health: {pause_after: off}
              quiet:
                type: webhook
                url: "http://127.0.0.1:9/z"
                health: {probe_every: 10s, notify: [hook, hook]}
            """, file: "h.yaml", environment: [:])
        let health = Dictionary(uniqueKeysWithValues: config.channels.map { ($0.name, $0.health) })
        #expect(health["hook"]?.pauseAfter == .seconds(1800) && health["hook"]?.probeEvery == .seconds(60) && health["hook"]?.notify == ["ops"])
        #expect(health["ops"]?.pauseAfter == nil && health["ops"]?.probeEvery == .seconds(60) && health["ops"]?.notify == ["ops"])
        #expect(health["quiet"]?.pauseAfter == .seconds(1800) && health["quiet"]?.probeEvery == .seconds(10) && health["quiet"]?.notify == ["hook"])
        // No `health:` at all: pause after an hour, probe every five minutes, tell nobody (the log says it).
        let plain = try ConfigLoader.load(yaml: "channels:\n  hook: {type: webhook, url: \"http://127.0.0.1:9/x\"}\n", file: "h.yaml", environment: [:])
        #expect(plain.channels.first?.health == HealthPolicy())
    }

    @Test func mistakesAreLocated() {
        var lines: [String] = []
        do {
            _ = try ConfigLoader.load(yaml: """
                health: {pause_after: 0s, probe_every: 10ms, notify: [opz], pause: 1h}
                channels:
                  ops:
                    type: webhook
                    url: "http://127.0.0.1:9/y"
                    health: {pause_after: soon}
                """, file: "h.yaml", environment: [:])
        } catch let errors as ConfigErrors {
            lines = errors.errors.map(\.description)
        } catch {
            lines = ["\(error)"]
        }
        #expect(lines == [
            "h.yaml:1:23: health.pause_after: must be greater than 0 (or off)",
            "h.yaml:1:40: health.probe_every: must be at least 100ms",
            "h.yaml:1:55: health.notify[0]: unknown channel \"opz\"",
            "h.yaml:1:61: health.pause: unknown key",
            "h.yaml:6:27: channels.ops.health.pause_after: expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)",
        ], "\(lines)")
    }
}

/// The console's last hour of a channel: counts per outcome, percentiles from the histogram,
/// and minutes older than an hour forgotten.
@Suite struct AttemptWindowTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func countsTheLastHourAndForgetsOlderMinutes() {
        var w = AttemptWindow()
        for i in 0..<98 { w.record(.delivered, durationMs: 4, at: t0.addingTimeInterval(Double(i))) }
        w.record(.retried, durationMs: 900, error: "HTTP 503", at: t0.addingTimeInterval(100))
        w.record(.failed, durationMs: 2000, error: "HTTP 500", at: t0.addingTimeInterval(200))
        let now = t0.addingTimeInterval(300)
        let s = w.summary(at: now)
        #expect(s.delivered == 98 && s.retried == 1 && s.failed == 1)
        // The median is in the 4 ms bucket; the 99th percentile is the 99th of 100: the retry's.
        #expect(s.p50Ms.map { $0 >= 4 && $0 < 4 * 1.35 } == true, "\(String(describing: s.p50Ms))")
        #expect(s.p99Ms.map { $0 >= 900 && $0 < 900 * 1.35 } == true, "\(String(describing: s.p99Ms))")
        #expect(s.lastError == "HTTP 500" && s.lastErrorAt == t0.addingTimeInterval(200))
        // Over an hour after the last of them, none counts (the last error is still told).
        let later = w.summary(at: t0.addingTimeInterval(3_900))
        #expect(later.attempts == 0 && later.p50Ms == nil && later.lastError == "HTTP 500")
        // The ring's slot of the failure's minute, reused an hour on, starts from zero.
        w.record(.delivered, durationMs: 1, at: t0.addingTimeInterval(3_780))
        let reused = w.summary(at: t0.addingTimeInterval(3_780))
        #expect(reused.attempts == 1 && reused.delivered == 1)
    }
}
