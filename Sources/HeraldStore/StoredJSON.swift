import Foundation

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
