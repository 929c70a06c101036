import Foundation
import Testing
import TestSupport

/// `herald preview` prints what a channel would send — its own templates over the global ones,
/// escaped for its markup, the request with secrets masked — and sends nothing.
@Suite struct PreviewTests {
    @Test func printsTheChannelsRequestWithItsOwnTemplatesAndSendsNothing() async throws {
        let dir = try temporaryDirectory("herald-preview")
        let sink = TestSink()
        try await sink.start()
        defer { Task { await sink.stop() } }
        let secretPath = "T0001/B0001/previewSecretPath0123"
        let config = dir.appendingPathComponent("herald.yaml").path
        try """
            store: {path: "\(dir.path)/herald.sqlite"}
            templates:
              all_clear_title: "[RESOLVED] {{title}}"
            channels:
              ops:
                type: slack
                webhook_url: \(sink.url)/services/\(secretPath)
                templates:
                  all_clear_title: "Fixed after {{duration}}: {{title}}"
              mail:
                type: email
                url: smtp://127.0.0.1:\(closedPort())
                starttls: off
                from: herald@example.com
                to: [ops@example.com]
            routes:
              - channels: [ops, mail]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let event = dir.appendingPathComponent("event.json").path
        try #"{"incident":"dns","status":"resolved","title":"DNS <b>down</b> & *out*","message":"resolvers @channel time out"}"#
            .write(toFile: event, atomically: true, encoding: .utf8)

        let slack = try await HeraldBinary.run(["preview", "--config", config, "--channel", "ops", "--kind", "all_clear", "--event", event])
        #expect(slack.0 == 0, "\(slack)")
        // The channel's own all-clear title, with the event's words escaped for Slack.
        #expect(slack.1.contains("title: Fixed after 39 min: DNS <b>down</b> & *out*\n"), "\(slack.1)")
        #expect(slack.1.contains("as the provider reads it (slack):\n  Fixed after 39 min: DNS &lt;b&gt;down&lt;/b&gt; &amp; *out*\n"), "\(slack.1)")
        #expect(slack.1.contains("request: POST http://127.0.0.1:\(sink.port)/****"), "\(slack.1)")
        #expect(!slack.1.contains(secretPath) && !slack.2.contains(secretPath))
        #expect(slack.1.contains("\"blocks\""))

        // The email channel keeps the global all-clear title and threads under the notice.
        let mail = try await HeraldBinary.run(["preview", "--config", config, "--channel", "mail", "--kind", "all_clear", "--event", event])
        #expect(mail.0 == 0, "\(mail)")
        #expect(mail.1.contains("title: [RESOLVED] DNS <b>down</b> & *out*"), "\(mail.1)")
        #expect(mail.1.contains("Subject: Re: ") && mail.1.contains("In-Reply-To: <"), "\(mail.1)")

        let unknown = try await HeraldBinary.run(["preview", "--config", config, "--channel", "opz"])
        #expect(unknown.0 == 2 && unknown.2.contains("no channel \"opz\"") && unknown.2.contains("ops, mail"), "\(unknown)")
        let badKind = try await HeraldBinary.run(["preview", "--config", config, "--channel", "ops", "--kind", "allclear"])
        #expect(badKind.0 == 2 && badKind.2.contains("--kind"), "\(badKind)")
        // Both previews have exited: had either sent anything, the receiver would have it.
        #expect(sink.received.isEmpty)
    }
}
