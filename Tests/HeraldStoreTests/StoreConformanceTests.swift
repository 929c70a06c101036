import Foundation
import Testing
@testable import HeraldCore
@testable import HeraldStore
@testable import HeraldPostgres

/// The behaviour every `Store` must have, run against each store: `SQLiteStore` always,
/// `PostgresStore` when `HERALD_TEST_POSTGRES_URL` names a server (each check in a fresh database;
/// `scripts/pg-start DIR` starts a throwaway one and prints its URL).
@Suite struct StoreConformanceTests {
    static func sqlite() throws -> (any Store, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("herald.sqlite").path
        return (try SQLiteStore(path: path), path)
    }

    @Test(arguments: ConformanceCheck.allCases)
    func sqlite(_ check: ConformanceCheck) async throws {
        let (store, _) = try Self.sqlite()
        try await check.run(Conformance(store: store))
    }

    @Test(.enabled(if: TestPostgres.isConfigured, "set HERALD_TEST_POSTGRES_URL (scripts/pg-start) to run against PostgreSQL"),
          arguments: ConformanceCheck.allCases)
    func postgres(_ check: ConformanceCheck) async throws {
        let store = try await TestPostgres.freshStore()
        do {
            try await check.run(Conformance(store: store))
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    // SQLite only: the file and its lock.
    @Test func committedEventsSurviveReopeningAndTheFileIsExclusive() async throws {
        let (store, path) = try Self.sqlite()
        let c = Conformance(store: store)
        _ = try await store.enqueue([EnqueueRequest(event: c.event("dns", .triggered, at: c.t0), channels: ["a"])], now: c.t0)
        #expect(throws: StoreError.self) { try SQLiteStore(path: path) }
        let reopened = try SQLiteStore(path: path, exclusive: false)
        #expect(try await reopened.deliveries(DeliveryFilter()).count == 1)
        #expect(throws: StoreError.self) { try SQLiteStore(path: "/nonexistent-dir/x/herald.sqlite") }
    }

    /// The embedded store shares nothing: no work signals (the stream waits, and ends when its
    /// consumer is cancelled), no shared rate limiter, every in-flight lease is its own.
    @Test func sqliteSharesNothing() async throws {
        let (store, _) = try Self.sqlite()
        #expect(!store.isShared)
        #expect(try await store.takeRateTokens(channel: "a", want: 1, rate: 1, burst: 1, now: Date()) == nil)
        let signals = store.workSignals()
        let consumer = Task { () -> Int in
            var n = 0
            for await _ in signals { n += 1 }
            return n
        }
        try await Task.sleep(for: .milliseconds(50))
        consumer.cancel()
        #expect(await consumer.value == 0)
        await store.close()
    }

    @Test func groupCommitterBatchesConcurrentSubmissions() async throws {
        let batches = BatchLog()
        let committer = GroupCommitter<Int, Int>(maxBatch: 100) { items in
            await batches.add(items.count)
            try await Task.sleep(for: .milliseconds(20))
            return items.map { $0 * 2 }
        }
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<200 { group.addTask { try await committer.submit(i) } }
            var out: [Int] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(results.sorted() == (0..<200).map { $0 * 2 })
        let sizes = await batches.sizes
        #expect(sizes.reduce(0, +) == 200)
        #expect(sizes.count < 200, "concurrent submissions share commits: \(sizes)")
        #expect(sizes.allSatisfy { $0 <= 100 })
    }
}

/// Each conformance check, by name, so both stores run the same list.
enum ConformanceCheck: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case enqueueCommitsEventIncidentAndOneDeliveryPerChannel
    case perRecipientDeliveriesThreadOntoTheirOwnNotice
    case allClearFollowsTheReceipts
    case anAllClearWaitsWhileItsNoticeIsInFlight
    case idempotencyKeyRepeatsTheFirstAnswerAndConflictsOnAnotherBody
    case claimTakesAllClearsFirstThenOldestAndLeasesThem
    case recordKeepsEveryAttemptAndTheReceipt
    case replayRequeuesFailedWithFreshBudgetAndKeepsHistory
    case leasesOfADeadClaimerComeBack
    case incidentCyclesAndRepeatedResolves
    case triggerAndResolveInOneBatch
    case fallbackTakesTheAllClearAlong
    case statusPostsAreIdempotentAndNewestFirst
    case filtersAndCounts

    var testDescription: String { rawValue }

    func run(_ c: Conformance) async throws {
        switch self {
        case .enqueueCommitsEventIncidentAndOneDeliveryPerChannel: try await c.enqueueCommitsEventIncidentAndOneDeliveryPerChannel()
        case .perRecipientDeliveriesThreadOntoTheirOwnNotice: try await c.perRecipientDeliveriesThreadOntoTheirOwnNotice()
        case .allClearFollowsTheReceipts: try await c.allClearFollowsTheReceipts()
        case .anAllClearWaitsWhileItsNoticeIsInFlight: try await c.anAllClearWaitsWhileItsNoticeIsInFlight()
        case .idempotencyKeyRepeatsTheFirstAnswerAndConflictsOnAnotherBody: try await c.idempotencyKeyRepeatsTheFirstAnswerAndConflictsOnAnotherBody()
        case .claimTakesAllClearsFirstThenOldestAndLeasesThem: try await c.claimTakesAllClearsFirstThenOldestAndLeasesThem()
        case .recordKeepsEveryAttemptAndTheReceipt: try await c.recordKeepsEveryAttemptAndTheReceipt()
        case .replayRequeuesFailedWithFreshBudgetAndKeepsHistory: try await c.replayRequeuesFailedWithFreshBudgetAndKeepsHistory()
        case .leasesOfADeadClaimerComeBack: try await c.leasesOfADeadClaimerComeBack()
        case .incidentCyclesAndRepeatedResolves: try await c.incidentCyclesAndRepeatedResolves()
        case .triggerAndResolveInOneBatch: try await c.triggerAndResolveInOneBatch()
        case .fallbackTakesTheAllClearAlong: try await c.fallbackTakesTheAllClearAlong()
        case .statusPostsAreIdempotentAndNewestFirst: try await c.statusPostsAreIdempotentAndNewestFirst()
        case .filtersAndCounts: try await c.filtersAndCounts()
        }
    }
}

/// The checks themselves, against one store.
struct Conformance {
    let store: any Store

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ incident: String, _ status: EventStatus, at: Date, title: String = "DNS down") -> Event {
        Event(id: Identifier.make(prefix: "evt", at: at), incident: incident, status: status, severity: .critical,
              title: title, occurredAt: at, receivedAt: at)
    }

