import Foundation
import Synchronization
import Testing
@testable import HeraldSQLite

/// The SQLite writer's order: urgent work (ingest, outcomes, an all-clear's claim) before busy
/// lanes' claims before background work; nothing starved; writes made outside the scheduler get
/// their turn between two of its jobs.
@Suite struct WriteSchedulerTests {
    final class Log: Sendable {
        private let names = Mutex<[String]>([])
        func add(_ name: String) { names.withLock { $0.append(name) } }
        var all: [String] { names.withLock { $0 } }
    }
    final class Flag: Sendable {
        private let value = Atomic(false)
        func set() { value.store(true, ordering: .relaxed) }
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    func store() throws -> SQLiteStore {
        try SQLiteStore(path: FileManager.default.temporaryDirectory
            .appendingPathComponent("herald-sched-\(UUID().uuidString).sqlite").path)
    }

    /// The order in which the writer ran: a job holding it ("blocker"), then the jobs queued
    /// meanwhile, one at a time in the order given (each is in the queue before the next is made:
    /// waited for, not slept on, so a loaded machine cannot reorder them), and, with `outside`, a
    /// write made directly on GRDB's pool after them.
    func order(queueing jobs: [(String, WriteScheduler.Priority)], outside: Bool = false) async throws -> [String] {
        let s = try store()
        let order = Log()
        let release = Flag(), started = Flag()
        let blocker = Task {
            try await s.writer.write(.urgent) { _ in
                started.set()
                while !release.isSet { usleep(1000) }
                order.add("blocker")
            }
        }
        while !started.isSet { try await Task.sleep(for: .milliseconds(1)) }
        var tasks: [Task<Void, any Error>] = []
        for (n, (name, priority)) in jobs.enumerated() {
            tasks.append(Task { try await s.writer.write(priority) { _ in order.add(name) } })
            var waits = 0
            while s.writer.waiting < n + 1 && waits < 10_000 {
                try await Task.sleep(for: .milliseconds(1))
                waits += 1
            }
            try #require(s.writer.waiting == n + 1, "\(name) never reached the writer's queue")
        }
        if outside {
            tasks.append(Task { try await s.pool.write { _ in order.add("outside") } })
            try await Task.sleep(for: .milliseconds(20))
        }
        release.set()
        try await blocker.value
        for t in tasks { try await t.value }
        return order.all
    }

    @Test func urgentWorkGoesFirstThenClaimsThenBackgroundWork() async throws {
        let seen = try await order(queueing: [("bulk", .bulk), ("normal", .normal), ("urgent", .urgent)])
        #expect(seen == ["blocker", "urgent", "normal", "bulk"])
    }

    @Test func backgroundWorkPassedOverEnoughTimesGoesNext() async throws {
        let seen = try await order(queueing: [("bulk", .bulk)] + (1...4).map { ("u\($0)", .urgent) })
        let first = (1...WriteScheduler.maxPasses).map { "u\($0)" }
        let rest = ((WriteScheduler.maxPasses + 1)...4).map { "u\($0)" }
        #expect(seen == ["blocker"] + first + ["bulk"] + rest)
    }

    @Test func aWriteOutsideTheSchedulerIsNotHeldBehindItsQueue() async throws {
        let seen = try await order(queueing: (1...3).map { ("u\($0)", .urgent) }, outside: true)
        #expect(seen.count == 5 && seen.firstIndex(of: "outside")! < seen.firstIndex(of: "u3")!, "\(seen)")
    }
}
