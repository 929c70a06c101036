import Crypto
import Foundation
import HeraldCore
import Hummingbird
import Metrics

/// Bearer tokens with scopes. Tokens are compared by SHA-256 digest, so the comparison time does
/// not depend on how much of a guess was right, and the tokens themselves are not kept in a map.
struct Authenticator: Sendable {
    struct Principal: Sendable {
        var name: String
        var scopes: Set<TokenScope>
    }
    private let byDigest: [Data: Principal]
    let throttle: AuthThrottle
    private let denied = Counter(label: "herald_auth_failures_total", dimensions: [("outcome", "denied")])
    private let throttled = Counter(label: "herald_auth_failures_total", dimensions: [("outcome", "throttled")])

    init(tokens: [TokenConfig], throttle: AuthThrottle = AuthThrottle()) {
        var map: [Data: Principal] = [:]
        for t in tokens {
            map[Data(SHA256.hash(data: Data(t.token.value.utf8)))] = Principal(name: t.name, scopes: t.scopes)
        }
        byDigest = map
        self.throttle = throttle
    }

    /// Who a raw token value belongs to (for protocols that carry the token in the body), with the
    /// same throttling of failures per client address as `require`.
    func principal(forToken token: String, from client: String) throws -> Principal? {
        try checkThrottle(client)
        guard let principal = byDigest[Data(SHA256.hash(data: Data(token.utf8)))] else {
            fail(client)
            return nil
        }
        return principal
    }

    /// Whether a configured token of this name has `scope` (a console session lives only as long
    /// as its token keeps the admin scope: removing the token from the configuration ends it).
    func grants(_ scope: TokenScope, toTokenNamed name: String) -> Bool {
        byDigest.values.contains { $0.name == name && $0.scopes.contains(scope) }
    }

    /// The caller, if it presented a token with `scope`. 401 without a valid token, 403 with a
    /// valid token of another scope, 429 while the client's address has spent its budget of
    /// failed attempts (see `AuthThrottle`).
    func require(_ scope: TokenScope, _ request: Request, _ context: HeraldRequestContext) throws -> Principal {
        try checkThrottle(context.client)
        guard let header = request.headers[.authorization] else {
            // No credentials at all is a client that forgot them, not a guess: not counted.
            throw APIError(.unauthorized, "missing bearer token", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            fail(context.client)
            throw APIError(.unauthorized, "expected Authorization: Bearer TOKEN", headers: [.wwwAuthenticate: "Bearer"])
        }
        let digest = Data(SHA256.hash(data: Data(parts[1].trimmingWhitespace().utf8)))
        guard let principal = byDigest[digest] else {
            fail(context.client)
            throw APIError(.unauthorized, "invalid token", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
        guard principal.scopes.contains(scope) else {
            throw APIError(.forbidden, "token \"\(principal.name)\" lacks the \(scope.rawValue) scope")
        }
        return principal
    }

    private func checkThrottle(_ client: String) throws {
        guard let wait = throttle.blocked(client) else { return }
        throttled.increment()
        let seconds = max(1, Int(wait.seconds.rounded(.up)))
        throw APIError(.tooManyRequests, "too many failed authentications from this address; retry in \(seconds) s",
                       headers: [.retryAfter: "\(seconds)"])
    }

    private func fail(_ client: String) {
        denied.increment()
        throttle.failed(client)
    }
}
