import Foundation
import Testing
@testable import HeraldCore

/// The hand-written text paths on the delivery hot path must say exactly what Foundation says.
@Suite struct FastTextTests {
    @Test func rfc3339MatchesFoundationsFormatStyle() {
        var rng = SystemRandomNumberGenerator()
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400), // 2000-02-29
                     Date(timeIntervalSince1970: 1_800_000_000.999), Date(timeIntervalSince1970: -1.5),
                     Date(timeIntervalSince1970: 4_102_444_799.123)]
        for _ in 0..<2000 {
            dates.append(Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000...4_000_000_000, using: &rng)) / 1000 * 997))
        }
        for d in dates {
            #expect(RFC3339.format(d) == d.formatted(style), "\(d.timeIntervalSince1970)")
        }
    }

    /// A time before year 1 (0000-01-01 with an offset east of UTC) is not a timestamp Herald
    /// takes; and no Date at all, however far out, traps the formatter.
    @Test func rfc3339RefusesYearsOutsideOneToNineThousandNineHundredNinetyNine() throws {
        #expect(RFC3339.parse("0000-01-01T00:00:00+01:00") == nil)
        #expect(RFC3339.parse("0001-01-01T00:00:00Z") != nil, "Go's zero time, which Alertmanager sends as endsAt")
        #expect(RFC3339.format(RFC3339.parse("9999-12-31T23:59:59.5Z")!) == "9999-12-31T23:59:59.500Z")
        #expect(RFC3339.parse("10000-01-01T00:00:00Z") == nil)
        #expect(throws: InputError.self) {
            try EventInput.parse(json: Array(#"{"incident":"a","status":"triggered","title":"t","occurred_at":"0000-01-01T00:00:00+01:00"}"#.utf8),
                                 id: "evt_x", receivedAt: Date())
        }
        for far in [Date.distantPast, Date.distantFuture, Date(timeIntervalSinceReferenceDate: -.infinity),
                    Date(timeIntervalSinceReferenceDate: .infinity), Date(timeIntervalSinceReferenceDate: .nan)] {
            #expect(RFC3339.format(far).count == 24 && !RFC3339.format(far).hasPrefix("-"), "\(RFC3339.format(far))")
        }
    }

    @Test func trimmingWhitespaceMatchesFoundation() {
        for s in ["", "   ", "a", "  a b  ", "\n\t x \r\n", "\u{00A0}Störung\u{2003}", "🚨 DNS down\n\n", "x\u{0085}"] {
            #expect(s.trimmingWhitespace() == s.trimmingCharacters(in: .whitespacesAndNewlines), "\(s.debugDescription)")
        }
    }

    @Test func jsonWriterEscapesAndNestsLikeJSONSerialization() throws {
        var w = JSONWriter()
        let tricky = "quote \" backslash \\ slash / newline \n tab \t nul \u{0} bell \u{7} unit separator \u{1F} emoji 🚨 ümlaut"
        w.beginObject()
        w.field("a", tricky)
        w.field("absent", nil as String?)
        w.field("n", -42)
        w.field("list", ["x", "", tricky])
        w.field("map", ["z": "1", "a": "2"])
        w.key("empty")
        w.beginObject()
        w.endObject()
        w.key("flag")
        w.bool(true)
        w.endObject()
        let text = String(decoding: w.bytes, as: UTF8.self)
        #expect(text.contains("\"map\":{\"a\":\"2\",\"z\":\"1\"}"))
        #expect(text.contains("slash / newline"))
        #expect(text.contains("nul \\u0000 bell \\u0007 unit separator \\u001f emoji"))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any])
        #expect(parsed["a"] as? String == tricky)
        #expect(parsed["absent"] == nil)
        #expect(parsed["n"] as? Int == -42)
        #expect(parsed["list"] as? [String] == ["x", "", tricky])
        #expect(parsed["map"] as? [String: String] == ["z": "1", "a": "2"])
        #expect((parsed["empty"] as? [String: Any])?.isEmpty == true)
        #expect(parsed["flag"] as? Bool == true)
    }
}

@Suite struct StoredEventJSONTests {
    func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { Date(timeIntervalSince1970: try $0.singleValueContainer().decode(Double.self)) }
        return d
    }

    @Test func decodesBackToAnEqualEvent() throws {
        let events = [
            Event(id: "evt_1", incident: "dns", status: .triggered, severity: .critical, title: "DNS down",
                  occurredAt: Date(timeIntervalSince1970: 1_800_000_000.123456), receivedAt: Date(timeIntervalSince1970: 1_800_000_001)),
            Event(id: "evt_2", incident: "k\"e\\y\n", status: .resolved, severity: .info, title: "Störung 🚨 \u{1}",
                  message: "line 1\nline 2\t\"quoted\"", components: ["web", "api/v2"], labels: ["team": "ops", "z": ""],
                  link: "https://status.example.com/x?y=1&z=2", occurredAt: Date(timeIntervalSince1970: -12.5),
                  receivedAt: Date(timeIntervalSince1970: 4_102_444_799.999)),
        ]
        for e in events {
            #expect(try decoder().decode(Event.self, from: Data(e.storedJSON())) == e)
        }
    }
}
