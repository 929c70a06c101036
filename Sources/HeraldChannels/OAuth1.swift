import Crypto
import Foundation
import HeraldCore

/// OAuth 1.0a request signing (HMAC-SHA1), as X's API v2 user-context endpoints require:
/// https://developer.x.com/en/docs/authentication/oauth-1-0a/creating-a-signature
struct OAuth1: Sendable {
    var consumerKey: String
    var consumerSecret: String
    var token: String
    var tokenSecret: String

    /// RFC 3986 unreserved characters stay; everything else is %XX (uppercase).
    static func percent(_ s: String) -> String { s.percentEncodedUnreserved }

    /// The signature over method, URL (without query) and every parameter: the OAuth ones plus
    /// `parameters` (query and form fields; a JSON body is not signed).
    func signature(method: String, url: String, oauth: [String: String], parameters: [String: String]) -> String {
        let all = oauth.merging(parameters) { a, _ in a }
        let encoded: [(key: String, value: String)] = all.map { (key: Self.percent($0.key), value: Self.percent($0.value)) }
        let sorted = encoded.sorted { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        let normalized: String = sorted.map { pair in pair.key + "=" + pair.value }.joined(separator: "&")
        let base = "\(method.uppercased())&\(Self.percent(url))&\(Self.percent(normalized))"
        let key = SymmetricKey(data: Data("\(Self.percent(consumerSecret))&\(Self.percent(tokenSecret))".utf8))
        return Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data(base.utf8), using: key)).base64EncodedString()
    }

    /// The `Authorization: OAuth …` header value.
    func header(method: String, url: String, parameters: [String: String] = [:],
                nonce: String = UUID().uuidString.replacingOccurrences(of: "-", with: ""),
                timestamp: String = String(Int(Date().timeIntervalSince1970))) -> String {
        var oauth = [
            "oauth_consumer_key": consumerKey,
            "oauth_nonce": nonce,
            "oauth_signature_method": "HMAC-SHA1",
            "oauth_timestamp": timestamp,
            "oauth_token": token,
            "oauth_version": "1.0",
        ]
        oauth["oauth_signature"] = signature(method: method, url: url, oauth: oauth, parameters: parameters)
        return "OAuth " + oauth.sorted { $0.key < $1.key }
            .map { "\(Self.percent($0.key))=\"\(Self.percent($0.value))\"" }.joined(separator: ", ")
    }
}
