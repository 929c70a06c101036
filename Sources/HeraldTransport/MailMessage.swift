/// One outbound email: the SMTP envelope plus the finished RFC 5322 message. The transport never
/// logs the message, the username or the password, nor puts them into an error.
public struct MailMessage: Sendable {
    /// How to protect an `smtp://` connection (`smtps://` is TLS from the first byte whatever this says).
    public enum StartTLS: String, Sendable, CaseIterable {
        /// STARTTLS or fail: never send credentials or the message in the clear.
        case required
        /// STARTTLS when the server offers it, else in the clear.
        case opportunistic
        /// Never STARTTLS.
        case off
    }

    /// `smtp://host:port` or `smtps://host:port`.
    public var url: String
    /// The envelope sender (`MAIL FROM`), a bare address.
    public var from: String
    /// The envelope recipients (`RCPT TO`), bare addresses.
    public var recipients: [String]
    /// The whole RFC 5322 message (headers, blank line, body) with CRLF line ends. Dot-stuffing is
    /// the transport's job.
    public var data: [UInt8]
    public var username: String?
    public var password: String?
    public var startTLS: StartTLS
    /// Upper bound for the whole exchange (connect, greeting, TLS, auth, data, final reply).
    public var timeout: Duration
    public var connectTimeout: Duration
    /// TLS peer and host verification. On unless a channel explicitly turns it off.
    public var verifyTLS: Bool

    public init(
        url: String, from: String, recipients: [String], data: [UInt8],
        username: String? = nil, password: String? = nil, startTLS: StartTLS = .required,
        timeout: Duration = .seconds(60), connectTimeout: Duration = .seconds(10), verifyTLS: Bool = true
    ) {
        self.url = url
        self.from = from
        self.recipients = recipients
        self.data = data
        self.username = username
        self.password = password
        self.startTLS = startTLS
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.verifyTLS = verifyTLS
    }
}

/// What the SMTP server answered to a message it accepted.
public struct MailResponse: Sendable {
    /// The last SMTP reply code (250 once the message is queued).
    public var code: Int
    public var duration: Duration

    public init(code: Int, duration: Duration = .zero) {
        self.code = code
        self.duration = duration
    }
}

/// Sends email. `CurlTransport` is the real one. A failure is a `TransportError` whose `status`
/// is the SMTP reply code when the server answered one.
public protocol MailTransport: Sendable {
    func send(_ mail: MailMessage) async throws -> MailResponse
}
