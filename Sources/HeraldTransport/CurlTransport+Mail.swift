import CCurl
import Foundation

/// SMTP through the same multi handle and loop thread as HTTP: a mail is one more `Transfer`, whose
/// body libcurl pulls through READFUNCTION. libcurl speaks the protocol (EHLO, STARTTLS, AUTH, MAIL
/// FROM, RCPT TO, DATA with dot-stuffing, QUIT on close) and keeps connections for reuse.
extension CurlTransport: MailTransport {
    /// Sends one message. Throws `TransportError`; its `status` is the SMTP reply code when the server
    /// refused a command (e.g. 550 for a recipient, 535 for credentials).
    public func send(_ mail: MailMessage) async throws -> MailResponse {
        if let problem = Self.validate(mail) {
            throw problem
        }
        let engine = self.engine
        return try await withCheckedThrowingContinuation { continuation in
            engine.submit(Transfer(mail: mail, continuation: continuation))
        }
    }

    /// Rejects what libcurl would misinterpret or what could inject SMTP commands.
    /// Messages never quote the addresses, credentials or the URL.
    static func validate(_ mail: MailMessage) -> TransportError? {
        let url = mail.url.lowercased()
        if !(url.hasPrefix("smtp://") || url.hasPrefix("smtps://")) || mail.url.utf8.contains(where: isControl) {
            return TransportError(kind: .invalidRequest, message: "mail URL must be smtp:// or smtps:// without control characters")
        }
        if !isEnvelopeAddress(mail.from) {
            return TransportError(kind: .invalidRequest, message: "invalid envelope sender")
        }
        if mail.recipients.isEmpty {
            return TransportError(kind: .invalidRequest, message: "no recipients")
        }
        if !mail.recipients.allSatisfy(isEnvelopeAddress) {
            return TransportError(kind: .invalidRequest, message: "invalid envelope recipient")
        }
        if mail.username?.utf8.contains(0) == true || mail.password?.utf8.contains(0) == true {
            return TransportError(kind: .invalidRequest, message: "credentials contain NUL")
        }
        if mail.data.isEmpty {
            return TransportError(kind: .invalidRequest, message: "empty message")
        }
        return nil
    }

    /// A bare address for `MAIL FROM`/`RCPT TO` (libcurl adds the angle brackets): no controls,
    /// spaces or brackets that could end the command early or add parameters.
    private static func isEnvelopeAddress(_ address: String) -> Bool {
        !address.isEmpty && address.utf8.allSatisfy { byte in
            !isControl(byte) && byte != 0x20 && byte != UInt8(ascii: "<") && byte != UInt8(ascii: ">")
        }
    }

    private static func isControl(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7F
    }

    /// The caller's answer once libcurl is done: success with the final reply code, or the error
    /// with the code of the refused command. A code below 400 left over from an earlier command
    /// says nothing about a network or TLS failure, so it is not attached.
    static func mailResult(_ result: CURLcode, code: Int, micros: Int64, transfer: Transfer) -> Result<Transfer.Answer, TransportError> {
        if result == CURLE_OK {
            return .success(.mail(MailResponse(code: code, duration: .microseconds(micros))))
        }
        var error = CurlTransport.error(for: result, transfer: transfer)
        if code >= 400 {
            error.status = code
            // The server's own words (e.g. "550 5.1.1 No such user here") say what to fix.
            let reply = String(decoding: transfer.lastReply, as: UTF8.self)
            if reply.hasPrefix(String(code)) {
                error.message += "; server said: " + redact(String(reply.prefix(200)), mail: transfer.mailMessage)
            }
        }
        return .failure(error)
    }

    /// Removes the password, the username and the URL's userinfo from `text`.
    static func redact(_ text: String, mail: MailMessage?) -> String {
        guard let mail else { return text }
        var secrets: [String] = []
        if let password = mail.password { secrets.append(password) }
        if let username = mail.username { secrets.append(username) }
        if let schemeEnd = mail.url.range(of: "://") {
            let rest = mail.url[schemeEnd.upperBound...]
            let authority = rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex)]
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                secrets.append(String(userinfo))
                secrets.append(contentsOf: userinfo.split(separator: ":").map(String.init))
            }
        }
        var result = text
        for secret in Set(secrets).filter({ !$0.isEmpty }).sorted(by: { $0.count > $1.count }) where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: "[redacted]")
        }
        return result
    }
}

