import Crypto
import Foundation
import HTTPTypes

/// Headers for what anyone may read (the status page, its feed and JSON): nothing on them can run
/// script or be framed, what they are is what they say they are, and no link from them tells the
/// next site where the reader came from. Event text reaches these pages, so this is the second
/// lock after escaping.
enum PublicHeaders {
    /// The status page's one inline stylesheet, allowed by its hash; nothing else loads.
    static let pagePolicy = "default-src 'none'; style-src '\(hash(StatusPage.stylesheet))'; img-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    /// The feed and the JSON are data: nothing in them may load or run even if a browser renders them.
    static let dataPolicy = "default-src 'none'; frame-ancestors 'none'; sandbox"

    static func hash(_ text: String) -> String {
        "sha256-" + Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString()
    }

    static func fields(contentType: String, policy: String) -> HTTPFields {
        [
            .contentType: contentType,
            .cacheControl: "public, max-age=15",
            .contentSecurityPolicy: policy,
            .xContentTypeOptions: "nosniff",
            .referrerPolicy: "no-referrer",
            .xFrameOptions: "DENY",
        ]
    }
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
}
