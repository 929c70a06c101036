import Foundation
import HeraldCore

/// How every store writes and reads its JSON columns (status posts, idempotent answers, events):
/// times as seconds since 1970, the same in SQLite and PostgreSQL.
public enum StoredJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, enc in
            var c = enc.singleValueContainer()
            try c.encode(date.timeIntervalSince1970)
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { dec in
            Date(timeIntervalSince1970: try dec.singleValueContainer().decode(Double.self))
        }
        return decoder
    }
}

extension StoredJSON {
    /// A list of strings as a JSON array (an incident's components).
    public static func list(_ values: [String]) -> String {
        var w = JSONWriter(capacity: 16 + values.reduce(0) { $0 + $1.utf8.count + 3 })
        w.beginArray()
        for v in values { w.string(v) }
        w.endArray()
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// A map of strings as a JSON object, keys sorted (an incident's labels).
    public static func map(_ values: [String: String]) -> String {
        var w = JSONWriter(capacity: 16 + values.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        w.beginObject()
        for k in values.keys.sorted() { w.field(k, values[k]) }
        w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// Reads back `list(_:)`; anything else is an empty list.
    public static func readList(_ text: String?) -> [String] {
        guard let text, text != "[]", let data = text.data(using: .utf8),
              let any = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return any
    }

    /// Reads back `map(_:)`; anything else is an empty map.
    public static func readMap(_ text: String?) -> [String: String] {
        guard let text, text != "{}", let data = text.data(using: .utf8),
              let any = try? JSONSerialization.jsonObject(with: data) as? [String: String] else { return [:] }
        return any
    }
}
