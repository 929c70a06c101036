import Foundation
import Testing
@testable import HeraldCore

/// The description lines of the errors loading `yaml` throws (empty when it loads).
private func errorLines(_ yaml: String, env: [String: String] = [:], file: String = "h.yaml") -> [String] {
    do {
        _ = try ConfigLoader.load(yaml: yaml, file: file, environment: env)
        return []
    } catch let errors as ConfigErrors {
        return errors.errors.map(\.description)
    } catch {
        return ["unexpected error type: \(error)"]
    }
}

private func load(_ yaml: String, env: [String: String] = [:]) throws -> HeraldConfig {
    try ConfigLoader.load(yaml: yaml, file: "h.yaml", environment: env)
}

/// A temporary file holding `contents`, removed by the caller.
private func tempFile(_ contents: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-cfg-\(UUID().uuidString)").path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct ConfigLoaderTests {
    @Test func fullFileLoads() throws {
        let tokenFile = try tempFile("admin-token-from-file-0123456789\n")
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        let yaml = """
        server:
          listen: 0.0.0.0:9090
          max_body_bytes: 2048
          drain_timeout: 5s
          tokens:
            - {name: monitoring, token: "${HERALD_INGEST_TOKEN}", scopes: [ingest]}
            - {name: ops, token_file: \(tokenFile), scopes: [admin, ingest]}
        store:
          path: /var/lib/herald/herald.sqlite
        retry: {initial: 2s, max: 10m, max_attempts: 8, max_age: 12h}
        channels:
          ops-hook:
            type: webhook
            url: https://hooks.example.com/herald?key=${HOOK_KEY}
            secret: "${WEBHOOK_SECRET}"
            retry: {max_attempts: 5}
            concurrency: 4
            rate_per_second: 2.5
            timeout: 15s
          status.page_1:
            type: statuspage
            page: ${PAGE:-main}
            price: $$5 and ${EMPTY:-fallback}
        routes:
          - match: {severity: [critical, major], labels: {team: db}, components: [api]}
            channels: [ops-hook, status.page_1]
          - channels: [status.page_1]
        """
        let env = ["HERALD_INGEST_TOKEN": "ingest-token-1234-abcdefgh", "HOOK_KEY": "k3y", "WEBHOOK_SECRET": "whsec-abc", "EMPTY": ""]
        let config = try ConfigLoader.load(yaml: yaml, file: "/etc/herald/herald.yaml", environment: env)

        #expect(config.file == "/etc/herald/herald.yaml")
        #expect(config.server.listen == HostPort(host: "0.0.0.0", port: 9090))
        #expect(config.server.maxBodyBytes == 2048)
        #expect(config.server.drainTimeout == .seconds(5))
        #expect(config.server.tokens.map(\.name) == ["monitoring", "ops"])
        #expect(config.server.tokens[0].token.value == "ingest-token-1234-abcdefgh")
        #expect(config.server.tokens[0].scopes == [.ingest])
        #expect(config.server.tokens[1].token.value == "admin-token-from-file-0123456789")
        #expect(config.server.tokens[1].scopes == [.admin, .ingest])
        #expect(config.store.path == "/var/lib/herald/herald.sqlite")
        #expect(config.retry == RetryPolicy(initial: .seconds(2), max: .seconds(600), maxAttempts: 8, maxAge: .seconds(43_200)))

        #expect(config.channels.map(\.name) == ["ops-hook", "status.page_1"])
        let hook = try #require(config.channel(named: "ops-hook"))
        #expect(hook.type == "webhook")
        #expect(hook.retry == RetryPolicy(initial: .seconds(2), max: .seconds(600), maxAttempts: 5, maxAge: .seconds(43_200)))
        #expect(hook.concurrency == 4)
        #expect(hook.ratePerSecond == 2.5)
        #expect(hook.timeout == .seconds(15))
        #expect(try hook.settings.url("url", schemes: ["https"], secret: true) == "https://hooks.example.com/herald?key=k3y")
        #expect(try hook.settings.requiredSecret("secret").value == "whsec-abc")
        try hook.settings.finish()

        let status = try #require(config.channel(named: "status.page_1"))
        #expect(status.type == "statuspage")
        #expect(status.retry == config.retry)
        #expect(status.concurrency == 16)
        #expect(status.ratePerSecond == nil)
        #expect(status.timeout == .seconds(30))
        #expect(try status.settings.string("page") == "main")
        #expect(try status.settings.string("price") == "$5 and fallback")
        try status.settings.finish()

        #expect(config.routes == [
            Route(match: .init(severity: [.critical, .major], labels: ["team": "db"], components: ["api"]),
                  channels: ["ops-hook", "status.page_1"]),
            Route(match: nil, channels: ["status.page_1"]),
        ])
        // A secret URL is redacted whole and by its parts (path, query), since providers echo parts.
        #expect(Set(config.secrets) == ["ingest-token-1234-abcdefgh", "admin-token-from-file-0123456789",
                                        "https://hooks.example.com/herald?key=k3y", "/herald", "key=k3y", "whsec-abc"])
    }

    @Test func emptyFileAndEmptySectionsGiveDefaults() throws {
        for yaml in ["", "# nothing here\n", "server:\nstore:\nretry:\nchannels:\nroutes:\n", "---\n"] {
            let config = try load(yaml)
            #expect(config.server.listen == HostPort(host: "127.0.0.1", port: 8080))
            #expect(config.server.maxBodyBytes == 1_048_576)
            #expect(config.server.drainTimeout == .seconds(10))
            #expect(config.server.tokens.isEmpty)
            #expect(config.store.path == "./herald.sqlite")
            #expect(config.retry == .default)
            #expect(config.channels.isEmpty)
            #expect(config.routes.isEmpty)
            #expect(config.file == "h.yaml")
        }
    }

    @Test func defaultEnvironmentIsTheProcessEnvironment() throws {
        let config = try ConfigLoader.load(yaml: "store:\n  path: ${HERALD_SURELY_UNSET_VAR:-x.sqlite}\n", file: "h.yaml")
        #expect(config.store.path == "x.sqlite")
    }

    static let badConfigs: [(name: String, yaml: String, expected: [String])] = [
        ("unknown key with suggestion", """
         server:
           lisen: :8080
         """, ["h.yaml:2:3: server.lisen: unknown key; did you mean \"listen\"?"]),
        ("unknown top-level key", """
         colour: blue
         """, ["h.yaml:1:1: colour: unknown key"]),
        ("unknown channel in route", """
         channels:
           a: {type: webhook}
         routes:
           - channels: [a, b]
         """, ["h.yaml:4:19: routes[0].channels[1]: unknown channel \"b\""]),
        ("route without channels", """
         routes:
           - match: {severity: critical}
           - channels: []
         """, ["h.yaml:2:5: routes[0].channels: missing required key",
               "h.yaml:3:15: routes[1].channels: must list at least one channel"]),
        ("missing token", """
         server:
           tokens:
             - name: ci
               scopes: [ingest]
         """, ["h.yaml:3:7: server.tokens[0].token: missing required key (give token or token_file)"]),
        ("unset environment variable", """
         channels:
           hook:
             type: webhook
             secret: ${WEBHOOK_SECRET}
             other: "a ${B} c"
         """, ["h.yaml:4:13: channels.hook.secret: environment variable WEBHOOK_SECRET is not set",
               "h.yaml:5:12: channels.hook.other: environment variable B is not set"]),
        ("bad duration", """
         retry:
           initial: soon
         """, ["h.yaml:2:12: retry.initial: expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)"]),
        // A duration from outside is refused above 100 years, never overflowed (these trapped
        // converting to whole milliseconds); a rate above a million a second is refused (1e300
        // trapped counting tokens).
        ("durations and rates beyond their caps", """
         retry:
           max: 99999999999999999999d
           max_age: 36501d
         channels:
           hook:
             type: webhook
             timeout: 1e30s
             rate_per_second: 1e300
         """, ["h.yaml:2:8: retry.max: expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)",
               "h.yaml:3:12: retry.max_age: expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)",
               "h.yaml:7:14: channels.hook.timeout: expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)",
               "h.yaml:8:22: channels.hook.rate_per_second: must be greater than 0 and at most 1000000"]),
        ("bad YAML", """
         server:
           listen: [a
         store: {}
         """, ["h.yaml:3:6: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at 2:11)"]),
        ("duplicate key", """
         server: {}
         server: {}
         """, ["h.yaml:1:1: invalid YAML: duplicate key \"server\""]),
        ("wrong types", """
         server:
           max_body_bytes: lots
           listen: [1]
         store: [x]
         """, ["h.yaml:2:19: server.max_body_bytes: expected an integer",
               "h.yaml:3:11: server.listen: expected a string",
               "h.yaml:4:8: store: expected a mapping"]),
        ("bad listen and ranges", """
         server:
           listen: localhost
           max_body_bytes: 0
         """, ["h.yaml:2:11: server.listen: expected HOST:PORT, like 127.0.0.1:8080",
               "h.yaml:3:19: server.max_body_bytes: must be greater than 0"]),
        ("public listener on the API's address", """
         server:
           listen: 127.0.0.1:8080
           public_listen: 127.0.0.1:8080
         """, ["h.yaml:3:18: server.public_listen: must differ from server.listen"]),
        ("public listener not an address", """
         server:
           public_listen: status
         """, ["h.yaml:2:18: server.public_listen: expected HOST:PORT, like 0.0.0.0:8081"]),
        ("retry rules", """
         retry: {initial: 10s, max: 5s, max_attempts: 0, max_age: 0s}
         """, ["h.yaml:1:28: retry.max: max (5s) must not be less than initial (10s)",
               "h.yaml:1:46: retry.max_attempts: must be at least 1",
               "h.yaml:1:58: retry.max_age: must be greater than 0"]),
        ("channel retry checked after merge", """
         retry: {initial: 1s, max: 1m}
         channels:
           a:
             type: webhook
             retry: {initial: 2m, tries: 3}
         """, ["h.yaml:5:22: channels.a.retry.initial: max (1m) must not be less than initial (2m)",
               "h.yaml:5:26: channels.a.retry.tries: unknown key"]),
        ("channel keys", """
         channels:
           bad name!:
             type: webhook
           b:
             url: x
             concurrency: 0
             rate_per_second: fast
             timeout: 0s
           c: just-a-string
         """, ["h.yaml:2:3: channels.bad name!: invalid channel name; use letters, digits, \"_\", \".\" and \"-\"",
               "h.yaml:4:3: channels.b.type: missing required key",
               "h.yaml:6:18: channels.b.concurrency: must be at least 1",
               "h.yaml:7:22: channels.b.rate_per_second: expected a number",
               "h.yaml:8:14: channels.b.timeout: must be greater than 0",
               "h.yaml:9:6: channels.c: expected a mapping"]),
        ("tokens", """
         server:
           tokens:
             - {name: a, token: same-secret-value-abcdefg, scopes: [ingest, root]}
             - {name: a, token: other-secret-value-abcdef, scopes: [admin]}
             - {name: b, token: same-secret-value-abcdefg, scopes: []}
             - {name: c, token: x-secret-value-abcdefghijk, token_file: /x, scopes: [admin], scope: x}
             - {token: y-secret-value-abcdefghijk, scopes: [admin]}
             - {name: d, token: short-secret, scopes: [admin]}
         """, ["h.yaml:3:68: server.tokens[0].scopes[1]: unknown scope \"root\"; expected ingest or admin",
               "h.yaml:4:14: server.tokens[1].name: duplicate token name \"a\"",
               "h.yaml:5:24: server.tokens[2].token: token \"b\" has the same value as token \"a\"",
               "h.yaml:5:59: server.tokens[2].scopes: must list at least one scope (ingest, admin)",
               "h.yaml:6:52: server.tokens[3].token_file: give either token or token_file, not both",
               "h.yaml:6:85: server.tokens[3].scope: unknown key; did you mean \"scopes\"?",
               "h.yaml:7:7: server.tokens[4].name: missing required key",
               "h.yaml:8:24: server.tokens[5].token: is 12 characters; a token must be at least 24 (generate one with: openssl rand -base64 32)"]),
        ("unreadable token file", """
         server:
           tokens:
             - {name: a, token_file: /nonexistent/herald-token, scopes: [admin]}
         """, ["h.yaml:3:29: server.tokens[0].token_file: cannot read /nonexistent/herald-token: no such file"]),
        ("route match", """
         channels:
           a: {type: webhook}
         routes:
           - match:
               severity: [critical, Urgent]
               labels: {team: [x]}
               components: {a: b}
               sevrity: x
             channels: a
         """, ["h.yaml:5:28: routes[0].match.severity[1]: unknown severity \"Urgent\"; expected info, minor, major or critical",
               "h.yaml:6:22: routes[0].match.labels.team: expected a string",
               "h.yaml:7:19: routes[0].match.components: expected a list of strings",
               "h.yaml:8:7: routes[0].match.sevrity: unknown key; did you mean \"severity\"?"]),
        ("not a mapping", """
         - a
         - b
         """, ["h.yaml:1:1: expected a mapping"]),
        ("bad variable reference", """
         store:
           path: ${1X}/${OPEN
         """, ["h.yaml:2:9: store.path: invalid environment variable reference (use ${NAME} or ${NAME:-default})"]),
    ]

    @Test(arguments: badConfigs.indices)
    func badConfig(_ index: Int) {
        let bad = Self.badConfigs[index]
        #expect(errorLines(bad.yaml) == bad.expected, "\(bad.name)")
    }

    @Test func errorsNeverContainSecretValues() {
        let yaml = """
        server:
          tokens:
            - {name: a, token: "${T}", scopes: [ingest]}
            - {name: b, token: "${T}", scopes: [nope]}
        retry: {initial: "${T}"}
        """
        let lines = errorLines(yaml, env: ["T": "sup3r-s3cret-long-enough-0123"])
        #expect(lines.count == 3)
        for line in lines { #expect(!line.contains("sup3r-s3cret")) }
        // A token too short is refused by its length, never shown.
        let short = errorLines(yaml, env: ["T": "sup3r-s3cret"])
        #expect(short.contains { $0.contains("is 12 characters") })
        for line in short { #expect(!line.contains("sup3r-s3cret")) }
    }

    /// A channel's own templates go over the global ones key by key; the others keep the global
    /// ones; a broken channel template is reported where it is.
    @Test func templatesPerChannelAndKind() throws {
        let config = try ConfigLoader.load(yaml: """
            templates:
              notice_title: "GLOBAL {{title}}"
            channels:
              short: {type: webhook, templates: {notice_title: "{{title}}", all_clear_text: "fixed"}}
              plain: {type: webhook}
            """, file: "t.yaml")
        let short = try #require(config.channels.first { $0.name == "short" }?.templates)
        #expect(short.noticeTitle == "{{title}}" && short.allClearText == "fixed")
        #expect(short.updateTitle == MessageRenderer.Templates.defaults.updateTitle)
        #expect(config.channels.first { $0.name == "plain" }?.templates == nil)
        #expect(config.templates.noticeTitle == "GLOBAL {{title}}")
        let e = makeTemplateEvent()
        let r = try MessageRenderer(templates: short)
        #expect(r.render(kind: .notice, event: e, incident: makeTemplateIncident(e)).title == "DNS down")
        #expect(r.render(kind: .allClear, event: e, incident: makeTemplateIncident(e)).text == "fixed")
        #expect(errorLines("""
            channels:
              short:
                type: webhook
                templates:
                  notice_title: "{{#title}}"
                  allclear_text: x
            """) == ["h.yaml:5:21: channels.short.templates.notice_title: invalid template: a section is opened with {{#name}} or {{^name}} and never closed with {{/name}} (template line 1, column 11)",
                     "h.yaml:6:7: channels.short.templates.allclear_text: unknown key; did you mean \"all_clear_text\"?"])
    }

    /// Mustache renders a name it does not know as nothing: a template naming a value no event
    /// has is refused at load, with what was probably meant.
    @Test func templatesNameOnlyValuesEventsHave() throws {
        #expect(errorLines("""
            templates:
              all_clear_title: "Fixed: {{incident.title}}"
              notice_text: "{{#labels.team}}team {{labels.team}}{{/labels.team}}"
              update_text: "{{ sevrity }} {{{title}}} {{&message}} {{label_team}} {{! a comment }}"
            """) == ["h.yaml:2:20: templates.all_clear_title: invalid template: {{incident.title}} is not a value a template can use; did you mean {{title}}?",
                     "h.yaml:3:16: templates.notice_text: invalid template: {{labels.team}} is not a value a template can use; a label is {{label_team}}",
                     "h.yaml:4:16: templates.update_text: invalid template: {{sevrity}} is not a value a template can use (values: \(TemplateNames.known.joined(separator: ", ")), label_<name>)"])
        // Every default template, and sections over known values and the implicit iterator, pass.
        let defaults = MessageRenderer.Templates.defaults
        for (_, field) in MessageRenderer.Templates.keys {
            #expect(TemplateNames.firstUnknown(in: defaults[keyPath: field]) == nil, "\(defaults[keyPath: field])")
        }
        #expect(TemplateNames.firstUnknown(in: "{{#components}}{{.}}{{/components}}{{^link}}no link{{/link}}") == nil)
    }

    @Test func missingFile() {
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(file: "/nonexistent/herald.yaml") }
        do {
            _ = try ConfigLoader.load(file: "/nonexistent/herald.yaml")
        } catch let errors as ConfigErrors {
            #expect(errors.description == "/nonexistent/herald.yaml: cannot read: no such file")
            #expect(errors.errors.first?.line == 0)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func loadsFromFileAndResolvesRelativeSecretFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-cfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tok-from-relative-file-0123456789\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "server:\n  tokens:\n    - {name: a, token_file: token, scopes: [admin]}\n"
            .write(toFile: dir + "/herald.yaml", atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(file: dir + "/herald.yaml", environment: [:])
        #expect(config.server.tokens.first?.token.value == "tok-from-relative-file-0123456789")
        #expect(config.file == dir + "/herald.yaml")
    }

    @Test func errorDescriptions() {
        #expect(ConfigError(file: "f.yaml", line: 3, column: 7, keyPath: "a.b", message: "bad").description == "f.yaml:3:7: a.b: bad")
        #expect(ConfigError(file: "f.yaml", line: 0, column: 0, keyPath: "", message: "bad").description == "f.yaml: bad")
        #expect(ConfigError(file: "f.yaml", line: 1, column: 1, keyPath: "", message: "bad").description == "f.yaml:1:1: bad")
        let both = ConfigErrors(errors: [ConfigError(file: "f", line: 1, column: 2, keyPath: "k", message: "m"),
                                         ConfigError(file: "f", line: 0, column: 0, keyPath: "k2", message: "m2")])
        #expect(both.description == "f:1:2: k: m\nf: k2: m2")
    }

    @Test func editDistanceSuggestions() {
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(unknownKeyMessage("tokns", known: ["tokens", "listen"]) == "unknown key; did you mean \"tokens\"?")
        #expect(unknownKeyMessage("zzz", known: ["tokens", "listen"]) == "unknown key")
    }
}

@Suite struct ChannelSettingsTests {
    private func settings(_ body: String, env: [String: String] = [:], file: String = "h.yaml") throws -> ChannelSettings {
        let yaml = "channels:\n  c:\n    type: custom\n" + body
        let config = try ConfigLoader.load(yaml: yaml, file: file, environment: env)
        return try #require(config.channel(named: "c")).settings
    }

    @Test func accessors() throws {
        let s = try settings("""
            name: hello
            count: 42
            flag: yes
            off_flag: off
            wait: 1m30s
            one: single
            many: [a, b]
            headers: {X-A: "1", X-B: "${B}"}
            empty:
            link: https://example.com/x

        """, env: ["B": "bee"])
        #expect(s.channel == "c")
        #expect(s.type == "custom")
        #expect(try s.string("name") == "hello")
        #expect(try s.optionalString("absent") == nil)
        #expect(try s.int("count") == 42)
        #expect(try s.int("absent") == nil)
        #expect(try s.bool("flag") == true)
        #expect(try s.bool("off_flag") == false)
        #expect(try s.duration("wait") == .seconds(90))
        #expect(try s.stringList("one") == ["single"])
        #expect(try s.stringList("many") == ["a", "b"])
        #expect(try s.stringMap("headers") == ["X-A": "1", "X-B": "bee"])
        #expect(try s.optionalString("empty") == nil)
        #expect(try s.url("link", schemes: ["http", "https"]) == "https://example.com/x")
        #expect(s.secretValues.isEmpty)
        try s.finish()
    }

    @Test func wrongTypesAreLocated() throws {
        let s = try settings("""
            count: abc
            flag: maybe
            wait: soon
            many: {a: b}
            headers: [a]
            name: {a: b}
            link: ftp://example.com/x
            blank: ""

        """)
        func line(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        #expect(line { _ = try s.int("count") } == "h.yaml:4:12: channels.c.count: expected an integer")
        #expect(line { _ = try s.bool("flag") } == "h.yaml:5:11: channels.c.flag: expected true or false")
        #expect(line { _ = try s.duration("wait") } == "h.yaml:6:11: channels.c.wait: expected a duration like 250ms, 1s, 5m, 24h (at most 36500d)")
        #expect(line { _ = try s.stringList("many") } == "h.yaml:7:11: channels.c.many: expected a list of strings")
        #expect(line { _ = try s.stringMap("headers") } == "h.yaml:8:14: channels.c.headers: expected a mapping of strings")
        #expect(line { _ = try s.string("name") } == "h.yaml:9:11: channels.c.name: expected a string")
        #expect(line { _ = try s.url("link", schemes: ["http", "https"]) } == "h.yaml:10:11: channels.c.link: expected a URL with scheme http or https and a host")
        #expect(line { _ = try s.string("blank") } == "h.yaml:11:12: channels.c.blank: must not be empty")
        #expect(line { _ = try s.string("absent") } == "h.yaml:2:3: channels.c.absent: missing required key")
        #expect(line { _ = try s.requiredSecret("password") } == "h.yaml:2:3: channels.c.password: missing required key (give password or password_file)")
        #expect(s.error("count", "too many").description == "h.yaml:4:12: channels.c.count: too many")
        #expect(s.error("absent", "needed").description == "h.yaml:2:3: channels.c.absent: needed")
        #expect(s.typeError("unknown channel type \"custom\"").description == "h.yaml:3:5: channels.c.type: unknown channel type \"custom\"")
        try s.finish()
    }

    @Test func finishReportsUnreadKeys() throws {
        let s = try settings("""
            url: https://example.com
            ur1: x
            extra: 1

        """)
        _ = try s.url("url", schemes: ["https"])
        #expect(throws: ConfigErrors.self) { try s.finish() }
        do {
            try s.finish()
        } catch let errors as ConfigErrors {
            #expect(errors.description == """
            h.yaml:5:5: channels.c.ur1: unknown key; did you mean "url"?
            h.yaml:6:5: channels.c.extra: unknown key
            """)
        }
    }

    @Test func secretsAreRecordedAndNeverPrinted() throws {
        let file = try tempFile("pa55word-from-file\n\n")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let s = try settings("""
            secret: "${S}"
            password_file: \(file)
            hook: https://hooks.example.com/T0/B0/xyzzy-token
            both: a-secret-1
            both_file: /x
            missing_file: /nonexistent/herald-secret
            bad_url: "not a url xyzzy-bad-url"
            optional: ""

        """, env: ["S": "s3cret-from-env"])
        #expect(try s.secret("secret")?.value == "s3cret-from-env")
        #expect(try s.requiredSecret("password").value == "pa55word-from-file")
        #expect(try s.url("hook", schemes: ["https"], secret: true) == "https://hooks.example.com/T0/B0/xyzzy-token")
        #expect(try s.secret("optional") == nil)
        #expect(try s.secret("nothing") == nil)
        #expect(s.secretValues == ["s3cret-from-env", "pa55word-from-file", "https://hooks.example.com/T0/B0/xyzzy-token",
                                   "/T0/B0/xyzzy-token", "xyzzy-token"])

        var messages: [String] = []
        do { _ = try s.secret("both") } catch { messages.append("\(error)") }
        do { _ = try s.secret("missing") } catch { messages.append("\(error)") }
        do { _ = try s.url("bad_url", schemes: ["https"], secret: true) } catch { messages.append("\(error)") }
        #expect(messages == [
            "h.yaml:8:5: channels.c.both_file: give either both or both_file, not both",
            "h.yaml:9:19: channels.c.missing_file: cannot read /nonexistent/herald-secret: no such file",
            "h.yaml:10:14: channels.c.bad_url: expected a URL with scheme https and a host",
        ])
        for message in messages {
            for secret in s.secretValues + ["a-secret-1", "xyzzy-bad-url"] { #expect(!message.contains(secret)) }
        }
        try s.finish()
        #expect("\(try s.requiredSecret("secret"))" == "****")
    }

    @Test func convenienceInit() throws {
        let s = ChannelSettings(channel: "t", type: "webhook", values: ["url": "https://x.example/h", "n": "3", "secret": "abcd1234"])
        #expect(s.file == "<memory>")
        #expect(try s.url("url", schemes: ["https"]) == "https://x.example/h")
        #expect(try s.int("n") == 3)
        #expect(try s.requiredSecret("secret").value == "abcd1234")
        #expect(s.secretValues == ["abcd1234"])
        try s.finish()
        do {
            _ = try s.string("to")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "<memory>: channels.t.to: missing required key")
        }
        let unread = ChannelSettings(channel: "t", type: "x", values: ["b": "1", "a": "2"])
        do {
            try unread.finish()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "<memory>: channels.t.a: unknown key\n<memory>: channels.t.b: unknown key")
        }
    }

    /// A factory may read settings from several tasks. What a user sees depends on every read
    /// being recorded: each secret is redacted only if it was recorded, and `finish()` names as
    /// unknown exactly the keys nobody read. Eight tasks each read 400 keys and 50 secrets of their
    /// own at once; a lost update (an unlocked set or array) shows as a missing secret or a
    /// wrongly "unknown" key, and every value read must be the one written. (The earlier version
    /// read one key from every task and asserted the one secret it recorded: it passed with the
    /// lock removed.)
    @Test func concurrentUseIsSafe() async throws {
        let tasks = 8, perTask = 400, secretsPerTask = 50
        var values: [String: String] = ["never-read": "x"]
        for t in 0..<tasks {
            for i in 0..<perTask {
                values["k\(t)-\(i)"] = "\(i)"
            }
            for i in 0..<secretsPerTask {
                values["s\(t)-\(i)"] = "secret-value-\(t)-\(i)"
            }
        }
        let s = ChannelSettings(channel: "t", type: "x", values: values)
        let wrong = await withTaskGroup(of: [String].self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var wrong: [String] = []
                    for i in 0..<perTask {
                        if (try? s.int("k\(t)-\(i)")) != i { wrong.append("k\(t)-\(i)") }
                        // Secrets are kept in a list: fewer of them, spread over the same run.
                        if i % (perTask / secretsPerTask) == 0 {
                            let j = i / (perTask / secretsPerTask)
                            if (try? s.secret("s\(t)-\(j)"))?.value != "secret-value-\(t)-\(j)" { wrong.append("s\(t)-\(j)") }
                        }
                    }
                    return wrong
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(wrong.isEmpty, "read wrong values for \(wrong.prefix(10))")
        let expectedSecrets = (0..<tasks).flatMap { t in (0..<secretsPerTask).map { "secret-value-\(t)-\($0)" } }
        let recorded = s.secretValues
        #expect(recorded.count == expectedSecrets.count && Set(recorded) == Set(expectedSecrets),
                "\(recorded.count) secrets recorded of \(expectedSecrets.count)")
        do {
            try s.finish()
            Issue.record("never-read was not reported")
        } catch {
            #expect("\(error)" == "<memory>: channels.t.never-read: unknown key", "\(String(describing: error).prefix(500))")
        }
    }
}

private func makeTemplateEvent() -> Event {
    let at = Date(timeIntervalSince1970: 1_800_000_000)
    return Event(id: "evt_t", incident: "dns", status: .resolved, severity: .major, title: "DNS down", occurredAt: at, receivedAt: at)
}

private func makeTemplateIncident(_ e: Event) -> Incident {
    Incident(key: e.incident, status: .resolved, cycle: 1, title: e.title, severity: e.severity, openedAt: e.occurredAt,
             resolvedAt: e.occurredAt, updatedAt: e.occurredAt)
}
