import TestSupport
import Foundation
@testable import HeraldChannels
import HeraldCore
import HeraldTransport
import Testing

/// The email channel against real SMTP servers on loopback (aiosmtpd, see `SMTPPeer`). Every
/// assertion reads what the server received: the envelope, the raw bytes, and the message as
/// Python's `email` parser (an independent MIME implementation) decodes it.
@Suite(.smtpPeers) struct EmailChannelTests {
    let transport = CurlTransport()

    func plain() throws -> SMTPPeer { try #require(SMTPPeer.plain, "the .smtpPeers trait starts the servers") }
    func secure() throws -> SMTPPeer { try #require(SMTPPeer.secure, "the .smtpPeers trait starts the servers") }

    /// An address no other test uses, so each test reads only its own messages.
    static func address(_ local: String = "ops") -> String {
        "\(local)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
    }

    func channel(_ values: [String: String], to: [String]) throws -> EmailChannel {
        // Flat values cannot express lists, so `to` goes through the YAML loader.
        var yaml = "channels:\n  mail:\n    type: email\n    to: [\(to.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            yaml += "    \(key): \"\(value)\"\n"
        }
        let config = try ConfigLoader.load(yaml: yaml, file: "mail.yaml")
        let settings = config.channels[0].settings
        let factory = try #require(ChannelRegistry.factories["email"])
        let made = try factory(settings, ChannelContext(transport: transport, timeout: .seconds(20)))
        try settings.finish()
        return try #require(made as? EmailChannel)
    }

    func plainChannel(to: [String], from: String = "Herald Ops <herald@status.example.com>") throws -> EmailChannel {
        try channel(["url": try plain().url, "from": from, "starttls": "off"], to: to)
    }

    func secureChannel(to: [String], password: String = SMTPPeer.password, verifyTLS: Bool = false) throws -> EmailChannel {
        var values = ["url": try secure().url, "from": "herald@status.example.com", "username": SMTPPeer.username,
                      "password": password]
        if !verifyTLS { values["verify_tls"] = "false" }
        return try channel(values, to: to)
    }

    func expectError(_ body: () async throws -> Receipt) async -> DeliveryError? {
        do {
            _ = try await body()
            Issue.record("expected a delivery error")
            return nil
        } catch let error as DeliveryError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    // MARK: What arrives

    @Test func noticeArrivesWithEncodedSubjectThreadableIdAndBothParts() async throws {
        let to = Self.address()
        let email = try plainChannel(to: [to])
        let message = mailMessage(.notice, recipient: to, title: "Störung: DNS ✓")
        let receipt = try await email.deliver(message)

        let got = try plain().received(for: to)
        #expect(got.count == 1)
        let mail = try #require(got.first)
        #expect(mail.mailFrom == "herald@status.example.com")
        #expect(mail.rcptTos == [to])
        #expect(mail.defects.isEmpty, "parser defects: \(mail.defects)")

        // Headers, as a mail client decodes them.
        #expect(mail.header("From") == "Herald Ops <herald@status.example.com>")
        #expect(mail.header("To") == to)
        #expect(mail.header("Subject") == "Störung: DNS ✓")
        #expect(mail.header("MIME-Version") == "1.0")
        #expect(mail.header("Auto-Submitted") == "auto-generated")
        #expect(mail.header("X-Herald-Delivery") == message.deliveryId)
        #expect(mail.header("In-Reply-To") == nil)
        #expect(mail.header("References") == nil)
        let messageID = try #require(mail.header("Message-ID"))
        #expect(messageID == "<\(message.deliveryId)@status.example.com>")
        #expect(receipt.reference == messageID)
        #expect(receipt.status == 250)
        let date = try #require(mail.header("Date"))
        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_US_POSIX")
        parser.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let sent = try #require(parser.date(from: date), "Date \(date) is not RFC 5322")
        #expect(abs(sent.timeIntervalSinceNow) < 120)

        // On the wire: an RFC 2047 encoded word, CRLF everywhere, short lines, 7-bit only.
        let raw = mail.rawText
        #expect(raw.contains("Subject: =?UTF-8?B?"))
        #expect(!raw.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(mail.raw.allSatisfy { $0 < 0x80 })
        for line in raw.components(separatedBy: "\r\n") {
            #expect(line.utf8.count <= 78, "line too long: \(line)")
        }

        // Both parts, decoded.
        #expect(mail.parts.map(\.type) == ["text/plain", "text/html"])
        #expect(mail.parts.map(\.charset) == ["utf-8", "utf-8"])
        #expect(mail.parts.map(\.encoding) == ["quoted-printable", "quoted-printable"])
        let text = try #require(mail.parts.first?.text)
        // Python keeps the CRLF line ends of the wire; a client shows lines.
        #expect(text.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .newlines) == message.text)
        let html = try #require(mail.parts.last?.text)
        #expect(html.contains("<title>Störung: DNS ✓</title>"))
        #expect(html.contains("<p>DNS &lt;resolvers&gt; &amp; caches failing<br>"))
        #expect(html.contains("<p>Resolvers time out for ünïcode.example</p>"))
        #expect(html.contains(#"<a href="https://status.example.com/dns?a=1&amp;b=2">https://status.example.com/dns?a=1&amp;b=2</a>."#))
        #expect(!html.contains("<script>"))
    }

    /// Gmail threads by subject, Outlook by Thread-Topic and Thread-Index, others by References:
    /// the update and the all-clear land in the notice's conversation in all of them, whatever
    /// their own titles say, and a retry keeps its Message-ID.
    @Test func followUpsStayInTheNoticesConversationAndARetryKeepsItsMessageID() async throws {
        let to = Self.address()
        let email = try plainChannel(to: [to])
        let notice = mailMessage(.notice, recipient: to, title: "[CRITICAL] DNS down")
        let first = try await email.deliver(notice)
        let again = try await email.deliver(notice)  // the same delivery, retried
        #expect(again.reference == first.reference)
        let noticeRef = try #require(first.reference)

        let update = mailMessage(.update, recipient: to, title: "[UPDATED] Fix deployed, caches refreshing", thread: noticeRef,
                                 notice: notice, references: [noticeRef])
        let updateRef = try #require(try await email.deliver(update).reference)
        let clear = mailMessage(.allClear, recipient: to, title: "[RESOLVED] DNS answers again", thread: noticeRef,
                                notice: notice, references: [noticeRef, updateRef])
        let clearRef = try #require(try await email.deliver(clear).reference)
        #expect(Set([noticeRef, updateRef, clearRef]).count == 3)

        let got = try plain().received(for: to)
        #expect(got.count == 4)
        #expect(got.map { $0.header("Message-ID") } == [noticeRef, noticeRef, updateRef, clearRef])
        #expect(got.map { $0.header("Subject") } == ["[CRITICAL] DNS down", "[CRITICAL] DNS down", "Re: [CRITICAL] DNS down",
                                                     "Re: [CRITICAL] DNS down"])
        #expect(got.map { $0.header("Thread-Topic") } == Array(repeating: "[CRITICAL] DNS down", count: 4))
        func spaced(_ s: String?) -> String? { s?.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        #expect(got[0].header("In-Reply-To") == nil)
        #expect(got[2].header("In-Reply-To") == noticeRef && spaced(got[2].header("References")) == noticeRef)
        #expect(got[3].header("In-Reply-To") == updateRef && spaced(got[3].header("References")) == "\(noticeRef) \(updateRef)")
        // Outlook's index: 22 bytes for the notice, 5 more per reply level, each extending its parent's.
        let indexes = got.map { Data(base64Encoded: $0.header("Thread-Index") ?? "") ?? Data() }
        #expect(indexes.map(\.count) == [22, 22, 27, 32])
        #expect(indexes[0].first == 0x01 && indexes[2].prefix(22) == indexes[0] && indexes[3].prefix(27) == indexes[2])
        // The body says its state in its first line.
        #expect(got[2].parts.first { $0.type == "text/plain" }?.text.hasPrefix("Update: Fix deployed") == true)
        #expect(got[3].parts.first { $0.type == "text/plain" }?.text.hasPrefix("Resolved: DNS answers again") == true)
    }

    /// A recipient the notice never reached gets the summary in the same conversation all the same.
    @Test func aSummaryNamesTheNoticeItStandsInFor() async throws {
        let to = Self.address()
        let email = try plainChannel(to: [to])
        let notice = mailMessage(.notice, recipient: to, title: "[MAJOR] API slow")
        let summary = mailMessage(.summary, recipient: to, title: "[RESOLVED] API slow", notice: notice)
        _ = try await email.deliver(summary)
        let got = try #require(try plain().received(for: to).first)
        let noticeID = "<\(notice.deliveryId)@status.example.com>"
        #expect(got.header("Subject") == "Re: [MAJOR] API slow")
        #expect(got.header("In-Reply-To") == noticeID && got.header("References") == noticeID)
        #expect(Data(base64Encoded: got.header("Thread-Index") ?? "")?.count == 27)
    }

    /// Plain ASCII (sent as is, folded) and non-ASCII (sent as encoded words) titles both.
    @Test(arguments: ["Disk full\r\nBcc: evil@example.com\nX-Evil: 1\rCc: x@example.com",
                      "Plattе voll\r\nBcc: evil@example.com\nX-Evil: 1\u{2028}Cc: x@example.com\u{85}"])
    func aTitleCannotAddAHeader(title: String) async throws {
        let to = Self.address()
        let email = try plainChannel(to: [to], from: "Herald <herald@status.example.com>")
        _ = try await email.deliver(mailMessage(.notice, recipient: to, title: title))

        let mail = try #require(try plain().received(for: to).first)
        #expect(mail.rcptTos == [to])
        #expect(mail.header("Bcc") == nil)
        #expect(mail.header("X-Evil") == nil)
        #expect(mail.header("Cc") == nil)
        #expect(mail.headerCount("Subject") == 1)
        let subject = try #require(mail.header("Subject"))
        #expect(subject.contains("Bcc: evil@example.com"))
        #expect(!subject.contains(where: { $0.isNewline }), "\(subject.debugDescription)")
        let headerBlock = mail.rawText.components(separatedBy: "\r\n\r\n")[0]
        #expect(!headerBlock.contains("\nBcc:"))
        #expect(!headerBlock.contains("\nX-Evil:"))
        #expect(!headerBlock.contains("\rCc:"))
        #expect(mail.defects.isEmpty, "parser defects: \(mail.defects)")
    }

    @Test func aLongNonASCIITitleIsFoldedIntoEncodedWords() async throws {
        let to = Self.address()
        let email = try plainChannel(to: [to])
        let title = String(repeating: "Störung der Namensauflösung 🔥 in Zürich — ", count: 4) + "Ende"
        _ = try await email.deliver(mailMessage(.notice, recipient: to, title: title))

        let mail = try #require(try plain().received(for: to).first)
        #expect(mail.header("Subject") == title)
        #expect(mail.defects.isEmpty, "parser defects: \(mail.defects)")
        for line in mail.rawText.components(separatedBy: "\r\n") {
            #expect(line.utf8.count <= 78, "line too long: \(line)")
        }
    }

    @Test func eachDeliveryGoesToItsRecipientOnly() async throws {
        let a = Self.address("a"), b = Self.address("b")
        let email = try plainChannel(to: [a, b])
        #expect(email.recipients == [a, b])
        #expect(email.redactedDescription == "email smtp://127.0.0.1:\(try plain().port) from herald@status.example.com to 2 recipient(s)")
        _ = try await email.deliver(mailMessage(.notice, recipient: b, title: "DNS down"))

        #expect(try plain().received(for: a).isEmpty)
        let mail = try #require(try plain().received(for: b).first)
        #expect(mail.rcptTos == [b])
        #expect(mail.header("To") == b)
    }

    // MARK: STARTTLS and AUTH

    @Test func authOverRequiredSTARTTLSDelivers() async throws {
        let to = Self.address()
        let email = try secureChannel(to: [to])
        let receipt = try await email.deliver(mailMessage(.notice, recipient: to, title: "Störung: DNS ✓"))
        #expect(receipt.status == 250)

        let mail = try #require(try secure().received(for: to).first)
        #expect(mail.tls)
        #expect(mail.authenticatedAs == SMTPPeer.username)
        #expect(mail.header("Subject") == "Störung: DNS ✓")
        #expect(mail.header("Message-ID") == receipt.reference)
    }

    @Test func aWrongPasswordFailsForGoodAsAuthWithoutShowingIt() async throws {
        let to = Self.address()
        let wrong = "not-the-Pa55word-7731"
        let email = try secureChannel(to: [to], password: wrong)
        let error = try #require(await expectError { try await email.deliver(mailMessage(.notice, recipient: to, title: "x")) })
        #expect(!error.isTransient)
        #expect(error.reason == .auth)
        #expect(error.status == 535)
        #expect(error.detail.hasPrefix("SMTP 535: "))
        #expect(error.detail.contains("5.7.8 Authentication credentials invalid"))
        for text in [error.detail, error.description, "\(error)"] {
            #expect(!text.contains(wrong))
            #expect(!text.contains(SMTPPeer.password))
            #expect(!text.contains(SMTPPeer.username))
        }
        #expect(try secure().received(for: to).isEmpty)
    }

    @Test func verifyingTLSIsTheDefaultAndRefusesAnUnknownCertificate() async throws {
        let to = Self.address()
        // An unverified connection to this server may be idle in the transport; it must not count.
        let warm = Self.address("warm")
        _ = try await secureChannel(to: [warm], verifyTLS: false).deliver(mailMessage(.notice, recipient: warm, title: "x"))
        let email = try secureChannel(to: [to], verifyTLS: true)
        let error = try #require(await expectError { try await email.deliver(mailMessage(.notice, recipient: to, title: "x")) })
        #expect(error.reason == .tls)
        #expect(error.isTransient)
        #expect(!error.detail.contains(SMTPPeer.password))
        #expect(try secure().received(for: to).isEmpty)
    }

    @Test func requiredSTARTTLSNeverFallsBackToCleartext() async throws {
        let to = Self.address()
        // A cleartext connection to the same server is open and idle in the transport's cache...
        let warm = Self.address("warm")
        _ = try await plainChannel(to: [warm]).deliver(mailMessage(.notice, recipient: warm, title: "x"))
        // ...yet the default `starttls: required` must not use it, and the plain peer offers no
        // STARTTLS: nothing is sent, with or without credentials.
        let url = try plain().url
        for values in [["url": url, "from": "herald@status.example.com"],
                       ["url": url, "from": "herald@status.example.com", "username": SMTPPeer.username, "password": SMTPPeer.password]] {
            let email = try channel(values, to: [to])
            let error = try #require(await expectError { try await email.deliver(mailMessage(.notice, recipient: to, title: "x")) })
            #expect(error.reason == .tls)
            #expect(!error.detail.contains(SMTPPeer.password))
        }
        #expect(try plain().received(for: to).isEmpty)
    }

    // MARK: SMTP replies

    @Test func a4xxReplyIsRetriedAnd5xxIsNot() async throws {
        let busy = Self.address("busy"), nobody = Self.address("nobody")
        let email = try plainChannel(to: [busy, nobody])

        let later = try #require(await expectError { try await email.deliver(mailMessage(.notice, recipient: busy, title: "x")) })
        #expect(later.isTransient)
        #expect(later.status == 451)
        #expect(later.reason == .rateLimited)
        #expect(later.detail.hasPrefix("SMTP 451: "))
        #expect(later.detail.contains("451 4.3.0 Mailbox busy, try again later"), "the server's own words: \(later.detail)")

        let never = try #require(await expectError { try await email.deliver(mailMessage(.notice, recipient: nobody, title: "x")) })
        #expect(!never.isTransient)
        #expect(never.status == 550)
        #expect(never.reason == .rejected)
        #expect(never.detail.hasPrefix("SMTP 550: "))
        #expect(never.detail.contains("550 5.1.1 No such user here"), "the server's own words: \(never.detail)")
    }

    @Test func nothingListeningIsANetworkErrorToRetry() async throws {
        let port = try SynapsePeer.freePort()
        let to = Self.address()
        let email = try channel(["url": "smtp://127.0.0.1:\(port)", "from": "herald@status.example.com", "starttls": "off"], to: [to])
        let error = try #require(await expectError { try await email.deliver(mailMessage(.notice, recipient: to, title: "x")) })
        #expect(error.isTransient)
        #expect(error.reason == .network)
        #expect(error.status == nil)
    }

    // MARK: Configuration

    func configErrors(_ yaml: String) -> [ConfigError] {
        do {
            let config = try ConfigLoader.load(yaml: yaml, file: "mail.yaml")
            return ChannelRegistry.validate(config)
        } catch let errors as ConfigErrors {
            return errors.errors
        } catch {
            Issue.record("unexpected \(error)")
            return []
        }
    }

    @Test(arguments: [
        // (the channel's keys, the key the error names, a piece of its message)
        ("url: smtp://mail.example.com:587\n    from: ops@example.com", "to", "missing required key"),
        ("url: smtp://mail.example.com:587\n    from: ops@example.com\n    to: []", "to", "at least one"),
        ("url: smtp://mail.example.com:587\n    from: ops@example.com\n    to: [a@example.com, not-an-address]", "to", "entry 2"),
        ("url: smtp://mail.example.com:587\n    from: ops@example.com\n    to: [a@example.com]\n    starttls: sometimes", "starttls",
         "required, opportunistic or off"),
        ("url: https://mail.example.com\n    from: ops@example.com\n    to: [a@example.com]", "url", "smtp or smtps"),
        ("from: ops@example.com\n    to: [a@example.com]", "url", "missing required key"),
        ("url: smtp://mail.example.com\n    to: [a@example.com]", "from", "missing required key"),
        ("url: smtp://mail.example.com\n    from: Ops <ops@>\n    to: [a@example.com]", "from", "expected an address"),
        ("url: smtp://mail.example.com\n    from: ops@example.com\n    to: [a@example.com]\n    password: hunter2-secret", "username",
         "both username and password"),
        ("url: smtp://bob:hunter2-secret@mail.example.com\n    from: ops@example.com\n    to: [a@example.com]", "url", "credentials"),
    ])
    func configurationErrorsNameTheKey(keys: String, key: String, message: String) {
        let errors = configErrors("channels:\n  mail:\n    type: email\n    \(keys)\n")
        #expect(errors.count == 1, "\(errors)")
        let error = errors.first
        #expect(error?.keyPath == "channels.mail.\(key)")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error.map { !$0.description.contains("hunter2-secret") } ?? true)
    }

    @Test func flatSettingsWithoutToAndABadStarttlsAreRefused() throws {
        let transport = self.transport
        let missingTo = ChannelSettings(channel: "mail", type: "email",
                                        values: ["url": "smtp://mail.example.com", "from": "ops@example.com"])
        #expect {
            _ = try EmailChannel.make(missingTo, ChannelContext(transport: transport))
        } throws: { ($0 as? ConfigError)?.keyPath == "channels.mail.to" }

        let yaml = "channels:\n  mail:\n    type: email\n    url: smtp://mail.example.com\n    from: ops@example.com\n    to: a@example.com\n    starttls: maybe\n"
        let settings = try ConfigLoader.load(yaml: yaml, file: "mail.yaml").channels[0].settings
        #expect {
            _ = try EmailChannel.make(settings, ChannelContext(transport: transport))
        } throws: { ($0 as? ConfigError)?.keyPath == "channels.mail.starttls" }
    }

    @Test func aValidConfigurationPassesCheckAndPrintsWithoutThePassword() throws {
        let yaml = """
            channels:
              mail:
                type: email
                url: smtps://mail.example.com:465
                from: "Herald <herald@example.com>"
                to: [ops@example.com, oncall@example.com]
                username: herald
                password: hunter2-secret
                starttls: opportunistic
                verify_tls: false
            """
        let config = try ConfigLoader.load(yaml: yaml, file: "mail.yaml")
        #expect(ChannelRegistry.validate(config).isEmpty)
        let channels = try ChannelRegistry.build(config, transport: transport)
        let email = try #require(channels["mail"] as? EmailChannel)
        #expect(email.recipients == ["ops@example.com", "oncall@example.com"])
        #expect(email.startTLS == .opportunistic)
        #expect(!email.verifyTLS)
        #expect(email.redactedDescription == "email smtps://mail.example.com:465 from herald@example.com to 2 recipient(s)")
        #expect(config.channels[0].settings.secretValues.contains("hunter2-secret"))
    }

    @Test func aTransportThatCannotMailIsAConfigurationError() throws {
        struct HTTPOnly: HTTPTransport {
            func send(_ request: HTTPRequest) async throws -> HTTPResponse { HTTPResponse(status: 200) }
        }
        let yaml = "channels:\n  mail:\n    type: email\n    url: smtp://mail.example.com\n    from: ops@example.com\n    to: a@example.com\n"
        let settings = try ConfigLoader.load(yaml: yaml, file: "mail.yaml").channels[0].settings
        #expect(throws: ConfigError.self) {
            _ = try EmailChannel.make(settings, ChannelContext(transport: HTTPOnly()))
        }
    }

    // MARK: Pieces

    @Test func quotedPrintableKeepsLinesShortAndEncodesWhatMustBe() {
        let text = String(repeating: "é", count: 60) + "\n.leading dot = sign \nend"
        let encoded = EmailChannel.quotedPrintable(text)
        for line in encoded.components(separatedBy: "\r\n") {
            #expect(line.count <= 76)
        }
        #expect(encoded.contains("=2Eleading dot =3D sign=20\r\nend"))
        #expect(!encoded.contains("\n.") )
    }

    @Test func classificationOfTransportErrors() {
        let cases: [(TransportError, Bool, DeliveryError.Reason)] = [
            (TransportError(kind: .send, code: 55, message: "RCPT failed: 452", status: 452), true, .rateLimited),
            (TransportError(kind: .send, code: 55, message: "MAIL failed: 471", status: 471), true, .serverError),
            (TransportError(kind: .other, code: 67, message: "Login denied", status: 535), false, .auth),
            (TransportError(kind: .other, code: 67, message: "Login denied"), false, .auth),
            (TransportError(kind: .send, code: 55, message: "RCPT failed: 553", status: 553), false, .rejected),
            (TransportError(kind: .timeout, code: 28, message: "Timeout was reached"), true, .timeout),
            (TransportError(kind: .invalidRequest, message: "invalid envelope recipient"), false, .configuration),
        ]
        for (error, transient, reason) in cases {
            let classified = EmailChannel.classify(error)
            #expect(classified.isTransient == transient, "\(error)")
            #expect(classified.reason == reason, "\(error)")
            #expect(classified.status == error.status)
        }
    }
}