    func enqueueCommitsEventIncidentAndOneDeliveryPerChannel() async throws {
        let e = event("dns", .triggered, at: t0)
        let results = try await store.enqueue([EnqueueRequest(event: e, channels: ["a", "b", "c"])], now: t0)
        #expect(results == [.accepted(.init(eventId: e.id, incident: "dns", deliveries: 3, channels: ["a", "b", "c"]))])
        let all = try await store.deliveries(DeliveryFilter(incident: "dns"))
        #expect(Set(all.map(\.channel)) == ["a", "b", "c"])
        #expect(all.allSatisfy { $0.state == .queued && $0.kind == .notice && $0.eventId == e.id && $0.attempts == 0 })
        let incident = try #require(try await store.incident(key: "dns"))
        #expect(incident.incident.status == .open)
        #expect(incident.events.map(\.id) == [e.id])
        #expect(try await store.countsByState()[.queued] == 3)
    }

    func perRecipientDeliveriesThreadOntoTheirOwnNotice() async throws {
        let trigger = event("dns", .triggered, at: t0)
        let r = try await store.enqueue([EnqueueRequest(event: trigger, channels: ["mail", "hook"],
                                                        recipients: ["mail": ["a@example.com", "b@example.com"]])], now: t0)
        #expect(r == [.accepted(.init(eventId: trigger.id, incident: "dns", deliveries: 3, channels: ["mail", "hook"]))])
        let mail = try await store.claim(channel: "mail", limit: 10, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(Set(mail.compactMap(\.delivery.recipient)) == ["a@example.com", "b@example.com"])
        try await store.record(mail.map {
            AttemptRecord(deliveryId: $0.delivery.id, startedAt: t0, duration: .zero,
                          outcome: .delivered(reference: "<\($0.delivery.recipient!)@herald>"), status: 250)
        }, now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0), channels: ["mail"],
                                                    recipients: ["mail": ["a@example.com", "b@example.com"]])], now: t0)
        let clears = try await store.claim(channel: "mail", limit: 10, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(clears.count == 2)
        for c in clears {
            #expect(c.delivery.kind == .allClear)
            #expect(c.thread == "<\(c.delivery.recipient!)@herald>")
        }
    }

    /// The all-clear goes to exactly who was told, threaded; waiting notices are superseded and
    /// their recipients, like those whose notice failed, get one summary; a repeat does nothing.
    func allClearFollowsTheReceipts() async throws {
        let trigger = event("dns", .triggered, at: t0)
        _ = try await store.enqueue([EnqueueRequest(event: trigger, channels: ["told", "waiting", "broken"])], now: t0)
        let told = try await store.claim(channel: "told", limit: 1, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        try await store.record([AttemptRecord(deliveryId: told[0].delivery.id, startedAt: t0, duration: .zero,
                                              outcome: .delivered(reference: "msg-told"), status: 200)], now: t0)
        let broken = try await store.claim(channel: "broken", limit: 1, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        try await store.record([AttemptRecord(deliveryId: broken[0].delivery.id, startedAt: t0, duration: .zero,
                                              outcome: .failed(reason: "clientError 404"), status: 404)], now: t0)
        // The resolve names a route that now also includes "status" (always notified) and no longer "broken".
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(2340))
        let r = try await store.enqueue([EnqueueRequest(event: resolve, channels: ["told", "waiting", "status"])], now: t0)
        #expect(r == [.accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 4, channels: ["told", "waiting", "broken", "status"]))])
        let kinds = Dictionary(uniqueKeysWithValues: try await store.deliveries(DeliveryFilter(incident: "dns"))
            .filter { $0.eventId == resolve.id }.map { ($0.channel, $0.kind) })
        #expect(kinds == ["told": .allClear, "waiting": .summary, "broken": .summary, "status": .allClear])
        let waitingNotice = try await store.deliveries(DeliveryFilter(channel: "waiting")).first { $0.kind == .notice }
        #expect(waitingNotice?.state == .superseded)
        let clear = try await store.claim(channel: "told", limit: 5, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(clear.map(\.delivery.kind) == [.allClear])
        #expect(clear.first?.thread == "msg-told")
        #expect(clear.first?.threadDeliveryId == told[0].delivery.id)
        // Nothing of the superseded notice is ever claimed.
        let waiting = try await store.claim(channel: "waiting", limit: 5, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(waiting.map(\.delivery.kind) == [.summary])
        // A repeated resolve of the same cycle creates nothing.
        let again = event("dns", .resolved, at: t0.addingTimeInterval(2400))
        let r2 = try await store.enqueue([EnqueueRequest(event: again, channels: ["told", "waiting", "status"])], now: t0)
        #expect(r2 == [.accepted(.init(eventId: again.id, incident: "dns", deliveries: 0, channels: []))])
    }

    func anAllClearWaitsWhileItsNoticeIsInFlight() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        let notice = try await store.claim(channel: "ch", limit: 1, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0), channels: ["ch"])], now: t0)
        #expect(try await store.claim(channel: "ch", limit: 5, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60)).isEmpty)
        try await store.record([AttemptRecord(deliveryId: notice[0].delivery.id, startedAt: t0, duration: .zero,
                                              outcome: .delivered(reference: "m1"), status: 200)], now: t0)
        let clear = try await store.claim(channel: "ch", limit: 5, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(clear.map(\.delivery.kind) == [.allClear])
        #expect(clear.first?.thread == "m1")
    }

    func idempotencyKeyRepeatsTheFirstAnswerAndConflictsOnAnotherBody() async throws {
        let idem = EnqueueRequest.Idempotency(scope: "monitoring", key: "k1", bodyHash: "h1")
        let first = event("dns", .triggered, at: t0)
        let second = event("dns", .triggered, at: t0)
        let r = try await store.enqueue([
            EnqueueRequest(event: first, channels: ["a"], idempotency: idem),
            EnqueueRequest(event: second, channels: ["a"], idempotency: idem),
            EnqueueRequest(event: second, channels: ["a"], idempotency: .init(scope: "monitoring", key: "k1", bodyHash: "h2")),
            EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["a"], idempotency: .init(scope: "other", key: "k1", bodyHash: "h2")),
        ], now: t0)
        #expect(r[0] == .accepted(.init(eventId: first.id, incident: "dns", deliveries: 1, channels: ["a"])))
        #expect(r[1] == .repeated(.init(eventId: first.id, incident: "dns", deliveries: 1, channels: [])))
        #expect(r[2] == .conflict)
        if case .accepted = r[3] {} else { Issue.record("another scope's key is independent") }
        #expect(try await store.deliveries(DeliveryFilter()).count == 2)
    }

    func claimTakesAllClearsFirstThenOldestAndLeasesThem() async throws {
        for i in 0..<5 {
            _ = try await store.enqueue([EnqueueRequest(event: event("n\(i)", .triggered, at: t0), channels: ["ch"])],
                                        now: t0.addingTimeInterval(Double(i)))
        }
        _ = try await store.enqueue([EnqueueRequest(event: event("n0", .resolved, at: t0), channels: ["ch"])], now: t0.addingTimeInterval(10))
        _ = try await store.enqueue([EnqueueRequest(event: event("other", .triggered, at: t0), channels: ["elsewhere"])], now: t0)
        let now = t0.addingTimeInterval(20)
        let claimed = try await store.claim(channel: "ch", limit: 3, now: now, owner: "n1", leaseUntil: now.addingTimeInterval(60))
        // n0's notice was still queued when it resolved: superseded, and a summary goes first.
        #expect(claimed.map(\.delivery.incident) == ["n0", "n1", "n2"])
        #expect(claimed.map(\.delivery.kind) == [.summary, .notice, .notice])
        #expect(claimed.allSatisfy { $0.delivery.state == .inFlight })
        // Claimed rows are not claimed twice.
        let rest = try await store.claim(channel: "ch", limit: 10, now: now, owner: "n1", leaseUntil: now.addingTimeInterval(60))
        #expect(rest.map(\.delivery.incident) == ["n3", "n4"])
        #expect(try await store.claim(channel: "ch", limit: 10, now: now, owner: "n1", leaseUntil: now).isEmpty)
        #expect(try await store.nextDue(channel: "ch") == nil)
        // Nothing due in the future is claimed early.
        #expect(try await store.claim(channel: "elsewhere", limit: 10, now: t0.addingTimeInterval(-1), owner: "n1", leaseUntil: now).isEmpty)
    }

    func recordKeepsEveryAttemptAndTheReceipt() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        var c = try await store.claim(channel: "ch", limit: 1, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        let id = try #require(c.first?.delivery.id)
        let retryAt = t0.addingTimeInterval(30)
        try await store.record([AttemptRecord(deliveryId: id, startedAt: t0, duration: .milliseconds(12), outcome: .retry(at: retryAt),
                                              status: 503, reason: "serverError", error: "serverError 503: HTTP 503")], now: t0)
        #expect(try await store.nextDue(channel: "ch") == retryAt)
        #expect(try await store.claim(channel: "ch", limit: 1, now: t0.addingTimeInterval(10), owner: "n", leaseUntil: retryAt).isEmpty)
        c = try await store.claim(channel: "ch", limit: 1, now: retryAt, owner: "n", leaseUntil: retryAt.addingTimeInterval(60))
        #expect(c.first?.budgetAttempts == 1)
        try await store.record([AttemptRecord(deliveryId: id, startedAt: retryAt, duration: .milliseconds(8),
                                              outcome: .delivered(reference: "msg-42"), status: 200)], now: retryAt)
        let detail = try #require(try await store.delivery(id: id))
        #expect(detail.delivery.state == .delivered)
        #expect(detail.delivery.receipt == "msg-42")
        #expect(detail.delivery.attempts == 2)
        #expect(detail.attempts.map(\.outcome) == [.retry, .delivered])
        #expect(detail.attempts.map(\.status) == [503, 200])
        #expect(detail.attempts[0].error == "serverError 503: HTTP 503")
        // A late duplicate answer changes nothing.
        try await store.record([AttemptRecord(deliveryId: id, startedAt: retryAt, duration: .zero, outcome: .failed(reason: "late"))], now: retryAt)
        #expect(try await store.delivery(id: id)?.delivery.state == .delivered)
        #expect(try await store.delivery(id: id)?.attempts.count == 2)
    }

    func replayRequeuesFailedWithFreshBudgetAndKeepsHistory() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["a", "b"])], now: t0)
        for ch in ["a", "b"] {
            let c = try await store.claim(channel: ch, limit: 1, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
            try await store.record([AttemptRecord(deliveryId: c[0].delivery.id, startedAt: t0, duration: .zero,
                                                  outcome: .failed(reason: "clientError 404: HTTP 404"), status: 404)], now: t0)
        }
        let dry = try await store.replay(ids: nil, filter: DeliveryFilter(channel: "a"), dryRun: true, now: t0)
        #expect(dry.count == 1)
        #expect(try await store.countsByState()[.failed] == 2)
        let later = t0.addingTimeInterval(100)
        let done = try await store.replay(ids: nil, filter: DeliveryFilter(channel: "a"), dryRun: false, now: later)
        #expect(done.count == 1 && done.channels == ["a"])
        let c = try await store.claim(channel: "a", limit: 1, now: later, owner: "n", leaseUntil: later.addingTimeInterval(60))
        #expect(c.first?.budgetAttempts == 0)
        #expect(c.first?.budgetSince == later)
        try await store.record([AttemptRecord(deliveryId: c[0].delivery.id, startedAt: later, duration: .zero,
                                              outcome: .delivered(reference: nil), status: 200)], now: later)
        let detail = try #require(try await store.delivery(id: c[0].delivery.id))
        #expect(detail.attempts.map(\.replay) == [0, 1])
        #expect(detail.delivery.replays == 1)
        // Only failed deliveries are replayed.
        #expect(try await store.replay(ids: [c[0].delivery.id], filter: DeliveryFilter(), dryRun: false, now: later).count == 0)
    }

    func leasesOfADeadClaimerComeBack() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        _ = try await store.claim(channel: "ch", limit: 1, now: t0, owner: "dead", leaseUntil: t0.addingTimeInterval(60))
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(30), owner: nil).isEmpty)
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(61), owner: nil) == ["ch"])
        #expect(try await store.claim(channel: "ch", limit: 1, now: t0.addingTimeInterval(61), owner: "alive",
                                      leaseUntil: t0.addingTimeInterval(120)).count == 1)
    }

    func incidentCyclesAndRepeatedResolves() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: [])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(60)), channels: [])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(90)), channels: [])], now: t0)
        var i = try #require(try await store.incident(key: "dns")).incident
        #expect(i.status == .resolved && i.cycle == 1 && i.resolvedAt == t0.addingTimeInterval(60))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0.addingTimeInterval(600)), channels: [])], now: t0)
        i = try #require(try await store.incident(key: "dns")).incident
        #expect(i.status == .open && i.cycle == 2 && i.resolvedAt == nil && i.openedAt == t0.addingTimeInterval(600))
    }
    /// A trigger and its resolve committed together: the notice never went out, so it is
    /// superseded and the recipient gets a summary; a later trigger opens a new cycle.
    func triggerAndResolveInOneBatch() async throws {
        let trigger = event("dns", .triggered, at: t0)
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(5))
        let r = try await store.enqueue([EnqueueRequest(event: trigger, channels: ["a"]),
                                         EnqueueRequest(event: resolve, channels: ["a"])], now: t0)
        #expect(r == [.accepted(.init(eventId: trigger.id, incident: "dns", deliveries: 1, channels: ["a"])),
                      .accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 1, channels: ["a"]))])
        let all = try await store.deliveries(DeliveryFilter(incident: "dns"))
        #expect(Set(all.map { "\($0.kind.rawValue):\($0.state.rawValue)" }) == ["notice:superseded", "summary:queued"])
        let claimed = try await store.claim(channel: "a", limit: 5, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(claimed.map(\.delivery.kind) == [.summary])
        #expect(claimed.first?.incident.status == .resolved)
        let again = event("dns", .triggered, at: t0.addingTimeInterval(60))
        let r2 = try await store.enqueue([EnqueueRequest(event: again, channels: ["a"])], now: t0.addingTimeInterval(60))
        #expect(r2 == [.accepted(.init(eventId: again.id, incident: "dns", deliveries: 1, channels: ["a"]))])
        let detail = try #require(try await store.incident(key: "dns"))
        #expect(detail.incident.cycle == 2 && detail.incident.status == .open)
        #expect(detail.events.map(\.id) == [again.id])
        #expect(detail.deliveries.map(\.kind) == [.notice])
    }

    /// A failed notice handed over to a fallback channel: one fallback per target, and the
    /// all-clear follows it there instead of going to the channel that failed.
    func fallbackTakesTheAllClearAlong() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["primary"])], now: t0)
        let notice = try await store.claim(channel: "primary", limit: 1, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(try await store.enqueueFallback(of: notice[0].delivery.id, channel: "backup", recipients: [], now: t0) == 0,
                "only a failed notice falls back")
        try await store.record([AttemptRecord(deliveryId: notice[0].delivery.id, startedAt: t0, duration: .zero,
                                              outcome: .failed(reason: "clientError 410"), status: 410)], now: t0)
        #expect(try await store.enqueueFallback(of: notice[0].delivery.id, channel: "backup", recipients: [], now: t0) == 1)
        #expect(try await store.enqueueFallback(of: notice[0].delivery.id, channel: "backup", recipients: [], now: t0) == 0)
        #expect(try await store.enqueueFallback(of: notice[0].delivery.id, channel: "mail", recipients: ["a@x", "b@x"],
                                                now: t0) == 2)
        let backup = try await store.claim(channel: "backup", limit: 5, now: t0, owner: "n", leaseUntil: t0.addingTimeInterval(60))
        #expect(backup.map(\.delivery.kind) == [.notice])
        try await store.record([AttemptRecord(deliveryId: backup[0].delivery.id, startedAt: t0, duration: .zero,
                                              outcome: .delivered(reference: "bk-1"), status: 200)], now: t0)
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(60))
        let r = try await store.enqueue([EnqueueRequest(event: resolve, channels: ["primary"])], now: t0.addingTimeInterval(60))
        // mail's two fallbacks never went out: superseded, and each recipient gets a summary.
        #expect(r == [.accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 3, channels: ["backup", "mail"]))])
        let clear = try await store.claim(channel: "backup", limit: 5, now: t0.addingTimeInterval(60), owner: "n",
                                          leaseUntil: t0.addingTimeInterval(120))
        #expect(clear.map(\.delivery.kind) == [.allClear])
        #expect(clear.first?.thread == "bk-1")
        #expect(try await store.claim(channel: "primary", limit: 5, now: t0.addingTimeInterval(60), owner: "n",
                                      leaseUntil: t0.addingTimeInterval(120)).isEmpty)
        let mail = try await store.deliveries(DeliveryFilter(channel: "mail"))
        #expect(Set(mail.map { "\($0.kind.rawValue):\($0.state.rawValue):\($0.recipient ?? "-")" })
                == ["notice:superseded:a@x", "notice:superseded:b@x", "summary:queued:a@x", "summary:queued:b@x"])
    }

    func statusPostsAreIdempotentAndNewestFirst() async throws {
        func post(_ id: String, at: Date, title: String) -> StatusPost {
            StatusPost(id: id, incident: "dns", kind: .notice, status: .triggered, severity: .critical, title: title,
                       message: nil, components: ["api"], link: nil, openedAt: t0, resolvedAt: nil, postedAt: at)
        }
        try await store.publishStatus(post("p1", at: t0, title: "first"))
        try await store.publishStatus(post("p2", at: t0.addingTimeInterval(10), title: "second"))
        try await store.publishStatus(post("p1", at: t0, title: "first, edited"))
        let posts = try await store.statusPosts(limit: 10)
        #expect(posts.map(\.id) == ["p2", "p1"])
        #expect(posts.last?.title == "first, edited")
        #expect(try await store.statusPosts(limit: 1).map(\.id) == ["p2"])
    }

    func filtersAndCounts() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("a", .triggered, at: t0), channels: ["x", "y"]),
                                    EnqueueRequest(event: event("b", .triggered, at: t0), channels: ["x"])], now: t0)
        #expect(try await store.deliveries(DeliveryFilter(channel: "x")).count == 2)
        #expect(try await store.deliveries(DeliveryFilter(channel: "x", incident: "b")).count == 1)
        #expect(try await store.deliveries(DeliveryFilter(state: .failed)).isEmpty)
        #expect(try await store.deliveries(DeliveryFilter(since: t0.addingTimeInterval(1))).isEmpty)
        #expect(try await store.deliveries(DeliveryFilter(limit: 2)).count == 2)
        #expect(try await store.incidents(limit: 10).map(\.key).sorted() == ["a", "b"])
        #expect(try await store.incident(key: "nope") == nil)
        #expect(try await store.delivery(id: "dlv_nope") == nil)
        let counts = try await store.countsByState()
        #expect(counts[.queued] == 3 && counts[.delivered] == 0 && counts.count == DeliveryState.allCases.count)
        #expect(try await store.nextDue(channel: "x") == t0)
        #expect(try await store.nextDue(channel: "nope") == nil)
    }

}

actor BatchLog {
    var sizes: [Int] = []
    func add(_ n: Int) { sizes.append(n) }
}
