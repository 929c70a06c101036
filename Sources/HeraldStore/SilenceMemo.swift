import Foundation
import HeraldCore

/// Silences as stored, decoded once: every enqueue reads the silences in force, and decoding one
/// compiles its regex matchers (~30 µs each) — with 50 silences in force that was a quarter of the
/// ingest rate. Keyed by the stored body, which changes whenever the silence does (an expiry
/// rewrites it), so a hit is always the silence as stored.
public enum SilenceMemo {
    static let decoded = BoundedCache<Data, Silence>(capacity: 2048, maxBytes: 8 << 20) { $0.approximateBytes }

    public static func decode(_ body: Data, with decoder: JSONDecoder) throws -> Silence {
        try decoded.value(for: body) { try decoder.decode(Silence.self, from: body) }!
    }
}

extension Silence {
    /// A bound on its memory, for caches.
    var approximateBytes: Int {
        256 + comment.utf8.count + createdBy.utf8.count + channels.reduce(0) { $0 + 32 + $1.utf8.count }
            + matchers.reduce(0) { $0 + 512 + $1.name.utf8.count + $1.value.utf8.count }
    }
}
