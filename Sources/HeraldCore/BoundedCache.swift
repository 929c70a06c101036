import Synchronization

/// A small shared memo for values that never change once made (a decoded event, an event's
/// rendered words): looked up by many tasks, filled on a miss, emptied whole when full — cheaper
/// than tracking recency, and a refill costs one recomputation per entry.
public final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: Value]>([:])
    private let capacity: Int

    public init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// The cached value, or `make()`'s, remembered unless it is nil.
    public func value(for key: Key, orMake make: () throws -> Value?) rethrows -> Value? {
        if let hit = entries.withLock({ $0[key] }) { return hit }
        guard let value = try make() else { return nil }
        entries.withLock {
            if $0.count >= capacity { $0.removeAll(keepingCapacity: true) }
            $0[key] = value
        }
        return value
    }
}
