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

    /// Starts a job that holds the writer until `release`, and waits until it holds it.
    func holdWriter(_ s: SQLiteStore, order: Log, release: Flag) async throws -> Task<Void, any Error> {
        let started = Flag()
        let task = Task {
            try await s.writer.write(.urgent) { _ in
                started.set()
                while !release.isSet { usleep(1000) }
                order.add("blocker")
            }
        }
        while !started.isSet { try await Task.sleep(for: .milliseconds(1)) }
        return task
    }

    /// Queues a job and returns once it is queued (it runs after the blocker).
    func queue(_ s: SQLiteStore, _ name: String, _ priority: WriteScheduler.Priority, order: Log,
               into tasks: inout [Task<Void, any Error>]) async throws {
        tasks.append(Task { try await s.writer.write(priority) { _ in order.add(name) } })
        // The task has to reach the scheduler's queue before the next one is made.
        try await Task.sleep(for: .milliseconds(20))
    }

    @Test func urgentWorkGoesFirstThenClaimsThenBackgroundWork() async throws {
        let s = try store()
        let order = Log()
        let release = Flag()
        let blocker = try await holdWriter(s, order: order, release: release)
        var tasks: [Task<Void, any Error>] = []
        try await queue(s, "bulk", .bulk, order: order, into: &tasks)
        try await queue(s, "normal", .normal, order: order, into: &tasks)
        try await queue(s, "urgent", .urgent, order: order, into: &tasks)
        release.set()
        try await blocker.value
        for t in tasks { try await t.value }
        #expect(order.all == ["blocker", "urgent", "normal", "bulk"])
    }

    @Test func backgroundWorkPassedOverEnoughTimesGoesNext() async throws {
        let s = try store()
        let order = Log()
        let release = Flag()
        let blocker = try await holdWriter(s, order: order, release: release)
        var tasks: [Task<Void, any Error>] = []
        try await queue(s, "bulk", .bulk, order: order, into: &tasks)
        for i in 1...4 { try await queue(s, "u\(i)", .urgent, order: order, into: &tasks) }
        release.set()
        try await blocker.value
        for t in tasks { try await t.value }
        let first = (1...WriteScheduler.maxPasses).map { "u\($0)" }
        let rest = ((WriteScheduler.maxPasses + 1)...4).map { "u\($0)" }
        #expect(order.all == ["blocker"] + first + ["bulk"] + rest)
    }

    @Test func aWriteOutsideTheSchedulerIsNotHeldBehindItsQueue() async throws {
        let s = try store()
        let order = Log()
        let release = Flag()
        let blocker = try await holdWriter(s, order: order, release: release)
        var tasks: [Task<Void, any Error>] = []
        for i in 1...3 { try await queue(s, "u\(i)", .urgent, order: order, into: &tasks) }
        tasks.append(Task { try await s.pool.write { _ in order.add("outside") } })
        try await Task.sleep(for: .milliseconds(20))
        release.set()
        try await blocker.value
        for t in tasks { try await t.value }
        let seen = order.all
        #expect(seen.count == 5 && seen.firstIndex(of: "outside")! < seen.firstIndex(of: "u3")!, "\(seen)")
    }
}
