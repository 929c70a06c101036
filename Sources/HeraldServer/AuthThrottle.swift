import Foundation
import Synchronization

/// Slows down token guessing: each client address has a budget of failed authentications — a
/// burst of `burst`, refilled at `perSecond` — and once it is spent every authenticated request
/// from that address is answered `429` with `Retry-After` until a failure is allowed again,
/// without looking at the token (an answer that told a right guess from a wrong one would keep
/// the guessing at full speed). Other addresses are not affected. The table is bounded: when it
/// is full, addresses whose budget has refilled completely are forgotten first.
///
/// Behind a reverse proxy every client shares the proxy's address, so one client guessing slows
/// all of them: there, throttle at the proxy too.
final class AuthThrottle: Sendable {
    struct Bucket {
        var tokens: Double
        var at: Date
    }

    let burst: Double
    let perSecond: Double
    let capacity: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    init(burst: Int = 10, perSecond: Double = 1, capacity: Int = 10_000) {
        self.burst = Double(burst)
        self.perSecond = perSecond
        self.capacity = capacity
    }

    /// When the client may try again, if it may not now.
    func blocked(_ client: String, now: Date = Date()) -> Duration? {
        buckets.withLock { table in
            guard var b = table[client] else { return nil }
            refill(&b, now: now)
            table[client] = b
            guard b.tokens < 1 else { return nil }
            return .seconds(clamping: (1 - b.tokens) / perSecond)
        }
    }

    /// A failed authentication from `client`.
    func failed(_ client: String, now: Date = Date()) {
        buckets.withLock { table in
            if table[client] == nil, table.count >= capacity {
                let full = table.filter { var b = $0.value; refill(&b, now: now); return b.tokens >= burst }.map(\.key)
                for key in full { table[key] = nil }
                if table.count >= capacity, let any = table.keys.first { table[any] = nil }
            }
            var b = table[client] ?? Bucket(tokens: burst, at: now)
            refill(&b, now: now)
            b.tokens = max(0, b.tokens - 1)
            table[client] = b
        }
    }

    private func refill(_ b: inout Bucket, now: Date) {
        let elapsed = max(0, now.timeIntervalSince(b.at))
        b.tokens = min(burst, b.tokens + elapsed * perSecond)
        b.at = now
    }
}
