import Foundation

/// A signed-in operator of the console. The browser holds a random secret in a cookie; the store
/// holds only its SHA-256 (`idHash`), so a copy of the database signs nobody in. `csrf` is the
/// session's form token: every state-changing form must carry it.
public struct ConsoleSession: Sendable, Equatable {
    /// How long a session lasts from sign-in (a working day and a night on call).
    public static let lifetime: TimeInterval = 12 * 3600

    public var idHash: String
    /// The name of the admin token it signed in with: the session ends when that token no longer
    /// has the admin scope.
    public var principal: String
    public var csrf: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(idHash: String, principal: String, csrf: String, createdAt: Date, expiresAt: Date) {
        self.idHash = idHash
        self.principal = principal
        self.csrf = csrf
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
