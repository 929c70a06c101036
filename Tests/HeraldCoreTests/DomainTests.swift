import Foundation
import Testing
@testable import HeraldCore

@Suite struct RetryPolicyTests {
    @Test func fullJitterStaysUnderTheExponentialCeiling() {
        let p = RetryPolicy(initial: .milliseconds(500), max: .seconds(10), maxAttempts: 20, maxAge: .seconds(3600))
        #expect(p.delay(afterAttempts: 1, random: 1) == .milliseconds(500))
        #expect(p.delay(afterAttempts: 2, random: 1) == .seconds(1))
        #expect(p.delay(afterAttempts: 4, random: 1) == .seconds(4))
        #expect(p.delay(afterAttempts: 9, random: 1) == .seconds(10))
        #expect(p.delay(afterAttempts: 60, random: 1) == .seconds(10))
        #expect(p.delay(afterAttempts: 3, random: 0) == .zero)
        #expect(p.delay(afterAttempts: 3, random: 0.5) == .seconds(1))
    }

    @Test func durationsParseAndPrint() {
        #expect(Duration(parsing: "250ms") == .milliseconds(250))
        #expect(Duration(parsing: "1s") == .seconds(1))
        #expect(Duration(parsing: "5m") == .seconds(300))
        #expect(Duration(parsing: "24h") == .seconds(86_400))
        #expect(Duration(parsing: "1h30m") == .seconds(5400))
        #expect(Duration(parsing: "1.5s") == .milliseconds(1500))
        #expect(Duration(parsing: "5") == nil)
        #expect(Duration(parsing: "m") == nil)
        #expect(Duration(parsing: "5 parsecs") == nil)
        #expect(Duration(parsing: "-1s") == nil)
        #expect(Duration.seconds(300).formatted == "5m")
        #expect(Duration.milliseconds(250).formatted == "250ms")
        #expect(Duration.milliseconds(1500).formatted == "1.5s")
    }
}

@Suite struct RoutingTests {
    func event(_ severity: Severity, labels: [String: String] = [:], components: [String] = []) -> Event {
        Event(id: "evt_1", incident: "dns", status: .triggered, severity: severity, title: "DNS down",
              components: components, labels: labels, occurredAt: Date(), receivedAt: Date())
    }

    @Test func unionOfMatchingRoutesWithoutRepeats() {
        let routes = [
            Route(match: .init(severity: [.critical, .major]), channels: ["pager", "chat"]),
            Route(match: .init(labels: ["team": "net"]), channels: ["chat", "net-mail"]),
            Route(match: .init(components: ["web", "api"]), channels: ["status"]),
            Route(channels: ["audit"]),
        ]
        #expect(routes.channels(for: event(.critical, labels: ["team": "net"])) == ["pager", "chat", "net-mail", "audit"])
        #expect(routes.channels(for: event(.minor, labels: ["team": "db"])) == ["audit"])
        #expect(routes.channels(for: event(.info, components: ["api"])) == ["status", "audit"])
        #expect(routes.channels(for: event(.minor, labels: ["team": "net", "x": "y"], components: ["db"])) == ["chat", "net-mail", "audit"])
    }

    @Test func allConditionsOfOneMatchMustHold() {
        let routes = [Route(match: .init(severity: [.critical], labels: ["team": "net"]), channels: ["pager"])]
        #expect(routes.channels(for: event(.critical, labels: ["team": "net"])) == ["pager"])
        #expect(routes.channels(for: event(.critical)).isEmpty)
        #expect(routes.channels(for: event(.major, labels: ["team": "net"])).isEmpty)
    }
}

