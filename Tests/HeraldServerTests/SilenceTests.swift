import Foundation
import HeraldCore
import HeraldServer
import HeraldStore
import Testing
import TestSupport

/// Silences over the admin API, against a real receiver: what a silence holds does not arrive,
/// arrives when the silence ends (expired by an operator or on time), and never after the resolve.
@Suite(.serialized) struct SilenceTests {
    let admin = ServerTests.adminToken

    func event(_ incident: String, _ status: String, service: String = "web") -> String {
        #"{"incident":"\#(incident)","status":"\#(status)","severity":"critical","title":"\#(incident) down","labels":{"service":"\#(service)"}}"#
    }

    /// The incidents of the notices the receiver got, in order of arrival.
    func arrived(_ sink: TestSink) -> [String] {
        sink.received.compactMap { (($0.json?["event"] as? [String: Any])?["incident"] as? String) }
    }

    @Test func aSilencedNoticeArrivesOnlyOnceTheOperatorExpiresTheSilence() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await ServerTests().start(sinkURL: sink.url + "/in")
        let (created, silence, _) = try await s.call("POST", "/v1/silences", token: admin, body: """
            {"matchers":["service=web"],"channels":["hook"],"duration":"1h","comment":"deploy of web 4.2"}
            """)
        #expect(created == 201)
        #expect(silence["state"] as? String == "active" && silence["created_by"] as? String == "ops")
        let id = try #require(silence["id"] as? String)
        #expect(id.hasPrefix("sil_"))
        #expect(try await s.call("POST", "/v1/events", body: event("web-1", "firing")).0 == 202)
        // Another service is not silenced: its notice arrives, and after it nothing of web-1 did.
        #expect(try await s.call("POST", "/v1/events", body: event("db-1", "firing", service: "db")).0 == 202)
        #expect(await sink.waitFor(count: 1))
        #expect(arrived(sink) == ["db-1"])
        // The incident report says why, and until when.
        let (_, report, _) = try await s.call("GET", "/v1/incidents/web-1", token: admin)
        let rows = report["recipients"] as? [[String: Any]] ?? []
        let hook = try #require(rows.first { $0["channel"] as? String == "hook" }?["notice"] as? [String: Any])
        #expect(hook["state"] as? String == "silenced" && hook["silenced_by"] as? String == id)
        #expect(hook["silenced_until"] as? String == silence["ends_at"] as? String)
        let (listed, list, _) = try await s.call("GET", "/v1/silences", token: admin)
        #expect(listed == 200 && (list["silences"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        // Expired: the held notice goes out at once.
        let (expired, gone, _) = try await s.call("DELETE", "/v1/silences/\(id)", token: admin)
        #expect(expired == 200 && gone["state"] as? String == "expired")
        #expect(await sink.waitFor(count: 2))
        #expect(arrived(sink) == ["db-1", "web-1"])
        #expect(try await s.call("GET", "/v1/silences", token: admin).1["silences"] as? [Any] != nil)
        #expect((try await s.call("GET", "/v1/silences?all=true", token: admin).1["silences"] as? [Any])?.count == 1)
        await s.stop()
        await sink.stop()
    }

    @Test func aSilenceThatEndsOnTimeLetsItsNoticeGoThenNotBefore() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await ServerTests().start(sinkURL: sink.url + "/in")
        let (created, silence, _) = try await s.call("POST", "/v1/silences", token: admin, body: """
            {"matchers":["severity=critical","incident=~\\"web-.*\\""],"duration":"1500ms","comment":"short"}
            """)
        #expect(created == 201)
        let end = try #require((silence["ends_at"] as? String).flatMap(RFC3339.parse))
        #expect(try await s.call("POST", "/v1/events", body: event("web-2", "firing")).0 == 202)
        #expect(await sink.waitFor(count: 1, timeout: .seconds(15)))
        // No poll to wait for: the dispatcher's timer fires at the end (RFC 3339 keeps whole seconds
        // in the answer, so allow the fraction it drops).
        #expect(Date() >= end.addingTimeInterval(-1))
        #expect(arrived(sink) == ["web-2"])
        await s.stop()
        await sink.stop()
    }

    @Test func aResolveDuringTheSilenceSendsNothingToThoseNeverTold() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await ServerTests().start(sinkURL: sink.url + "/in")
        let (_, silence, _) = try await s.call("POST", "/v1/silences", token: admin, body: """
            {"matchers":["service=web"],"channels":["hook"],"duration":"1h","comment":"maintenance"}
            """)
        let id = try #require(silence["id"] as? String)
        #expect(try await s.call("POST", "/v1/events", body: event("web-3", "firing")).0 == 202)
        #expect(try await s.call("POST", "/v1/events", body: event("web-3", "resolved")).0 == 202)
        #expect(try await s.call("DELETE", "/v1/silences/\(id)", token: admin).0 == 200)
        // A later notice that must arrive: nothing of web-3 came before it, and nothing after.
        #expect(try await s.call("POST", "/v1/events", body: event("db-3", "firing", service: "db")).0 == 202)
        #expect(await sink.waitFor(count: 1))
        #expect(arrived(sink) == ["db-3"])
        let detail = try #require(try await s.app.store.incident(key: "web-3"))
        #expect(detail.deliveries.filter { $0.channel == "hook" }.map { "\($0.kind.rawValue):\($0.state.rawValue)" } == ["notice:superseded"])
        await s.stop()
        await sink.stop()
    }

    @Test func quietHoursFromTheConfigurationHoldNoticesLikeASilence() async throws {
        let sink = TestSink()
        try await sink.start()
        let s = try await ServerTests().start(sinkURL: sink.url + "/in", extraChannels: """
            quiet_hours:
              - {name: hook-off, time_zone: Europe/Berlin, times: ["00:00-24:00"], channels: [hook]}
            """)
        // Stored as silences a day ahead, by the configuration.
        var quiet: [[String: Any]] = []
        #expect(await eventually {
            quiet = (try? await s.call("GET", "/v1/silences", token: admin).1["silences"] as? [[String: Any]]) ?? []
            return quiet.contains { $0["state"] as? String == "active" }
        })
        let active = try #require(quiet.first { $0["state"] as? String == "active" })
        #expect(active["created_by"] as? String == "config" && active["channels"] as? [String] == ["hook"])
        let id = try #require(active["id"] as? String)
        #expect(id.hasPrefix("quiet_hook-off_"))
        #expect(try await s.call("POST", "/v1/events", body: event("web-4", "firing")).0 == 202)
        let detail = try #require(try await s.app.store.incident(key: "web-4"))
        #expect(detail.deliveries.first { $0.channel == "hook" }?.silencedBy == id)
        // An operator ends tonight's quiet hours early: the notice goes out.
        #expect(try await s.call("DELETE", "/v1/silences/\(id)", token: admin).0 == 200)
        #expect(await sink.waitFor(count: 1))
        #expect(arrived(sink) == ["web-4"])
        await s.stop()
        await sink.stop()
    }

    @Test func aMalformedSilenceGetsA400NamingTheField() async throws {
        let s = try await ServerTests().start(sinkURL: "http://127.0.0.1:\(closedPort())/")
        let cases: [(String, String)] = [
            (#"{"matchers":["service"],"duration":"1h","comment":"x"}"#, "matchers[0]"),
            (#"{"matchers":["service=~(unclosed"],"duration":"1h","comment":"x"}"#, "matchers[0]"),
            (#"{"matchers":[7],"duration":"1h","comment":"x"}"#, "matchers[0]"),
            (#"{"channels":["nope"],"duration":"1h","comment":"x"}"#, "channels[0]"),
            (#"{"duration":"1h","comment":"x"}"#, "matchers"),
            (#"{"matchers":["a=b"],"comment":"x"}"#, "ends_at"),
            (#"{"matchers":["a=b"],"duration":"soon","comment":"x"}"#, "duration"),
            (#"{"matchers":["a=b"],"duration":"1h","ends_at":"2099-01-01T00:00:00Z","comment":"x"}"#, "duration"),
            (#"{"matchers":["a=b"],"ends_at":"2001-01-01T00:00:00Z","comment":"x"}"#, "ends_at"),
            (#"{"matchers":["a=b"],"duration":"400d","comment":"x"}"#, "ends_at"),
            (#"{"matchers":["a=b"],"duration":"1h"}"#, "comment"),
            (#"{"matchers":["a=b"],"duration":"1h","comment":"x\u0000"}"#, "comment"),
            (#"{"matchers":["a=b"],"duration":"1h","comment":"x","color":"red"}"#, "color"),
        ]
        for (body, field) in cases {
            let (status, json, _) = try await s.call("POST", "/v1/silences", token: admin, body: body)
            #expect(status == 400, "\(body)")
            #expect(json["field"] as? String == field, "\(body): \(json)")
        }
        #expect(try await s.call("POST", "/v1/silences", token: nil, body: "{}").0 == 401)
        // An ingest token cannot silence anything.
        #expect(try await s.call("POST", "/v1/silences", body: #"{"matchers":["a=b"],"duration":"1h","comment":"x"}"#).0 == 403)
        #expect(try await s.call("DELETE", "/v1/silences/sil_nope", token: admin).0 == 404)
        #expect(try await s.call("GET", "/v1/silences/sil_nope", token: admin).0 == 404)
        #expect(try await s.call("GET", "/v1/silences?all=maybe", token: admin).1["field"] as? String == "all")
        let (wrongMethod, _, answer) = try await s.call("PUT", "/v1/silences/sil_x", token: admin, body: "{}")
        #expect(wrongMethod == 405 && answer.headers.first { $0.name.lowercased() == "allow" }?.value == "GET, DELETE")
        // Nothing of the refused ones was stored.
        #expect(try await s.app.store.silences(includeExpired: true, now: Date(), limit: 100).isEmpty)
        await s.stop()
    }
}
