import Crypto
import Foundation

/// SHA-256 as lower-case hex: what the store keeps in place of a secret or a body it compares
/// (an idempotency key's body, a confirmation link's secret).
enum Digest {
    static func hex(_ bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
