import Foundation

extension String {
    /// Every byte but the RFC 3986 unreserved characters (ASCII letters, digits, `-._~`)
    /// percent-encoded with uppercase hex: one URL path segment or query value, and exactly the
    /// encoding OAuth 1.0a signs.
    public var percentEncodedUnreserved: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each kept at its first appearance.
    public func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