extension CurlTransport.Engine {
    /// Options for an SMTP transfer (loop thread). The recipient list lives in `transfer.headerList`
    /// and is freed with it.
    func configureMail(_ easy: UnsafeMutableRawPointer, _ mail: MailMessage, for transfer: CurlTransport.Transfer,
                       opaque: UnsafeMutableRawPointer, share: UnsafeMutableRawPointer?) -> CURLcode {
        var rc = CURLE_OK
        func set(_ code: CURLcode) {
            if rc == CURLE_OK && code != CURLE_OK { rc = code }
        }
        set(hc_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer))
        set(hc_easy_setopt_ptr(easy, CURLOPT_PRIVATE, opaque))
        set(hc_easy_setopt_read_cb(easy, curlReadCallback))
        set(hc_easy_setopt_ptr(easy, CURLOPT_READDATA, opaque))
        // Server replies are not a body; swallow anything libcurl might hand over.
        set(hc_easy_setopt_write_cb(easy, curlWriteCallback))
        set(hc_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, opaque))
        // libcurl hands each SMTP reply line to the header callback: keep the last for errors.
        set(hc_easy_setopt_header_cb(easy, curlMailReplyCallback))
        set(hc_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, opaque))
        set(hc_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        set(hc_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps"))
        set(hc_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, mail.verifyTLS ? 1 : 0))
        set(hc_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, mail.verifyTLS ? 2 : 0))
        set(hc_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(mail.timeout)))
        set(hc_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(mail.connectTimeout)))
        set(hc_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1))
        if let share {
            _ = hc_easy_setopt_ptr(easy, CURLOPT_SHARE, share)
        }
        set(hc_easy_setopt_str(easy, CURLOPT_URL, mail.url))
        // smtps:// is TLS from the first byte; for smtp:// this decides about STARTTLS.
        let useSSL: curl_usessl
        switch mail.startTLS {
        case .required: useSSL = CURLUSESSL_ALL
        case .opportunistic: useSSL = CURLUSESSL_TRY
        case .off: useSSL = CURLUSESSL_NONE
        }
        set(hc_easy_setopt_long(easy, CURLOPT_USE_SSL, Int(useSSL.rawValue)))
        // libcurl (7.88 here) matches a cached smtp:// connection without looking at CURLOPT_USE_SSL
        // or at TLS verification: a `required` transfer would ride on a cleartext connection another
        // transfer left behind, a verifying one on an unverified one (the test suite saw the first).
        // So only connections that did STARTTLS with a verified certificate are kept for reuse.
        // smtps:// is safe: libcurl compares the TLS settings of TLS connections.
        // The one exception: a server only ever spoken to in cleartext keeps its cleartext
        // connections (thousands of subscribers' mails, one connection set-up each, were half the
        // cost); the first transfer to it that wants TLS never takes a cached connection, and from
        // then on cleartext ones are not kept either.
        let lower = mail.url.lowercased()
        let implicitTLS = lower.hasPrefix("smtps://")
        if !implicitTLS {
            let server = String(lower.dropFirst("smtp://".count).prefix { $0 != "/" && $0 != "?" })
            if mail.startTLS == .off {
                let cleartextOnly = smtpCleartextOnly[server] ?? true
                smtpCleartextOnly[server] = cleartextOnly
                if !cleartextOnly { set(hc_easy_setopt_long(easy, CURLOPT_FORBID_REUSE, 1)) }
            } else {
                if smtpCleartextOnly[server] != nil {
                    smtpCleartextOnly[server] = false
                    set(hc_easy_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1))
                }
                if !(mail.startTLS == .required && mail.verifyTLS) {
                    set(hc_easy_setopt_long(easy, CURLOPT_FORBID_REUSE, 1))
                }
            }
        }
        if let username = mail.username {
            set(hc_easy_setopt_str(easy, CURLOPT_USERNAME, username))
        }
        if let password = mail.password {
            set(hc_easy_setopt_str(easy, CURLOPT_PASSWORD, password))
        }
        set(hc_easy_setopt_str(easy, CURLOPT_MAIL_FROM, mail.from))
        var list: UnsafeMutablePointer<curl_slist>?
        for recipient in mail.recipients {
            guard let appended = hc_slist_append(list, recipient) else {
                rc = rc == CURLE_OK ? CURLE_OUT_OF_MEMORY : rc
                break
            }
            list = appended
        }
        transfer.headerList = list
        if let list {
            set(hc_easy_setopt_slist(easy, CURLOPT_MAIL_RCPT, list))
        }
        set(hc_easy_setopt_long(easy, CURLOPT_UPLOAD, 1))
        set(hc_easy_setopt_off_t(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(mail.data.count)))
        return rc
    }
}

extension CurlTransport.Transfer {
    var mailMessage: MailMessage? {
        if case .mail(let mail) = payload { return mail }
        return nil
    }

    /// Keeps the last 4xx/5xx reply line, without its line end and control characters. (Lines
    /// after it, such as the `221` answering QUIT when libcurl closes the connection, say nothing.)
    func keepReply(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first, first == UInt8(ascii: "4") || first == UInt8(ascii: "5") else { return }
        var line = bytes.prefix(512).map { $0 < 0x20 || $0 == 0x7F ? UInt8(ascii: " ") : $0 }
        while line.last == UInt8(ascii: " ") { line.removeLast() }
        if !line.isEmpty { lastReply = line }
    }
}

/// HEADERFUNCTION for SMTP: called with each reply line from the server.
let curlMailReplyCallback: hc_data_cb = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let userdata, total > 0 else { return total }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(userdata).takeUnretainedValue()
    transfer.keepReply(UnsafeRawBufferPointer(start: pointer, count: total))
    return total
}
