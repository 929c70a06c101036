import Foundation
import HeraldStore
import PostgresNIO

extension PostgresStore {
    /// The token bucket every node shares: one row per channel, refilled and taken from in a single
    /// upsert, which locks the row (concurrent takers queue on it) and works on the latest tokens.
    /// Grants `min(want, floor(tokens))`; when it grants none, answers when the next whole token
    /// arrives. A node whose clock is behind refills nothing (elapsed time is never negative).
    /// Nil (use the local limiter) for a rate or burst that is not positive.
    public func takeRateTokens(channel: String, want: Int, rate: Double, burst: Double, now: Date) async throws -> (granted: Int, nextAt: Date?)? {
        guard rate > 0, burst > 0, rate.isFinite, burst.isFinite else { return nil }
        let want = max(0, want)
        var binds = PostgresBindings()
        binds.append(channel)                    // $1
        binds.append(rate)                       // $2
        binds.append(burst)                      // $3
        binds.append(now.timeIntervalSince1970)  // $4
        binds.append(Double(want))               // $5
        let refilled = "LEAST($3::float8, b.tokens + GREATEST(0, $4::float8 - b.updated_at) * $2::float8)"
        // Epoch seconds as doubles resolve about 0.24 µs: a refill one microsecond short of a whole
        // token is that token (else rounding leaves 0.99999… and a wait too short to express).
        let grantedSQL = "LEAST($5::float8, floor(\(refilled) + $2::float8 * 1e-6))"
        let query = PostgresQuery(unsafeSQL: """
            INSERT INTO rate_buckets AS b (channel, tokens, updated_at, last_granted)
            VALUES ($1, GREATEST(0, $3::float8 - LEAST($5::float8, floor($3::float8 + $2::float8 * 1e-6))), $4::float8,
                    LEAST($5::float8, floor($3::float8 + $2::float8 * 1e-6)))
            ON CONFLICT (channel) DO UPDATE SET
                tokens = GREATEST(0, \(refilled) - \(grantedSQL)),
                last_granted = \(grantedSQL),
                updated_at = GREATEST(b.updated_at, $4::float8)
            RETURNING b.tokens, b.last_granted, b.updated_at
            """, binds: binds)
        let logger = self.logger
        let rows = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query(query, logger: logger).collect()
        }
        guard let row = rows.first else { throw StoreError.underlying("rate bucket \(channel) was not written") }
        let (tokens, granted, updated) = try row.decode((Double, Int, Double).self)
        if granted > 0 || want == 0 { return (granted, nil) }
        // From the bucket's own clock, which another node may have moved past ours.
        let from = max(now.timeIntervalSince1970, updated)
        return (0, Date(timeIntervalSince1970: from + max(0, 1 - tokens) / rate))
    }
}
