import Foundation

/// Time-ordered, collision-resistant identifiers (ULID layout: 48-bit milliseconds + 80 random
/// bits, Crockford base32), with a short type prefix: `evt_01J…`, `dlv_01J…`.
/// Sorting ids sorts by creation time, which keeps listings and indexes cheap.
public enum Identifier {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(prefix: String, at date: Date = Date()) -> String {
        var rng = SystemRandomNumberGenerator()
        return make(prefix: prefix, at: date, using: &rng)
    }

    public static func make(prefix: String, at date: Date, using rng: inout some RandomNumberGenerator) -> String {
        let ms = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var out = [UInt8]()
        out.reserveCapacity(prefix.utf8.count + 27)
        out.append(contentsOf: prefix.utf8)
        out.append(UInt8(ascii: "_"))
        // 10 characters of time (50 bits, the top 2 always zero for 48-bit time).
        for i in stride(from: 9, through: 0, by: -1) {
            out.append(alphabet[Int((ms >> UInt64(i * 5)) & 31)])
        }
        // 16 characters of randomness (80 bits).
        let hi = rng.next() as UInt64
        let lo = rng.next() as UInt64
        for i in 0..<16 {
            let bits = i < 12 ? (hi >> UInt64(i * 5)) : (lo >> UInt64((i - 12) * 5))
            out.append(alphabet[Int(bits & 31)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
