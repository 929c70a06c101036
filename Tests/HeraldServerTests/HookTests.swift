import Foundation
import HeraldCore
import Testing
import TestSupport

/// Monitoring payloads (Tests/Fixtures) through the live API, to a webhook sink.
@Suite(.serialized) struct HookTests {
    static func fixture(_ name: String) throws -> String {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
        return try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
    }

    @Test func alertmanagerAlertsBecomeIncidentsAndTheirResolveAnAllClear() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await ServerTests().start(sinkURL: sink.url + "/am")
        let (status, json, _) = try await s.call("POST", "/v1/hooks/alertmanager", body: try Self.fixture("alertmanager-firing.json"))
        #expect(status == 202)
        #expect(json["events"] as? Int == 2)
        #expect(json["incidents"] as? [String] == ["alertmanager:a1b2c3d4e5f60718", "alertmanager:0f1e2d3c4b5a6978"])
        #expect(await sink.waitFor(count: 2))
        let notice = try #require(sink.received.first { ($0.json?["incident"] as? [String: Any])?["key"] as? String == "alertmanager:a1b2c3d4e5f60718" }?.json)
        let event = try #require(notice["event"] as? [String: Any])
        #expect(event["title"] as? String == "DNS resolution failing on resolver-1")
        #expect(event["severity"] as? String == "critical")
        #expect(event["message"] as? String == "SERVFAIL rate above 50% for 5 minutes.")
        #expect(event["link"] as? String == "https://runbooks.example.com/dns")
        #expect(event["components"] as? [String] == ["dns"])
        #expect((event["labels"] as? [String: String])?["instance"] == "resolver-1:53")
        let beforeResolve = Date()
        let resolved = try await s.call("POST", "/v1/hooks/alertmanager", body: try Self.fixture("alertmanager-resolved.json"))
        // One all-clear per channel that was told: the hook and the console.
        #expect(resolved.0 == 202 && resolved.1["deliveries"] as? Int == 2)
        #expect(await sink.waitFor(count: 3))
        let clear = try #require(sink.received[2].json)
        #expect(clear["kind"] as? String == "all_clear")
        #expect(clear["thread"] as? String == notice["delivery_id"] as? String)
        #expect((clear["incident"] as? [String: Any])?["resolved_at"] as? String == "2026-11-25T10:41:00.000Z")
        // The report: per channel recipient, when the notice and the all-clear were delivered.
        #expect(try await eventually {
            let rows = try await s.call("GET", "/v1/incidents/alertmanager:a1b2c3d4e5f60718", token: ServerTests.adminToken).1["recipients"] as? [[String: Any]] ?? []
            return rows.count == 2 && rows.allSatisfy { ($0["all_clear"] as? [String: Any])?["state"] as? String == "delivered" }
        })
        let sawDelivered = Date()
        let report = try await s.call("GET", "/v1/incidents/alertmanager:a1b2c3d4e5f60718", token: ServerTests.adminToken)
        let hookRow = try #require((report.1["recipients"] as? [[String: Any]])?.first { $0["channel"] as? String == "hook" })
        #expect((hookRow["notice"] as? [String: Any])?["delivery_id"] as? String == notice["delivery_id"] as? String)
        #expect((hookRow["all_clear"] as? [String: Any])?["kind"] as? String == "all_clear")
        // The delay is what the report says it is: from the resolve's arrival (not the alert's
        // endsAt, 2026-11-25T10:41) to the all-clear's delivery, in milliseconds, as both are
        // recorded (to the millisecond) in the same report.
        let delay = try #require(hookRow["all_clear_delay_ms"] as? Double)
        let events = try #require(report.1["events"] as? [[String: Any]])
        let arrivedText = try #require(events.first { $0["status"] as? String == "resolved" }?["received_at"] as? String)
        let deliveredText = try #require((hookRow["all_clear"] as? [String: Any])?["delivered_at"] as? String)
        let resolveArrived = try #require(RFC3339.parse(arrivedText))
        let clearDelivered = try #require(RFC3339.parse(deliveredText))
        #expect(abs(delay - clearDelivered.timeIntervalSince(resolveArrived) * 1000) <= 2, "delay \(delay) ms, resolve \(resolveArrived), delivered \(clearDelivered)")
        // And both happened while the test watched: after it posted the resolve, before it saw the
        // all-clear delivered.
        #expect(resolveArrived.timeIntervalSince(beforeResolve) >= -0.002 && sawDelivered.timeIntervalSince(clearDelivered) >= -0.002,
                "posted \(beforeResolve), arrived \(resolveArrived), delivered \(clearDelivered), seen \(sawDelivered)")
        #expect(delay >= 0 && delay <= sawDelivered.timeIntervalSince(beforeResolve) * 1000 + 2)
        // Alertmanager repeats resolved notifications: nothing new.
        let again = try await s.call("POST", "/v1/hooks/alertmanager", body: try Self.fixture("alertmanager-resolved.json"))
        #expect(again.0 == 202 && again.1["deliveries"] as? Int == 0)
        // Keyed on a label set instead of the fingerprint.
        let keyed = try await s.call("POST", "/v1/hooks/alertmanager?key_labels=alertname,instance", body: try Self.fixture("alertmanager-firing.json"))
        #expect(keyed.1["incidents"] as? [String] == ["alertmanager:DNSResolutionFailing,resolver-1:53", "alertmanager:DNSResolutionFailing,resolver-2:53"])
        let bad = try await s.call("POST", "/v1/hooks/alertmanager", body: #"{"version":"4","alerts":"none"}"#)
        #expect(bad.0 == 400 && bad.1["field"] as? String == "alerts")
        let unauthenticated = try await s.call("POST", "/v1/hooks/alertmanager", token: nil, body: try Self.fixture("alertmanager-firing.json"))
        #expect(unauthenticated.0 == 401)
        await s.stop()
    }

    @Test func grafanaAlertsUseThePanelLink() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await ServerTests().start(sinkURL: sink.url + "/g")
        let (status, json, _) = try await s.call("POST", "/v1/hooks/grafana", body: try Self.fixture("grafana-firing.json"))
        #expect(status == 202 && json["incidents"] as? [String] == ["grafana:57c6d9296de2ad39"])
        // severity "warning" maps to minor: routed to the console channel only, not the hook.
        #expect(json["deliveries"] as? Int == 1)
        let detail = try #require(try await s.app.store.incident(key: "grafana:57c6d9296de2ad39"))
        #expect(detail.events.first?.link == "https://grafana.example.com/d/api-latency?viewPanel=4")
        #expect(detail.events.first?.severity == .minor)
        #expect(detail.events.first?.message == "[ var='B' labels={} value=2.31 ]")
        await s.stop()
    }

    @Test func pagerDutyEventsAPIv2() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await ServerTests().start(sinkURL: sink.url + "/pd")
        let trigger = try Self.fixture("pagerduty-trigger.json").replacingOccurrences(of: "ROUTING_KEY", with: ServerTests.ingestToken)
        var r = try await s.call("POST", "/v2/enqueue", token: nil, body: trigger)
        #expect(r.0 == 202)
        #expect(r.1["status"] as? String == "success")
        #expect(r.1["message"] as? String == "Event processed")
        #expect(r.1["dedup_key"] as? String == "db-primary-disk")
        let incident = try #require(try await s.app.store.incident(key: "pd:db-primary-disk"))
        #expect(incident.events.first?.title == "Disk 95% full on db-primary")
        #expect(incident.events.first?.severity == .major)
        #expect(incident.events.first?.labels["detail_free_gb"] == "4")
        #expect(incident.events.first?.link == "https://runbooks.example.com/disk")
        r = try await s.call("POST", "/v2/enqueue", token: nil,
                             body: #"{"routing_key":"\#(ServerTests.ingestToken)","event_action":"resolve","dedup_key":"db-primary-disk"}"#)
        #expect(r.0 == 202)
        #expect(try await s.app.store.incident(key: "pd:db-primary-disk")?.incident.status == .resolved)
        r = try await s.call("POST", "/v2/enqueue", token: nil, body: trigger.replacingOccurrences(of: ServerTests.ingestToken, with: "wrong-key"))
        #expect(r.0 == 401 && r.1["message"] as? String == "Invalid routing key")
        r = try await s.call("POST", "/v2/enqueue", token: nil,
                             body: #"{"routing_key":"\#(ServerTests.ingestToken)","event_action":"trigger","payload":{"severity":"error"}}"#)
        #expect(r.0 == 400 && r.1["status"] as? String == "invalid event")
        #expect((r.1["errors"] as? [String])?.first == "payload.summary: is required")
        // An admin token is not an ingest routing key.
        r = try await s.call("POST", "/v2/enqueue", token: nil, body: trigger.replacingOccurrences(of: ServerTests.ingestToken, with: ServerTests.adminToken))
        #expect(r.0 == 401)
        await s.stop()
    }

    /// All alerts of one call commit together: one alert the API refuses (a NUL in its summary)
    /// refuses the call and stores none of it, so Alertmanager's retry finds nothing half-stored.
    /// A re-sent firing alert pages nobody again.
    @Test func alertsOfOneCallCommitTogetherAndARepeatPagesNobody() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await ServerTests().start(sinkURL: sink.url + "/am")
        let firing = try Self.fixture("alertmanager-firing.json")
        let poisoned = firing.replacingOccurrences(of: "SERVFAIL rate above 50% for 5 minutes.", with: #"SERVFAIL\u0000 rate"#)
        #expect(poisoned != firing)
        let refused = try await s.call("POST", "/v1/hooks/alertmanager", body: poisoned)
        #expect(refused.0 == 400 && (refused.1["field"] as? String)?.hasPrefix("alerts[0].annotations") == true, "\(refused.1)")
        #expect(try await s.app.store.incidents(limit: 10).isEmpty, "nothing of the refused call is stored")
        let first = try await s.call("POST", "/v1/hooks/alertmanager", body: firing)
        #expect(first.0 == 202 && (first.1["deliveries"] as? Int ?? 0) > 0)
        let again = try await s.call("POST", "/v1/hooks/alertmanager", body: firing)
        #expect(again.0 == 202 && again.1["deliveries"] as? Int == 0)
        let detail = try #require(try await s.app.store.incident(key: "alertmanager:a1b2c3d4e5f60718"))
        #expect(detail.incident.triggers == 2 && detail.events.count == 2)
        #expect(detail.deliveries.filter { $0.kind == .notice }.count == 2, "one notice per routed channel, once")
        await s.stop()
    }

    /// PagerDuty's acknowledge is an acknowledgement: recorded with who and when, sent to those told
    /// as an update, never a new page or a new title (it carries no summary or severity).
    @Test func aPagerDutyAcknowledgeIsAnUpdateThatRewritesNothing() async throws {
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let s = try await ServerTests().start(sinkURL: sink.url + "/pd")
        let trigger = try Self.fixture("pagerduty-trigger.json").replacingOccurrences(of: "ROUTING_KEY", with: ServerTests.ingestToken)
        #expect(try await s.call("POST", "/v2/enqueue", token: nil, body: trigger).0 == 202)
        #expect(await sink.waitFor(count: 1))
        let ack = try await s.call("POST", "/v2/enqueue", token: nil,
                                   body: #"{"routing_key":"\#(ServerTests.ingestToken)","event_action":"acknowledge","dedup_key":"db-primary-disk"}"#)
        #expect(ack.0 == 202)
        #expect(await sink.waitFor(count: 2))
        let update = try #require(sink.received[1].json)
        #expect(update["kind"] as? String == "update")
        #expect((update["event"] as? [String: Any])?["status"] as? String == "acknowledged")
        #expect((update["event"] as? [String: Any])?["title"] as? String == "Disk 95% full on db-primary")
        #expect(update["thread"] as? String == sink.received[0].json?["delivery_id"] as? String)
        let incident = try #require(try await s.app.store.incident(key: "pd:db-primary-disk")).incident
        #expect(incident.title == "Disk 95% full on db-primary" && incident.severity == .major && incident.status == .open)
        #expect(incident.acknowledgedAt != nil && incident.acknowledgedBy != nil)
        await s.stop()
    }
}
