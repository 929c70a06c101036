import Synchronization

/// A small shared memo for values that never change once made (a decoded event, an event's
/// rendered words): looked up by many tasks, filled on a miss, emptied whole when full — cheaper
/// than tracking recency, and a refill costs one recomputation per entry. Full means `capacity`
/// entries or `maxBytes` of values (as `cost` counts them): an event may be ~80 KB, and anyone
/// with an ingest token can send thousands, so a bound in entries alone would be gigabytes.
public final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entries {
        var values: [Key: Value] = [:]
        var bytes = 0
    }
    private let entries = Mutex(Entries())
    private let capacity: Int
    private let maxBytes: Int
    private let cost: @Sendable (Value) -> Int

    public init(capacity: Int = 4096, maxBytes: Int = 8 << 20, cost: @escaping @Sendable (Value) -> Int) {
        self.capacity = capacity
        self.maxBytes = maxBytes
        self.cost = cost
    }

    /// The cached value, or `make()`'s, remembered unless it is nil (or alone larger than the bound).
    public func value(for key: Key, orMake make: () throws -> Value?) rethrows -> Value? {
        if let hit = entries.withLock({ $0.values[key] }) { return hit }
        guard let value = try make() else { return nil }
        let bytes = cost(value)
        guard bytes <= maxBytes else { return value }
        entries.withLock {
            if $0.values.count >= capacity || $0.bytes + bytes > maxBytes {
                $0.values.removeAll(keepingCapacity: $0.values.count >= capacity)
                $0.bytes = 0
            }
            if $0.values.updateValue(value, forKey: key) == nil { $0.bytes += bytes }
        }
        return value
    }

    /// Entries and their counted bytes (for tests).
    public var usage: (count: Int, bytes: Int) {
        entries.withLock { ($0.values.count, $0.bytes) }
    }
}
