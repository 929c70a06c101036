import Foundation
import HeraldCore
import Testing

/// Silence matchers as Alertmanager users write them, against events.
struct SilenceMatcherTests {
    let event = Event(id: "evt_1", incident: "web-5xx", status: .triggered, severity: .major, title: "5xx",
                      components: ["api", "web"], labels: ["service": "web", "env": "prod"],
                      occurredAt: Date(), receivedAt: Date(), source: "alertmanager")

    @Test(arguments: [
        ("service=web", true), ("service=db", false), ("service!=db", true), ("service!=web", false),
        ("service=~\"w.b\"", true), ("service=~we", false), // the regex matches the whole value
        ("service!~\"db|cache\"", true), ("service!~\"web|db\"", false),
        ("team=", true), ("team!=ops", true), ("team=ops", false), // a missing label is ""
        ("severity=major", true), ("severity=~\"major|critical\"", true), ("severity=critical", false),
        ("component=web", true), ("component=db", false), ("component!=db", true), ("component!=web", false),
        ("component=~\"a.*\"", true), ("component!~\"a.*\"", false),
        ("incident=web-5xx", true), ("incident=~\"web-.*\"", true), ("source=alertmanager", true),
        (" env = prod ", true), ("env=\"prod\"", true),
    ])
    func matches(_ text: String, _ expected: Bool) throws {
        let m = try SilenceMatcher(parsing: text)
        #expect(m.matches(event) == expected, "\(text)")
    }

    @Test(arguments: ["service", "=web", "service~web", "ser vice=web", "service=~(", "service!~[a-"])
    func refuses(_ text: String) {
        #expect(throws: SilenceError.self) { try SilenceMatcher(parsing: text) }
    }

    @Test func quotedValuesRoundTrip() throws {
        for text in [#"team!="a\"b""#, #"path=~"C:\\temp\\.*""#, #"code=~"\d+""#] {
            let m = try SilenceMatcher(parsing: text)
            #expect(try SilenceMatcher(parsing: m.description) == m, "\(text) → \(m.description)")
        }
        #expect(try SilenceMatcher(parsing: #"team!="a\"b""#).value == #"a"b"#)
        #expect(try SilenceMatcher(parsing: #"code=~"\d+""#).value == #"\d+"#)
        var e = event
        e.labels["code"] = "503"
        #expect(try SilenceMatcher(parsing: #"code=~"\d+""#).matches(e))
    }

    @Test func roundTripsThroughJSON() throws {
        let matchers = try ["service=web", "severity=~\"major|critical\"", "env!=\"a b\""].map { try SilenceMatcher(parsing: $0) }
        let data = try JSONEncoder().encode(matchers)
        #expect(try JSONDecoder().decode([SilenceMatcher].self, from: data) == matchers)
        #expect(matchers.map(\.description) == ["service=web", "severity=~\"major|critical\"", "env!=\"a b\""])
    }

    @Test func aSilenceHoldsOnlyItsChannelsAndOnlyWhileInForce() throws {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let s = Silence(id: "sil_1", matchers: [try SilenceMatcher(parsing: "service=web")], channels: ["pager"],
                        startsAt: t0, endsAt: t0.addingTimeInterval(60), createdBy: "ops", comment: "deploy", createdAt: t0)
        #expect(s.silences(event, channel: "pager", at: t0))
        #expect(!s.silences(event, channel: "chat", at: t0))
        #expect(!s.silences(event, channel: "pager", at: t0.addingTimeInterval(-1)))
        #expect(!s.silences(event, channel: "pager", at: t0.addingTimeInterval(60)))
        #expect([s.state(at: t0.addingTimeInterval(-1)), s.state(at: t0), s.state(at: t0.addingTimeInterval(60))]
                == ["pending", "active", "expired"])
        var later = s
        later.id = "sil_2"
        later.endsAt = t0.addingTimeInterval(120)
        #expect([s, later].holding(event, channel: "pager", at: t0)?.id == "sil_2")
    }
}
