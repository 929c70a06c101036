import HeraldCore
import Synchronization

/// Decoded events by id, bounded. Events never change once committed, and a fan-out claims the
/// same event once per channel: decoding its JSON each time was a visible share of a claim.
final class EventCache: Sendable {
    private let entries = Mutex<[String: Event]>([:])
    private let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    func event(id: String, decode: () throws -> Event?) rethrows -> Event? {
        if let hit = entries.withLock({ $0[id] }) { return hit }
        guard let event = try decode() else { return nil }
        entries.withLock {
            if $0.count >= capacity { $0.removeAll(keepingCapacity: true) }
            $0[id] = event
        }
        return event
    }
}
