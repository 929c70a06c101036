import Crypto
import Foundation
import HeraldCore
import Hummingbird

/// Bearer tokens with scopes. Tokens are compared by SHA-256 digest, so the comparison time does
/// not depend on how much of a guess was right, and the tokens themselves are not kept in a map.
struct Authenticator: Sendable {
    struct Principal: Sendable {
        var name: String
        var scopes: Set<TokenScope>
    }
    private let byDigest: [Data: Principal]

    init(tokens: [TokenConfig]) {
        var map: [Data: Principal] = [:]
        for t in tokens {
            map[Data(SHA256.hash(data: Data(t.token.value.utf8)))] = Principal(name: t.name, scopes: t.scopes)
        }
        byDigest = map
    }

    /// Who a raw token value belongs to (for protocols that carry the token in the body).
    func principal(forToken token: String) -> Principal? {
        byDigest[Data(SHA256.hash(data: Data(token.utf8)))]
    }

    /// The caller, if it presented a token with `scope`. 401 without a valid token, 403 with a
    /// valid token of another scope.
    func require(_ scope: TokenScope, _ request: Request) throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "missing bearer token", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError(.unauthorized, "expected Authorization: Bearer TOKEN", headers: [.wwwAuthenticate: "Bearer"])
        }
        let digest = Data(SHA256.hash(data: Data(parts[1].trimmingWhitespace().utf8)))
        guard let principal = byDigest[digest] else {
            throw APIError(.unauthorized, "invalid token", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
        guard principal.scopes.contains(scope) else {
            throw APIError(.forbidden, "token \"\(principal.name)\" lacks the \(scope.rawValue) scope")
        }
        return principal
    }
}
