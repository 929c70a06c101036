import Foundation
import HeraldCore
import HeraldTransport

/// `type: email` — one message per recipient over SMTP: a `multipart/alternative` with a plain
/// text and an HTML part. Herald makes one delivery per address in `to` (see `recipients`), so
/// each recipient has their own receipt, retries and all-clear. The receipt reference is the
/// `Message-ID` (`<DELIVERY_ID@FROM_DOMAIN>`, the same on every retry). A follow-up (update,
/// all-clear, summary) is `Re: <the notice's subject>` with `In-Reply-To`, the whole `References`
/// chain and Outlook's `Thread-Topic`/`Thread-Index`, so it lands in the notice's conversation in
/// Gmail, Outlook and every client that threads by headers (see `EmailThreading`).
///
/// Keys:
/// - `url` — `smtp://host:port` (STARTTLS per `starttls`) or `smtps://host:port` (TLS from the
///   first byte), required; credentials go in `username`/`password`, not in the URL
/// - `from` — `addr` or `Name <addr>`, required; its domain names the Message-IDs
/// - `to` — a list of addresses, required, at least one
/// - `username`, `password` / `password_file` — SMTP AUTH (PLAIN, LOGIN, … as the server offers)
/// - `starttls` — `required` (default: never speak in the clear), `opportunistic`, `off`
/// - `verify_tls` — default true
///
/// Errors: an SMTP 4xx reply retries (421/450/451/452 as `rateLimited`: the server asked to come
/// back later), a 5xx fails now (`auth` for 530/534/535/538 and refused logins, else
/// `rejected`); no reply (network, timeout, TLS) retries; a message the transport refuses to
/// send is a configuration error.
public struct EmailChannel: Channel {
    public let name: String
    public let type = "email"
    /// A subject longer than this is unreadable in a mail list; the body has no limit.
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 200) }
    public let recipients: [String]

    let url: String
    let fromName: String?
    let fromAddress: String
    let username: String?
    let password: Secret?
    let startTLS: MailMessage.StartTLS
    let verifyTLS: Bool
    let timeout: Duration
    let transport: any MailTransport

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        try make(settings, context, recipientsFromTo: true)
    }

    /// With `recipientsFromTo` false (the subscribers channel), `to` is not read: the recipients
    /// come from elsewhere.
    static func make(_ settings: ChannelSettings, _ context: ChannelContext, recipientsFromTo: Bool) throws -> EmailChannel {
        let url = try settings.url("url", schemes: ["smtp", "smtps"])
        if let components = URLComponents(string: url), components.user != nil || components.password != nil {
            settings.recordSecret(url)
            throw settings.error("url", "must not carry credentials; give username and password instead")
        }
        let from = try settings.string("from")
        guard let (fromName, fromAddress) = parseFrom(from) else {
            throw settings.error("from", "expected an address (ops@example.com) or a name and an address (Herald <ops@example.com>)")
        }
        var to: [String] = []
        let list = recipientsFromTo ? try settings.stringList("to") : []
        guard let list else {
            throw settings.error("to", "missing required key (a list of email addresses)")
        }
        for (index, entry) in list.enumerated() {
            let address = entry.trimmingCharacters(in: .whitespaces)
            guard isAddress(address) else {
                throw settings.error("to", "entry \(index + 1) is not an email address (expected local@domain)")
            }
            if !to.contains(where: { $0.caseInsensitiveCompare(address) == .orderedSame }) { to.append(address) }
        }
        if to.isEmpty && recipientsFromTo { throw settings.error("to", "must list at least one address") }
        let username = try settings.optionalString("username").flatMap { $0.isEmpty ? nil : $0 }
        let password = try settings.secret("password")
        if let username { settings.recordSecret(username) }
        if (username == nil) != (password == nil) {
            throw settings.error(username == nil ? "username" : "password", "give both username and password, or neither")
        }
        let startTLS: MailMessage.StartTLS
        if let value = try settings.optionalString("starttls") {
            guard let parsed = MailMessage.StartTLS(rawValue: value.lowercased()) else {
                throw settings.error("starttls", "expected required, opportunistic or off")
            }
            startTLS = parsed
        } else {
            startTLS = .required
        }
        let verifyTLS = try settings.bool("verify_tls") ?? true
        guard let transport = context.transport as? any MailTransport else {
            throw settings.typeError("this transport cannot send email")
        }
        return EmailChannel(name: settings.channel, recipients: to, url: url, fromName: fromName, fromAddress: fromAddress,
                            username: username, password: password, startTLS: startTLS, verifyTLS: verifyTLS,
                            timeout: context.timeout, transport: transport)
    }

    public var redactedDescription: String {
        "email \(RedactedURL(url)) from \(fromAddress) to \(recipients.count) recipient(s)"
    }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        guard let recipient = message.recipient, Self.isAddress(recipient) else {
            throw DeliveryError.permanent(.configuration, "no valid recipient address for this delivery")
        }
        return try await send(message, to: recipient)
    }

    /// Sends one message to `recipient`, with `extraHeaders` and a `footer` after the text.
    func send(_ message: OutboundMessage, to recipient: String, extraHeaders: [(String, String)] = [],
              footer: String? = nil) async throws -> Receipt {
        let (messageID, data) = compose(message, to: recipient, date: Date(), extraHeaders: extraHeaders, footer: footer)
        let response = try await transmit(data, to: recipient)
        return Receipt(reference: messageID, status: response.code)
    }

    /// Hands one message to the transport; its errors come back as `DeliveryError`s.
    private func transmit(_ data: [UInt8], to recipient: String) async throws -> MailResponse {
        let mail = MailMessage(url: url, from: fromAddress, recipients: [recipient], data: data,
                               username: username, password: password?.value, startTLS: startTLS,
                               timeout: timeout, verifyTLS: verifyTLS)
        do {
            return try await transport.send(mail)
        } catch let error as TransportError {
            throw classify(error)
        } catch {
            throw DeliveryError.transient(.other, redact("\(error)"))
        }
    }

    /// A plain text message that is not a delivery (a subscription's confirmation): sent once,
    /// its errors classified as a delivery's are.
    func sendPlain(to recipient: String, subject: String, text: String) async throws {
        let date = Date()
        let headers = opening(to: recipient, subject: subject, date: date,
                              messageID: "<\(Self.msgIDPart(Identifier.make(prefix: "msg", at: date)))@\(messageIDDomain)>") + [
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "quoted-printable"),
            ("Auto-Submitted", "auto-generated"),
        ]
        _ = try await transmit(Array((Self.headerBlock(headers) + Self.quotedPrintable(text) + "\r\n").utf8), to: recipient)
    }

    // MARK: Classification

    func classify(_ error: TransportError) -> DeliveryError {
        var classified = Self.classify(error)
        classified.detail = redact(classified.detail)
        return classified
    }

    /// SMTP 4xx retries, 5xx fails; no reply retries unless the message could never be sent.
    static func classify(_ error: TransportError) -> DeliveryError {
        // libcurl's CURLE_LOGIN_DENIED: the server refused the credentials.
        let loginDenied: Int32 = 67
        guard let code = error.status else {
            if error.code == loginDenied {
                return .permanent(.auth, "SMTP login denied: \(error.message)")
            }
            return HTTPClassifier.classify(error)
        }
        let detail = "SMTP \(code): \(error.message)"
        switch code {
        case 421, 450, 451, 452:
            return .transient(.rateLimited, status: code, detail)
        case 454:
            return .transient(.auth, status: code, detail)
        case 400..<500:
            return .transient(.serverError, status: code, detail)
        case _ where error.code == loginDenied:
            return .permanent(.auth, status: code, detail)
        case 530, 534, 535, 538:
            return .permanent(.auth, status: code, detail)
        default:
            return .permanent(.rejected, status: code, detail)
        }
    }

    /// The transport already keeps credentials out of its errors; this is the second lock.
    func redact(_ text: String) -> String {
        var secrets = [String]()
        if let password { secrets.append(password.value) }
        if let username { secrets.append(username) }
        var out = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) where !secret.isEmpty && out.contains(secret) {
            out = out.replacingOccurrences(of: secret, with: "****")
        }
        return out
    }

    // MARK: The message

    /// The RFC 5322 message for one recipient, and its Message-ID (angle brackets included, as in
    /// the header). Every value from the event is cleaned of control characters before encoding,
    /// so no event can add a header line.
    func compose(_ m: OutboundMessage, to recipient: String, date: Date, extraHeaders: [(String, String)] = [],
                 footer: String? = nil) -> (messageID: String, data: [UInt8]) {
        let domain = messageIDDomain
        let messageID = "<\(Self.msgIDPart(m.deliveryId))@\(domain)>"
        let boundary = "=_herald_\(Self.msgIDPart(m.deliveryId))"

        var headers = opening(to: recipient, subject: EmailThreading.subject(m), date: date, messageID: messageID)
        for (name, value) in EmailThreading.headers(m, messageID: messageID, domain: domain) {
            headers.append((name, name == "Thread-Topic" ? Self.encodeHeaderText(Self.headerSafe(value), nameLength: name.count) : value))
        }
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/alternative;\r\n boundary=\"\(boundary)\""),
            ("Auto-Submitted", "auto-generated"),
            ("X-Herald-Delivery", Self.msgIDPart(m.deliveryId)),
        ]
        headers += extraHeaders.map { ($0.0, Self.headerSafe($0.1)) }
        let text = footer.map { m.text + "\n\n-- \n" + $0 } ?? m.text

        var out = Self.headerBlock(headers)
        out += "This is a multipart message in MIME format.\r\n"
        out += "--\(boundary)\r\n"
        out += "Content-Type: text/plain; charset=utf-8\r\n"
        out += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        out += Self.quotedPrintable(text)
        out += "\r\n--\(boundary)\r\n"
        out += "Content-Type: text/html; charset=utf-8\r\n"
        out += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        out += Self.quotedPrintable(Self.html(title: m.title, text: text))
        out += "\r\n--\(boundary)--\r\n"
        return (messageID, Array(out.utf8))
    }

    /// The domain of the sender's address, which names Message-IDs.
    var messageIDDomain: String { fromAddress.split(separator: "@").last.map(String.init) ?? "herald.invalid" }

    /// The headers every message starts with: From, To, Subject (cleaned and encoded), Date, Message-ID.
    func opening(to recipient: String, subject: String, date: Date, messageID: String) -> [(String, String)] {
        [
            ("From", Self.mailbox(name: fromName, address: fromAddress)),
            ("To", recipient),
            ("Subject", Self.encodeHeaderText(Self.headerSafe(subject), nameLength: "Subject".count)),
            ("Date", Self.rfc5322Date(date)),
            ("Message-ID", messageID),
        ]
    }

    /// The header lines and the blank line that ends them.
    static func headerBlock(_ headers: [(String, String)]) -> String {
        headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
    }

    /// `addr`, or `"Name" <addr>` / `=?UTF-8?B?…?= <addr>`.
    static func mailbox(name: String?, address: String) -> String {
        guard let name = name.map(headerSafe), !name.trimmingCharacters(in: .whitespaces).isEmpty else { return address }
        if name.unicodeScalars.allSatisfy({ $0.isASCII }) && !name.contains("=?") {
            let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(quoted)\" <\(address)>"
        }
        return encodedWords(name, firstLineRoom: 40).joined(separator: "\r\n ") + " <\(address)>"
    }

    /// Control characters (CR and LF included, and Unicode line separators) become spaces.
    static func headerSafe(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { scalar in
            let v = scalar.value
            if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x2028 || v == 0x2029 {
                return " "
            }
            return scalar
        }))
    }

    /// A header value as is (folded at spaces) when it is plain ASCII, else as RFC 2047 encoded
    /// words (UTF-8, B), each on its own folded line and never splitting a character.
    static func encodeHeaderText(_ s: String, nameLength: Int) -> String {
        let plain = s.unicodeScalars.allSatisfy { $0.isASCII } && !s.contains("=?")
        if plain {
            return fold(s, firstLineRoom: 78 - nameLength - 2)
        }
        return encodedWords(s, firstLineRoom: 76 - nameLength - 2).joined(separator: "\r\n ")
    }

    /// Folds ASCII text at spaces so lines stay within 78 characters where a space allows.
    static func fold(_ s: String, firstLineRoom: Int) -> String {
        var lines: [String] = []
        var current = ""
        var room = firstLineRoom
        for word in s.split(separator: " ", omittingEmptySubsequences: false) {
            if current.isEmpty && lines.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= room || current.trimmingCharacters(in: .whitespaces).isEmpty {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
                room = 77  // after the folding space
            }
        }
        lines.append(current)
        return lines.joined(separator: "\r\n ")
    }

    /// `=?UTF-8?B?…?=` words of at most 76 characters (the first fits `firstLineRoom`), split
    /// on Unicode scalar boundaries.
    static func encodedWords(_ s: String, firstLineRoom: Int) -> [String] {
        // "=?UTF-8?B?" + "?=" is 12 characters; base64 makes 4 of every 3 bytes.
        func maxBytes(_ room: Int) -> Int { max(3, (room - 12) / 4 * 3) }
        var words: [String] = []
        var chunk: [UInt8] = []
        var limit = maxBytes(firstLineRoom)
        for scalar in s.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > limit, !chunk.isEmpty {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
                limit = maxBytes(75)
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty {
            words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
        }
        return words
    }

    /// `Tue, 25 Nov 2026 10:02:00 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.weekday, .year, .month, .day, .hour, .minute, .second], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(format: "%@, %02d %@ %04d %02d:%02d:%02d +0000",
                      days[c.weekday! - 1], c.day!, months[c.month! - 1], c.year!, c.hour!, c.minute!, c.second!)
    }

    /// Only characters allowed in the left part of a msg-id (dot-atom text).
    static func msgIDPart(_ s: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")
        let cleaned = String(s.filter { allowed.contains($0) })
        return cleaned.isEmpty ? "herald" : cleaned
    }

    /// The earlier notice's Message-ID as `<left@right>`, with or without brackets as stored.
    static func threadID(_ reference: String) -> String {
        var inner = headerSafe(reference).trimmingCharacters(in: .whitespaces)
        if inner.hasPrefix("<") { inner.removeFirst() }
        if inner.hasSuffix(">") { inner.removeLast() }
        let parts = inner.split(separator: "@", maxSplits: 1)
        guard parts.count == 2 else { return "" }
        return "<\(msgIDPart(String(parts[0])))@\(msgIDPart(String(parts[1])))>"
    }

    // MARK: Addresses

    /// `addr` or `Name <addr>` / `"Name" <addr>`; nil when the address is not plausible.
    static func parseFrom(_ s: String) -> (name: String?, address: String)? {
        let trimmed = s.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
                .trimmingCharacters(in: .whitespaces)
            var name = trimmed[..<open].trimmingCharacters(in: .whitespaces)
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
                name = String(name.dropFirst().dropLast())
            }
            guard isAddress(address) else { return nil }
            return (name.isEmpty ? nil : name, address)
        }
        return isAddress(trimmed) ? (nil, trimmed) : nil
    }

    static func isAddress(_ s: String) -> Bool { EmailAddress.isPlausible(s) }

    // MARK: Bodies

    /// The text as HTML: escaped, blank lines make paragraphs, line breaks kept, http(s) links
    /// clickable.
    static func html(title: String, text: String) -> String {
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
        var paragraphs: [[String]] = [[]]
        for line in lines {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                if !(paragraphs.last?.isEmpty ?? true) { paragraphs.append([]) }
            } else {
                paragraphs[paragraphs.count - 1].append(linkified(line))
            }
        }
        let body = paragraphs.filter { !$0.isEmpty }.map { "<p>" + $0.joined(separator: "<br>\n") + "</p>" }.joined(separator: "\n")
        return """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>\(ChatText.html(headerSafe(title)))</title></head>
            <body>
            \(body)
            </body></html>
            """
    }

    /// One line escaped, with every http(s) URL in it an anchor (trailing punctuation left out).
    static func linkified(_ line: some StringProtocol) -> String {
        // Most lines have no link: escaping is all they need.
        guard line.contains("://") else { return ChatText.html(String(line)) }
        var out = ""
        var rest = Substring(line)
        while let begin = ["http://", "https://"].compactMap({ rest.range(of: $0, options: .caseInsensitive)?.lowerBound }).min() {
            out += ChatText.html(String(rest[..<begin]))
            var end = rest[begin...].firstIndex(where: { $0.isWhitespace || "<>\"".contains($0) }) ?? rest.endIndex
            while end > begin, ".,;:!?)]}'".contains(rest[rest.index(before: end)]) {
                end = rest.index(before: end)
            }
            // Never empty: the scheme's "//" is not trimmed, so the loop always moves on.
            let url = String(rest[begin..<end])
            let escaped = ChatText.html(url)
            let hasHost = url.range(of: "://").map { !url[$0.upperBound...].isEmpty } ?? false
            out += hasHost ? "<a href=\"\(escaped)\">\(escaped)</a>" : escaped
            rest = rest[end...]
        }
        return out + ChatText.html(String(rest))
    }

    /// Quoted-printable (RFC 2045) of the UTF-8 text with CRLF line ends: soft breaks keep lines
    /// within 76 characters; `=`, controls, non-ASCII, trailing blanks and a leading dot are encoded.
    static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8 + 16)
        var line: [UInt8] = []
        // One line's bytes, each literal or =XX, with a soft break before a piece that would pass 75.
        func encode(_ line: [UInt8]) {
            var length = 0
            for (i, byte) in line.enumerated() {
                let literal: Bool
                switch byte {
                case 0x21...0x7E: literal = byte != UInt8(ascii: "=") && !(i == 0 && byte == UInt8(ascii: "."))
                case 0x20, 0x09: literal = i != line.count - 1
                default: literal = false
                }
                let size = literal ? 1 : 3
                if length + size > 75 {
                    out += [UInt8(ascii: "="), 13, 10]
                    length = 0
                }
                if literal {
                    out.append(byte)
                } else {
                    out += [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
                }
                length += size
            }
        }
        // CRLF, CR and LF all end a line; lines are joined with CRLF.
        var afterCR = false
        for byte in text.utf8 {
            if byte == 10 && afterCR {
                afterCR = false
                continue
            }
            afterCR = byte == 13
            if byte == 10 || byte == 13 {
                encode(line)
                out += [13, 10]
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
            }
        }
        encode(line)
        return String(decoding: out, as: UTF8.self)
    }
}

/// `herald check` and loading build channels with a transport that sends nothing; email
/// channels need it to be a mail transport too.
extension ChannelRegistry.NoTransport: MailTransport {
    func send(_ mail: MailMessage) async throws -> MailResponse {
        throw TransportError(kind: .invalidRequest, message: "validation only")
    }
}
