/// A configured secret (token, password, signing key). Prints as `****` so it cannot end up in a
/// log line or an error by string interpolation.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "****" }
    public var debugDescription: String { "****" }
}

/// Removes every configured secret from a text before it is logged, stored or answered.
public struct Redactor: Sendable {
    private let secrets: [String]

    public init(secrets: [String]) {
        // Longest first, so a secret that contains another is removed whole. Every configured
        // secret is masked whatever its length: a short one mangles some ordinary text, which is
        // the lesser harm (tokens are at least 24 characters; a short password is the operator's choice).
        self.secrets = Array(Set(secrets.filter { !$0.isEmpty })).sorted { $0.count > $1.count }
    }

    public static let none = Redactor(secrets: [])

    public func redact(_ text: String) -> String {
        var out = text
        for secret in secrets where out.contains(secret) {
            out = out.replacingOccurrences(of: secret, with: "****")
        }
        return out
    }
}
