// The embedded store's share of a delivery, without the network, the HTTP server or the
// dispatcher's tasks: EVENTS events fanned out to FANOUT channels are enqueued in batches (as the
// ingest group commit makes them under load), then every channel drains at once, claiming BATCH
// at a time and recording each claim's outcomes as delivered (as a busy lane does). CPU time is
// this process's (user + system, getrusage), so the figures move only with the store's own work;
// the network benchmarks spread ±15 % on this machine, this one a few per cent.
//
//     swift run -c release herald-store-bench [--events 20000] [--fanout 10] [--batch 16] [--ingest-batch 16]
import Foundation
import HeraldCore
import HeraldSQLite
import HeraldStore

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func option(_ name: String, _ fallback: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let value = Int(args[i + 1]), value > 0 else { return fallback }
    return value
}

let events = option("--events", 20_000)
let fanout = option("--fanout", 10)
let batch = option("--batch", 16)
let ingestBatch = option("--ingest-batch", 16)
let channels = (0..<fanout).map { "hook\($0)" }
let message = String(repeating: "x", count: 200)

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-store-bench-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let store = try SQLiteStore(path: directory.appendingPathComponent("herald.sqlite").path)

// Ingest: one transaction per INGEST_BATCH events, each planning FANOUT notices.
var cpu = cpuSeconds()
var clock = ContinuousClock.now
for start in stride(from: 0, to: events, by: ingestBatch) {
    let now = Date()
    let requests = (start..<min(events, start + ingestBatch)).map { i in
        EnqueueRequest(event: Event(id: Identifier.make(prefix: "evt", at: now), incident: "bench-\(i)", status: .triggered,
                                    severity: .major, title: "Benchmark incident", message: message,
                                    occurredAt: now, receivedAt: now),
                       channels: channels)
    }
    _ = try await store.enqueue(requests, now: now)
}
let ingestCPU = cpuSeconds() - cpu
let ingestWall = ContinuousClock.now - clock

// Drain: every channel at once, a claim of BATCH then one outcome transaction for it.
cpu = cpuSeconds()
clock = ContinuousClock.now
let delivered = try await withThrowingTaskGroup(of: Int.self) { group in
    for channel in channels {
        group.addTask {
            var done = 0
            while true {
                let now = Date()
                let claimed = try await store.claim(channel: channel, limit: batch, now: now, owner: "bench",
                                                    leaseUntil: now.addingTimeInterval(60))
                if claimed.isEmpty { return done }
                let records = claimed.map {
                    AttemptRecord(deliveryId: $0.delivery.id, lease: $0.lease, startedAt: now, duration: .milliseconds(1),
                                  outcome: .delivered(reference: nil), status: 200)
                }
                try await store.record(records, now: Date())
                done += records.count
            }
        }
    }
    var total = 0
    for try await done in group { total += done }
    return total
}
let drainCPU = cpuSeconds() - cpu
let drainWall = ContinuousClock.now - clock

let deliveries = Double(events * fanout)
func us(_ seconds: Double, _ n: Double) -> String { String(format: "%.1f", seconds / n * 1e6) }
func wallSeconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
print("store: \(events) events x \(fanout) channels, ingest batches of \(ingestBatch), claims of \(batch)")
print("ingest: \(us(ingestCPU, deliveries)) µs CPU per delivery planned (\(us(ingestCPU, Double(events))) per event), "
      + String(format: "%.0f", Double(events) / wallSeconds(ingestWall)) + " events/s")
print("drain: \(us(drainCPU, Double(delivered))) µs CPU per delivery (claim + outcome), "
      + String(format: "%.0f", Double(delivered) / wallSeconds(drainWall)) + " deliveries/s; \(delivered) delivered")
print("total: \(us(ingestCPU + drainCPU, deliveries)) µs CPU per delivery")
print("RESULT {\"ingest_us_per_delivery\": \(us(ingestCPU, deliveries)), \"drain_us_per_delivery\": \(us(drainCPU, Double(delivered))), "
      + "\"total_us_per_delivery\": \(us(ingestCPU + drainCPU, deliveries)), \"delivered\": \(delivered)}")
if delivered != events * fanout {
    print("error: \(delivered) delivered, expected \(events * fanout)")
    exit(1)
}