/// A message as the dispatcher hands it to the channel; a follow-up names its `notice`.
func mailMessage(_ kind: DeliveryKind, recipient: String, title: String, thread: String? = nil, notice: OutboundMessage? = nil,
                 references: [String] = []) -> OutboundMessage {
    let at = RFC3339.parse("2026-11-25T10:02:00Z")!
    let status: EventStatus = kind == .notice ? .triggered : kind == .update ? .updated : .resolved
    let event = Event(id: Identifier.make(prefix: "evt", at: at), incident: "dns", status: status,
                      severity: .critical, title: title, message: "resolvers time out",
                      components: ["web"], link: "https://status.example.com/dns?a=1&b=2", occurredAt: at, receivedAt: at)
    let incident = Incident(key: "dns", status: kind.isResolution ? .resolved : .open, cycle: 1, title: event.title,
                            severity: .critical, openedAt: at, resolvedAt: kind.isResolution ? at.addingTimeInterval(2340) : nil, updatedAt: at)
    let bare = title.split(separator: "]", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? title
    let firstLine = kind == .update ? "Update: \(bare)" : kind.isResolution ? "Resolved: \(bare)" : "DNS <resolvers> & caches failing"
    let text = """
        \(firstLine)
        Since: 2026-11-25 10:02 UTC

        Resolvers time out for ünïcode.example

        More: https://status.example.com/dns?a=1&b=2.
        """
    return OutboundMessage(deliveryId: Identifier.make(prefix: "dlv"), kind: kind, recipient: recipient, event: event,
                           incident: incident, title: title, text: text, thread: thread, noticeTitle: notice?.title,
                           noticeDeliveryId: notice?.deliveryId, references: references)
}