@Suite struct EventInputTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func parse(_ json: String) throws(InputError) -> Event {
        try EventInput.parse(json: Array(json.utf8), id: "evt_x", receivedAt: now)
    }

    @Test func fullEventIsNormalised() throws {
        let e = try parse("""
            {"incident":"dns-outage","status":"firing","severity":"critical","title":"  DNS down ","message":"resolvers time out",
             "components":["web","web","api"],"labels":{"team":"net"},"link":"https://status.example.com/i/1",
             "occurred_at":"2026-11-25T10:02:00Z"}
            """)
        #expect(e.incident == "dns-outage")
        #expect(e.status == .triggered)
        #expect(e.severity == .critical)
        #expect(e.title == "DNS down")
        #expect(e.components == ["web", "api"])
        #expect(e.labels == ["team": "net"])
        #expect(e.occurredAt == RFC3339.parse("2026-11-25T10:02:00Z"))
        #expect(e.receivedAt == now)
    }

    @Test(arguments: [
        ("triggered", EventStatus.triggered), ("trigger", .triggered), ("PROBLEM", .triggered), ("firing", .triggered),
        ("updated", .updated), ("resolve", .resolved), ("ok", .resolved), ("RECOVERY", .resolved), ("resolved", .resolved),
        // Every Nagios/Icinga $NOTIFICATIONTYPE$ has a meaning; none is a usage error.
        ("ACKNOWLEDGEMENT", .acknowledged), ("acknowledge", .acknowledged), ("FLAPPINGSTART", .updated), ("FLAPPINGSTOP", .updated),
        ("FLAPPINGDISABLED", .updated), ("DOWNTIMESTART", .updated), ("DOWNTIMEEND", .updated), ("DOWNTIMECANCELLED", .updated),
        ("CUSTOM", .updated),
    ])
    func statusAliases(text: String, expected: EventStatus) throws {
        #expect(try parse(#"{"incident":"a","status":"\#(text)","title":"t"}"#).status == expected)
    }

    @Test(arguments: [
        (#"{"status":"triggered","title":"t"}"#, "incident", "is required"),
        (#"{"incident":"a","title":"t"}"#, "status", "is required"),
        (#"{"incident":"a","status":"triggered"}"#, "title", "is required"),
        (#"{"incident":"a","status":"exploded","title":"t"}"#, "status", "unknown status \"exploded\" (expected triggered, updated, acknowledged or resolved)"),
        (#"{"incident":7,"status":"triggered","title":"t"}"#, "incident", "must be a string"),
        (#"{"incident":"a","status":"triggered","title":"t","severity":"apocalyptic"}"#, "severity", "unknown severity \"apocalyptic\" (expected critical, major, minor or info)"),
        (#"{"incident":"a","status":"triggered","title":"t","components":"web"}"#, "components", "must be an array of strings"),
        (#"{"incident":"a","status":"triggered","title":"t","components":[1]}"#, "components[0]", "must be a string"),
        (#"{"incident":"a","status":"triggered","title":"t","labels":{"k":1}}"#, "labels.k", "must be a string"),
        (#"{"incident":"a","status":"triggered","title":"t","link":"javascript:alert(1)"}"#, "link", "must be an http or https URL with a host and no user name or password"),
        (#"{"incident":"a","status":"triggered","title":"t","link":"https://status.example.com@evil.example/"}"#, "link", "must be an http or https URL with a host and no user name or password"),
        (#"{"incident":"a","status":"triggered","title":"t","occurred_at":"yesterday"}"#, "occurred_at", "must be an RFC 3339 timestamp like 2026-11-25T10:02:00Z"),
        (#"{"incident":"a","status":"triggered","title":"t","sevirity":"major"}"#, "sevirity", "unknown field (expected one of: actor, components, incident, labels, link, message, occurred_at, severity, status, title)"),
        (#"{"incident":"  ","status":"triggered","title":"t"}"#, "incident", "must not be empty"),
        // Control characters: NUL would fail a PostgreSQL commit (and every other event in it).
        (#"{"incident":"a\u0000b","status":"triggered","title":"t"}"#, "incident", "must not contain control characters (found U+0000)"),
        (#"{"incident":"a","status":"triggered","title":"t\u0000"}"#, "title", "must not contain control characters other than tab and newline (found U+0000)"),
        (#"{"incident":"a","status":"triggered","title":"t","message":"a\rb"}"#, "message", "must not contain control characters other than tab and newline (found U+000D)"),
        (#"{"incident":"a","status":"triggered","title":"t","components":["w\u001beb"]}"#, "components[0]", "must not contain control characters (found U+001B)"),
        (#"{"incident":"a","status":"triggered","title":"t","labels":{"k":"v\u0085"}}"#, "labels.k", "must not contain control characters other than tab and newline (found U+0085)"),
    ])
    func badFieldsAreNamed(json: String, field: String, message: String) {
        #expect(throws: InputError(field: field, message)) { try parse(json) }
    }

    @Test func tabsNewlinesAndCRLFAreText() throws {
        let e = try parse(#"{"incident":"a","status":"triggered","title":"t","message":"one\r\ntwo\tthree\nfour"}"#)
        #expect(e.message == "one\ntwo\tthree\nfour")
    }

    @Test func fieldsLeftOutAreMarkedSoTheIncidentKeepsItsValues() throws {
        let bare = try parse(#"{"incident":"a","status":"resolved","title":"t"}"#)
        #expect(bare.omitted == [.severity, .components, .labels, .link])
        let full = try parse(#"{"incident":"a","status":"resolved","title":"t","severity":"minor","components":[],"labels":{},"link":"https://x.example/"}"#)
        #expect(full.omitted.isEmpty && full.severity == .minor)
    }

    @Test func notJSONOrNotAnObject() {
        #expect(throws: InputError(field: nil, "body is not valid JSON")) { try parse("{nope") }
        #expect(throws: InputError(field: nil, "body must be a JSON object")) { try parse("[1,2]") }
        #expect(throws: InputError(field: nil, "body is not valid JSON")) {
            try EventInput.parse(json: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], id: "e", receivedAt: now)
        }
    }
}

@Suite struct RendererTests {
    @Test func allClearSaysTheWindowAndThatServiceIsRestored() throws {
        let opened = RFC3339.parse("2026-11-25T10:02:00Z")!
        let resolved = RFC3339.parse("2026-11-25T10:41:00Z")!
        let event = Event(id: "e", incident: "dns", status: .resolved, severity: .critical, title: "DNS resolution failing",
                          components: ["web", "api"], link: "https://status.example.com", occurredAt: resolved, receivedAt: resolved)
        let incident = Incident(key: "dns", status: .resolved, cycle: 1, title: "DNS resolution failing", severity: .critical,
                                openedAt: opened, resolvedAt: resolved, updatedAt: resolved)
        let (title, text) = try MessageRenderer().render(kind: .allClear, event: event, incident: incident)
        #expect(title == "[RESOLVED] DNS resolution failing")
        #expect(text == """
            Resolved: DNS resolution failing
            Affected: web, api
            Down from 2026-11-25 10:02 UTC to 2026-11-25 10:41 UTC (39 min). Service is restored.

            More: https://status.example.com
            """)
    }

    @Test func noticeIsPlainTextNotHTMLEscapedAndTitleIsOneLine() throws {
        let at = RFC3339.parse("2026-11-25T10:02:00Z")!
        let event = Event(id: "e", incident: "x", status: .triggered, severity: .major, title: "A & B <down>\nsecond line",
                          message: "5xx > 50%", occurredAt: at, receivedAt: at)
        let incident = Incident(key: "x", status: .open, cycle: 1, title: event.title, severity: .major, openedAt: at, resolvedAt: nil, updatedAt: at)
        let (title, text) = try MessageRenderer().render(kind: .notice, event: event, incident: incident)
        #expect(title == "[MAJOR] A & B <down> second line")
        #expect(text.contains("5xx > 50%"))
        #expect(text.contains("Since: 2026-11-25 10:02 UTC"))
    }

    @Test func truncationKeepsGraphemesWhole() {
        #expect("👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦".truncated(to: 2) == "👩‍👩‍👧‍👦…")
        #expect("short".truncated(to: 10) == "short")
    }

    @Test func redactorRemovesEverySecret() {
        let r = Redactor(secrets: ["s3cret-token", "pw", "", "https://hooks.example.com/T0/B0/XXXX"])
        #expect(r.redact("POST https://hooks.example.com/T0/B0/XXXX failed with s3cret-token; password pw") ==
                "POST **** failed with ****; password ****")
        // Even a short secret is masked, whatever it mangles on the way.
        #expect(Redactor(secrets: ["pw"]).redact("pwned") == "****ned")
    }
}

@Suite struct FallbackConfigTests {
    @Test func fallbackMustNameAnotherExistingChannel() throws {
        let good = try ConfigLoader.load(yaml: """
            channels:
              chat: {type: console, fallback: pager}
              pager: {type: console}
            """, file: "f.yaml")
        #expect(good.channel(named: "chat")?.fallback == "pager")
        do {
            _ = try ConfigLoader.load(yaml: """
                channels:
                  chat: {type: console, fallback: nowhere}
                  self: {type: console, fallback: self}
                """, file: "f.yaml")
            Issue.record("expected errors")
        } catch let errors as ConfigErrors {
            #expect(errors.description.contains("f.yaml:2:35: channels.chat.fallback: unknown channel \"nowhere\""), "\(errors)")
            #expect(errors.description.contains("channels.self.fallback: a channel cannot be its own fallback"))
        }
    }
}
