import Foundation
import Testing
@testable import HeraldCore

/// The memo of decoded events and rendered words holds at most so many entries and so many bytes:
/// events at the size limits cannot fill memory.
@Suite struct BoundedCacheTests {
    @Test func boundedInBytesAsWellAsEntries() {
        let cache = BoundedCache<Int, String>(capacity: 100, maxBytes: 10_000, cost: { $0.utf8.count })
        for i in 0..<50 { _ = cache.value(for: i) { String(repeating: "x", count: 1_000) } }
        #expect(cache.usage.bytes <= 10_000 && cache.usage.count <= 10)
        // A hit is served without making it again.
        _ = cache.value(for: 49) { "made" }
        #expect(cache.value(for: 49) { "made again" } == String(repeating: "x", count: 1_000))
        // A value larger than the whole bound is returned but not kept.
        let huge = String(repeating: "y", count: 20_000)
        #expect(cache.value(for: 1_000) { huge } == huge)
        #expect(cache.value(for: 1_000) { "small" } == "small")
        // Small values are bounded by count.
        for i in 0..<1_000 { _ = cache.value(for: 2_000 + i) { "s" } }
        #expect(cache.usage.count <= 100)
    }

    @Test func anEventsSizeCountsItsText() {
        let now = Date()
        let small = Event(id: "evt_1", incident: "db", status: .triggered, severity: .major, title: "Down",
                          occurredAt: now, receivedAt: now)
        let large = Event(id: "evt_2", incident: "db", status: .triggered, severity: .major, title: "Down",
                          message: String(repeating: "m", count: 65_000),
                          labels: Dictionary(uniqueKeysWithValues: (0..<100).map { ("label_\($0)", String(repeating: "v", count: 100)) }),
                          occurredAt: now, receivedAt: now)
        #expect(small.approximateBytes < 1_000)
        #expect(large.approximateBytes > 75_000)
    }
}
