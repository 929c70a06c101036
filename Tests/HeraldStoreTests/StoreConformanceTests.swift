import Foundation
import Testing
@testable import HeraldCore
@testable import HeraldStore
@testable import HeraldSQLite
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

    /// The embedded store shares nothing: its work-signal stream is over at once (nothing is ever
    /// signalled), no shared rate limiter, every in-flight lease is its own.
    @Test func sqliteSharesNothing() async throws {
        let (store, _) = try Self.sqlite()
        #expect(!store.isShared)
        #expect(try await store.takeRateTokens(channel: "a", want: 1, rate: 1, burst: 1, now: Date()) == nil)
        _ = try await store.enqueue([EnqueueRequest(event: Conformance(store: store).event("x", .triggered, at: Date()),
                                                    channels: ["a"])], now: Date())
        var n = 0
        for await _ in store.workSignals() { n += 1 }
        #expect(n == 0)
        await store.close()
    }

    /// One submission the store refuses fails alone; the others that shared its batch commit. A
    /// store that is down fails the batch at once, without trying each submission on its own.
    @Test func aRefusedSubmissionNeverFailsTheOthersInItsBatch() async throws {
        let commits = BatchLog()
        let gate = BatchGate()
        let committer = GroupCommitter<Int, Int>(maxBatch: 100, isolating: { ($0 as? StoreError)?.isRejected == true }) { items in
            await commits.add(items.count)
            await gate.waitOnce()
            if items.contains(13) { throw StoreError.rejected("13 is unlucky") }
            if items.contains(-1) { throw StoreError.underlying("the store is down") }
            return items
        }
        // The first submission holds the writer while the rest gather into one batch.
        async let first = committer.submit(0)
        await gate.waitUntilHeld()
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 1...20 { group.addTask { (i, (try? await committer.submit(i)) == i) } }
            while committer.waiting < 20 { await Task.yield() }
            await gate.release()
            var out: [Int: Bool] = [:]
            for await (i, ok) in group { out[i] = ok }
            return out
        }
        #expect(try await first == 0)
        #expect(results.filter { !$0.value }.map(\.key) == [13])
        // Tried whole first (20), then each of the 20 alone.
        #expect(await commits.sizes == [1, 20] + Array(repeating: 1, count: 20))
        // The store down: the gathered batch fails once, as a whole.
        let downCommits = BatchLog()
        let downGate = BatchGate()
        let down = GroupCommitter<Int, Int>(maxBatch: 100, isolating: { ($0 as? StoreError)?.isRejected == true }) { items in
            await downCommits.add(items.count)
            await downGate.waitOnce()
            throw StoreError.underlying("the store is down")
        }
        async let held = try? down.submit(0)
        await downGate.waitUntilHeld()
        let failed = await withTaskGroup(of: Bool.self) { group in
            for i in 1...10 { group.addTask { (try? await down.submit(i)) == nil } }
            while down.waiting < 10 { await Task.yield() }
            await downGate.release()
            var n = 0
            for await f in group where f { n += 1 }
            return n
        }
        #expect(await held == nil && failed == 10)
        #expect(await downCommits.sizes == [1, 10])
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
    case aRepeatedTriggerPagesNobodyAndEscalatesOnlyToNewTargets
    case updatesGoOnlyToThoseToldThreadedAfterTheirNotice
    case anAcknowledgementIsRecordedAndNeverRewritesTheIncident
    case eventsAboutIncidentsNotOpenSendNothing
    case aNoticeThatFailsAfterTheResolveBecomesTheSummary
    case aNoticeReleasedAfterTheResolveBecomesTheSummary
    case aLateAnswerFromAnExpiredLeaseChangesNothing
    case replayAfterTheResolveSkipsNoticesAndUpdates
    case noFallbackAfterTheResolveAndNoneToATargetAlreadyPaged
    case fieldsAnEventLeavesOutKeepTheIncidentsValues
    case pruningRemovesFinishedHistoryAndKeepsOpenWaitingAndInFlightWork
    case prunedIncidentsGoWithTheirHistoryAfterTheirPeriod
    case pruningForgetsIdempotencyKeysAfterTheirPeriod
    case waitingCountsAreTheWaitingStates
    case aRemovedChannelsNoticesGoElsewhereAndTheirAllClearFollows
    case aSilencedNoticeWaitsAndGoesOutWhenItsSilenceEnds
    case aResolveDuringASilenceSendsNothingToThoseNeverTold
    case overlappingSilencesHoldUntilTheLastEnds
    case silencesNeverHoldWhatATargetToldMustHear
    case silencesAreListedFoundAndExpired
    case quietHoursAreStoredAheadAndFollowTheConfiguration
    case aRedirectMovesASilencedNotice
    case anEscalationPastTheSilenceLetsTheHeldNoticeGo
    case aLargeReleaseGoesInBatches
    case maintenanceWindowsAreListedAndTheirStepsRecordedOnce
    case endedSilencesArePrunedUnlessTheyStillHoldANotice
    case anUpdateThatLetsAHeldNoticeGoAndTheResolveInOneBatch
    case aSilenceOnAFallbackChannelHoldsItsNotice
    case subscribersHearPublicIncidentsPageByPage
    case signUpsAreConfirmedOnceBeforeTheyExpire
    case consoleSessionsLastUntilTheyExpireOrAreRemoved
    case eventsAreFoundByIdAndQueuesCountedPerChannel
    case oneClaimServesSeveralChannelsAndSaysWhenTheShortOnesAreDueNext

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
        case .aRepeatedTriggerPagesNobodyAndEscalatesOnlyToNewTargets: try await c.aRepeatedTriggerPagesNobodyAndEscalatesOnlyToNewTargets()
        case .updatesGoOnlyToThoseToldThreadedAfterTheirNotice: try await c.updatesGoOnlyToThoseToldThreadedAfterTheirNotice()
        case .anAcknowledgementIsRecordedAndNeverRewritesTheIncident: try await c.anAcknowledgementIsRecordedAndNeverRewritesTheIncident()
        case .eventsAboutIncidentsNotOpenSendNothing: try await c.eventsAboutIncidentsNotOpenSendNothing()
        case .aNoticeThatFailsAfterTheResolveBecomesTheSummary: try await c.aNoticeThatFailsAfterTheResolveBecomesTheSummary()
        case .aNoticeReleasedAfterTheResolveBecomesTheSummary: try await c.aNoticeReleasedAfterTheResolveBecomesTheSummary()
        case .aLateAnswerFromAnExpiredLeaseChangesNothing: try await c.aLateAnswerFromAnExpiredLeaseChangesNothing()
        case .replayAfterTheResolveSkipsNoticesAndUpdates: try await c.replayAfterTheResolveSkipsNoticesAndUpdates()
        case .noFallbackAfterTheResolveAndNoneToATargetAlreadyPaged: try await c.noFallbackAfterTheResolveAndNoneToATargetAlreadyPaged()
        case .fieldsAnEventLeavesOutKeepTheIncidentsValues: try await c.fieldsAnEventLeavesOutKeepTheIncidentsValues()
        case .pruningRemovesFinishedHistoryAndKeepsOpenWaitingAndInFlightWork:
            try await c.pruningRemovesFinishedHistoryAndKeepsOpenWaitingAndInFlightWork()
        case .prunedIncidentsGoWithTheirHistoryAfterTheirPeriod: try await c.prunedIncidentsGoWithTheirHistoryAfterTheirPeriod()
        case .pruningForgetsIdempotencyKeysAfterTheirPeriod: try await c.pruningForgetsIdempotencyKeysAfterTheirPeriod()
        case .waitingCountsAreTheWaitingStates: try await c.waitingCountsAreTheWaitingStates()
        case .aRemovedChannelsNoticesGoElsewhereAndTheirAllClearFollows: try await c.aRemovedChannelsNoticesGoElsewhereAndTheirAllClearFollows()
        case .aSilencedNoticeWaitsAndGoesOutWhenItsSilenceEnds: try await c.aSilencedNoticeWaitsAndGoesOutWhenItsSilenceEnds()
        case .aResolveDuringASilenceSendsNothingToThoseNeverTold: try await c.aResolveDuringASilenceSendsNothingToThoseNeverTold()
        case .overlappingSilencesHoldUntilTheLastEnds: try await c.overlappingSilencesHoldUntilTheLastEnds()
        case .silencesNeverHoldWhatATargetToldMustHear: try await c.silencesNeverHoldWhatATargetToldMustHear()
        case .silencesAreListedFoundAndExpired: try await c.silencesAreListedFoundAndExpired()
        case .quietHoursAreStoredAheadAndFollowTheConfiguration: try await c.quietHoursAreStoredAheadAndFollowTheConfiguration()
        case .aRedirectMovesASilencedNotice: try await c.aRedirectMovesASilencedNotice()
        case .anEscalationPastTheSilenceLetsTheHeldNoticeGo: try await c.anEscalationPastTheSilenceLetsTheHeldNoticeGo()
        case .aLargeReleaseGoesInBatches: try await c.aLargeReleaseGoesInBatches()
        case .maintenanceWindowsAreListedAndTheirStepsRecordedOnce: try await c.maintenanceWindowsAreListedAndTheirStepsRecordedOnce()
        case .endedSilencesArePrunedUnlessTheyStillHoldANotice: try await c.endedSilencesArePrunedUnlessTheyStillHoldANotice()
        case .anUpdateThatLetsAHeldNoticeGoAndTheResolveInOneBatch: try await c.anUpdateThatLetsAHeldNoticeGoAndTheResolveInOneBatch()
        case .aSilenceOnAFallbackChannelHoldsItsNotice: try await c.aSilenceOnAFallbackChannelHoldsItsNotice()
        case .subscribersHearPublicIncidentsPageByPage: try await c.subscribersHearPublicIncidentsPageByPage()
        case .signUpsAreConfirmedOnceBeforeTheyExpire: try await c.signUpsAreConfirmedOnceBeforeTheyExpire()
        case .consoleSessionsLastUntilTheyExpireOrAreRemoved: try await c.consoleSessionsLastUntilTheyExpireOrAreRemoved()
        case .eventsAreFoundByIdAndQueuesCountedPerChannel: try await c.eventsAreFoundByIdAndQueuesCountedPerChannel()
        case .oneClaimServesSeveralChannelsAndSaysWhenTheShortOnesAreDueNext:
            try await c.oneClaimServesSeveralChannelsAndSaysWhenTheShortOnesAreDueNext()
        }
    }
}

/// The checks themselves, against one store.
struct Conformance {
    let store: any Store

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ incident: String, _ status: EventStatus, at: Date, title: String = "DNS down", severity: Severity = .critical,
               omitted: Set<Event.Field> = []) -> Event {
        Event(id: Identifier.make(prefix: "evt", at: at), incident: incident, status: status, severity: severity,
              title: title, occurredAt: at, receivedAt: at, omitted: omitted)
    }

    func claim(_ channel: String, limit: Int = 10, at: Date? = nil, owner: String = "n", lease: TimeInterval = 60) async throws -> [ClaimedDelivery] {
        let now = at ?? t0
        return try await store.claim(channel: channel, limit: limit, now: now, owner: owner, leaseUntil: now.addingTimeInterval(lease))
    }

    func answer(_ c: ClaimedDelivery, _ outcome: AttemptRecord.Outcome, status: Int? = nil, at: Date? = nil,
                fallback: [Target] = []) async throws {
        try await store.record([AttemptRecord(deliveryId: c.delivery.id, lease: c.lease, startedAt: at ?? t0, duration: .zero,
                                              outcome: outcome, status: status, fallback: fallback)], now: at ?? t0)
    }

    /// `kind:state` of every delivery of the incident's current cycle on a channel.
    func states(_ incident: String, _ channel: String) async throws -> [String] {
        let detail = try await store.incident(key: incident)
        return (detail?.deliveries ?? []).filter { $0.channel == channel }.map { "\($0.kind.rawValue):\($0.state.rawValue)" }.sorted()
    }

    func enqueueCommitsEventIncidentAndOneDeliveryPerChannel() async throws {
        let e = event("dns", .triggered, at: t0)
        let results = try await store.enqueue([EnqueueRequest(event: e, channels: ["a", "b", "c"])], now: t0)
        #expect(results == [.accepted(.init(eventId: e.id, incident: "dns", deliveries: 3, channels: ["a", "b", "c"], transition: "opened"))])
        let all = try await store.deliveries(DeliveryFilter(incident: "dns"))
        #expect(Set(all.map(\.channel)) == ["a", "b", "c"])
        #expect(all.allSatisfy { $0.state == .queued && $0.kind == .notice && $0.eventId == e.id && $0.attempts == 0 })
        let incident = try #require(try await store.incident(key: "dns"))
        #expect(incident.incident.status == .open && incident.incident.triggers == 1)
        #expect(incident.events.map(\.id) == [e.id])
        #expect(try await store.countsByState()[.queued] == 3)
    }

    func perRecipientDeliveriesThreadOntoTheirOwnNotice() async throws {
        let trigger = event("dns", .triggered, at: t0)
        let r = try await store.enqueue([EnqueueRequest(event: trigger, channels: ["mail", "hook"],
                                                        recipients: ["mail": ["a@example.com", "b@example.com"]])], now: t0)
        #expect(r == [.accepted(.init(eventId: trigger.id, incident: "dns", deliveries: 3, channels: ["mail", "hook"], transition: "opened"))])
        let mail = try await claim("mail")
        #expect(Set(mail.compactMap(\.delivery.recipient)) == ["a@example.com", "b@example.com"])
        for m in mail { try await answer(m, .delivered(reference: "<\(m.delivery.recipient!)@herald>"), status: 250) }
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0), channels: ["mail"],
                                                    recipients: ["mail": ["a@example.com", "b@example.com"]])], now: t0)
        let clears = try await claim("mail")
        #expect(clears.count == 2)
        for c in clears {
            #expect(c.delivery.kind == .allClear)
            #expect(c.thread == "<\(c.delivery.recipient!)@herald>")
            #expect(c.references == ["<\(c.delivery.recipient!)@herald>"])
            #expect(c.notice?.event.id == trigger.id)
        }
    }

    /// The all-clear goes to exactly who was told, threaded; waiting notices are superseded and
    /// their recipients, like those whose notice failed, get one summary; a channel the cycle never
    /// routed gets nothing, whatever the resolve's own routing says; a repeat does nothing.
    func allClearFollowsTheReceipts() async throws {
        let trigger = event("dns", .triggered, at: t0)
        _ = try await store.enqueue([EnqueueRequest(event: trigger, channels: ["told", "waiting", "broken"])], now: t0)
        let told = try await claim("told", limit: 1)
        try await answer(told[0], .delivered(reference: "msg-told"), status: 200)
        let broken = try await claim("broken", limit: 1)
        try await answer(broken[0], .failed(reason: "clientError 404"), status: 404)
        // The resolve's routing now also names "status" (never routed in this cycle) and no longer "broken".
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(2340))
        let r = try await store.enqueue([EnqueueRequest(event: resolve, channels: ["told", "waiting", "status"])], now: t0)
        #expect(r == [.accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 3, channels: ["told", "waiting", "broken"],
                                      transition: "resolved"))])
        let kinds = Dictionary(uniqueKeysWithValues: try await store.deliveries(DeliveryFilter(incident: "dns"))
            .filter { $0.eventId == resolve.id }.map { ($0.channel, $0.kind) })
        #expect(kinds == ["told": .allClear, "waiting": .summary, "broken": .summary])
        #expect(try await states("dns", "waiting") == ["notice:superseded", "summary:queued"])
        let clear = try await claim("told", limit: 5)
        #expect(clear.map(\.delivery.kind) == [.allClear])
        #expect(clear.first?.thread == "msg-told")
        #expect(clear.first?.threadDeliveryId == told[0].delivery.id)
        // Nothing of the superseded notice is ever claimed.
        #expect(try await claim("waiting", limit: 5).map(\.delivery.kind) == [.summary])
        #expect(try await claim("status").isEmpty)
        // A repeated resolve of the same cycle creates nothing.
        let again = event("dns", .resolved, at: t0.addingTimeInterval(2400))
        let r2 = try await store.enqueue([EnqueueRequest(event: again, channels: ["told", "waiting", "status"])], now: t0)
        #expect(r2 == [.accepted(.init(eventId: again.id, incident: "dns", deliveries: 0, channels: [], transition: "already_resolved"))])
    }

    func anAllClearWaitsWhileItsNoticeIsInFlight() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        let notice = try await claim("ch", limit: 1)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0), channels: ["ch"])], now: t0)
        #expect(try await claim("ch").isEmpty)
        try await answer(notice[0], .delivered(reference: "m1"), status: 200)
        let clear = try await claim("ch")
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
            EnqueueRequest(event: event("other", .triggered, at: t0), channels: ["a"], idempotency: .init(scope: "other", key: "k1", bodyHash: "h2")),
        ], now: t0)
        #expect(r[0] == .accepted(.init(eventId: first.id, incident: "dns", deliveries: 1, channels: ["a"], transition: "opened")))
        #expect(r[1] == .repeated(.init(eventId: first.id, incident: "dns", deliveries: 1, channels: [], transition: "opened")))
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
        let claimed = try await claim("ch", limit: 3, at: now, owner: "n1")
        // n0's notice was still queued when it resolved: superseded, and a summary goes first.
        #expect(claimed.map(\.delivery.incident) == ["n0", "n1", "n2"])
        #expect(claimed.map(\.delivery.kind) == [.summary, .notice, .notice])
        #expect(claimed.allSatisfy { $0.delivery.state == .inFlight })
        #expect(Set(claimed.map(\.lease)).count == 1 && !claimed[0].lease.isEmpty)
        // Claimed rows are not claimed twice; each claim holds a lease of its own.
        let rest = try await claim("ch", at: now, owner: "n1")
        #expect(rest.map(\.delivery.incident) == ["n3", "n4"])
        #expect(rest[0].lease != claimed[0].lease)
        #expect(try await claim("ch", at: now, owner: "n1").isEmpty)
        #expect(try await store.nextDue(channel: "ch") == nil)
        // Nothing due in the future is claimed early.
        #expect(try await claim("elsewhere", at: t0.addingTimeInterval(-1), owner: "n1").isEmpty)
    }

    /// What a node's lanes that woke together get from one claim: each channel its own due
    /// deliveries in claim order under its own lease end; a channel that got fewer than it asked
    /// for learns when its next waiting delivery is due (a retry later on, or none).
    func oneClaimServesSeveralChannelsAndSaysWhenTheShortOnesAreDueNext() async throws {
        for i in 0..<3 {
            _ = try await store.enqueue([EnqueueRequest(event: event("m\(i)", .triggered, at: t0), channels: ["a", "b"])],
                                        now: t0.addingTimeInterval(Double(i)))
        }
        _ = try await store.enqueue([EnqueueRequest(event: event("m0", .resolved, at: t0), channels: ["a", "b"])],
                                    now: t0.addingTimeInterval(5))
        // c's only delivery is retrying, due a minute later.
        _ = try await store.enqueue([EnqueueRequest(event: event("r", .triggered, at: t0), channels: ["c"])], now: t0)
        let retryAt = t0.addingTimeInterval(60)
        let first = try await claim("c", limit: 1)
        try await answer(first[0], .retry(at: retryAt), status: 503)
        let now = t0.addingTimeInterval(10)
        let answers = try await store.claim([
            ClaimRequest(channel: "a", limit: 2, leaseUntil: now.addingTimeInterval(30)),
            ClaimRequest(channel: "b", limit: 10, leaseUntil: now.addingTimeInterval(90)),
            ClaimRequest(channel: "c", limit: 5, leaseUntil: now.addingTimeInterval(30)),
            ClaimRequest(channel: "nothing", limit: 5, leaseUntil: now.addingTimeInterval(30)),
        ], now: now, owner: "n1")
        #expect(answers.count == 4)
        // a: the summary that replaced m0's notice first, then the oldest; full, so no next time.
        #expect(answers[0].claimed.map { "\($0.delivery.kind.rawValue):\($0.delivery.incident)" } == ["summary:m0", "notice:m1"])
        #expect(answers[0].nextDue == nil)
        // b: everything due, and nothing waits after it.
        #expect(answers[1].claimed.map(\.delivery.incident) == ["m0", "m1", "m2"])
        #expect(answers[1].claimed.allSatisfy { $0.delivery.channel == "b" && $0.delivery.state == .inFlight })
        #expect(answers[1].nextDue == nil)
        // c: nothing due yet; its retry is next.
        #expect(answers[2].claimed.isEmpty && answers[2].nextDue == retryAt)
        #expect(answers[3].claimed.isEmpty && answers[3].nextDue == nil)
        // Idle lanes woken by a commit (a store may then claim without looking first) get the
        // same answers: d's new notice, c's retry time, nothing for a channel with nothing.
        _ = try await store.enqueue([EnqueueRequest(event: event("w", .triggered, at: t0), channels: ["w"])], now: now)
        let woken = try await store.claim(["w", "c", "nothing"].map {
            ClaimRequest(channel: $0, limit: 5, leaseUntil: now.addingTimeInterval(90), idle: true, expected: true)
        }, now: now, owner: "n1")
        #expect(woken[0].claimed.map { "\($0.delivery.kind.rawValue):\($0.delivery.incident)" } == ["notice:w"])
        #expect(woken[0].nextDue == nil)
        #expect(woken[1].claimed.isEmpty && woken[1].nextDue == retryAt)
        #expect(woken[2].claimed.isEmpty && woken[2].nextDue == nil)
        // The claims hold: a's third is still there for the next claim, b's are not claimed twice.
        #expect(try await claim("a", at: now).map(\.delivery.incident) == ["m2"])
        #expect(try await claim("b", at: now).isEmpty)
        // A lease ends when its own channel's claim said: b's (and w's) outlive a's.
        let bLeases = try await store.releaseLeases(expiredBefore: now.addingTimeInterval(60), owner: nil)
        #expect(bLeases == ["a"])
        #expect(try await claim("b", at: now).isEmpty)
        // The same channel twice in one claim never hands one delivery to both.
        _ = try await store.enqueue([EnqueueRequest(event: event("d", .triggered, at: t0), channels: ["d"]),
                                     EnqueueRequest(event: event("e", .triggered, at: t0), channels: ["d"])], now: now)
        let twice = try await store.claim([ClaimRequest(channel: "d", limit: 1, leaseUntil: now.addingTimeInterval(30)),
                                           ClaimRequest(channel: "d", limit: 5, leaseUntil: now.addingTimeInterval(30))],
                                          now: now, owner: "n1")
        #expect(twice.map(\.claimed.count) == [1, 1])
        #expect(Set(twice.flatMap(\.claimed).map(\.delivery.id)).count == 2)
    }

    func recordKeepsEveryAttemptAndTheReceipt() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        var c = try await claim("ch", limit: 1)
        let id = try #require(c.first?.delivery.id)
        let retryAt = t0.addingTimeInterval(30)
        try await store.record([AttemptRecord(deliveryId: id, lease: c[0].lease, startedAt: t0, duration: .milliseconds(12),
                                              outcome: .retry(at: retryAt), status: 503, reason: "serverError",
                                              error: "serverError 503: HTTP 503")], now: t0)
        #expect(try await store.nextDue(channel: "ch") == retryAt)
        #expect(try await claim("ch", limit: 1, at: t0.addingTimeInterval(10)).isEmpty)
        c = try await claim("ch", limit: 1, at: retryAt)
        #expect(c.first?.budgetAttempts == 1)
        try await answer(c[0], .delivered(reference: "msg-42"), status: 200, at: retryAt)
        let detail = try #require(try await store.delivery(id: id))
        #expect(detail.delivery.state == .delivered)
        #expect(detail.delivery.receipt == "msg-42")
        #expect(detail.delivery.attempts == 2)
        #expect(detail.attempts.map(\.outcome) == [.retry, .delivered])
        #expect(detail.attempts.map(\.status) == [503, 200])
        #expect(detail.attempts.map(\.late) == [false, false])
        #expect(detail.attempts[0].error == "serverError 503: HTTP 503")
        // A second answer under the same lease (the outcome is already recorded) changes nothing
        // and is kept as late.
        try await answer(c[0], .failed(reason: "late"), at: retryAt)
        let after = try #require(try await store.delivery(id: id))
        #expect(after.delivery.state == .delivered && after.delivery.receipt == "msg-42" && after.delivery.attempts == 2)
        #expect(after.attempts.map(\.late) == [false, false, true])
    }

    func replayRequeuesFailedWithFreshBudgetAndKeepsHistory() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["a", "b"])], now: t0)
        for ch in ["a", "b"] {
            let c = try await claim(ch, limit: 1)
            try await answer(c[0], .failed(reason: "clientError 404: HTTP 404"), status: 404)
        }
        let dry = try await store.replay(ids: nil, filter: DeliveryFilter(channel: "a"), dryRun: true, now: t0)
        #expect(dry.count == 1)
        #expect(try await store.countsByState()[.failed] == 2)
        let later = t0.addingTimeInterval(100)
        let done = try await store.replay(ids: nil, filter: DeliveryFilter(channel: "a"), dryRun: false, now: later)
        #expect(done.count == 1 && done.channels == ["a"] && done.skipped.isEmpty)
        let c = try await claim("a", limit: 1, at: later)
        #expect(c.first?.budgetAttempts == 0)
        #expect(c.first?.budgetSince == later)
        try await answer(c[0], .delivered(reference: nil), status: 200, at: later)
        let detail = try #require(try await store.delivery(id: c[0].delivery.id))
        #expect(detail.attempts.map(\.replay) == [0, 1])
        #expect(detail.delivery.replays == 1)
        // Only failed deliveries are replayed.
        #expect(try await store.replay(ids: [c[0].delivery.id], filter: DeliveryFilter(), dryRun: false, now: later).count == 0)
    }

    func leasesOfADeadClaimerComeBack() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        _ = try await claim("ch", limit: 1, owner: "dead")
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(30), owner: nil).isEmpty)
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(61), owner: nil) == ["ch"])
        #expect(try await claim("ch", limit: 1, at: t0.addingTimeInterval(61), owner: "alive").count == 1)
    }

    func incidentCyclesAndRepeatedResolves() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: [])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(60)), channels: [])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(90)), channels: [])], now: t0)
        var i = try #require(try await store.incident(key: "dns")).incident
        #expect(i.status == .resolved && i.cycle == 1 && i.resolvedAt == t0.addingTimeInterval(60))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0.addingTimeInterval(600)), channels: [])], now: t0)
        i = try #require(try await store.incident(key: "dns")).incident
        #expect(i.status == .open && i.cycle == 2 && i.resolvedAt == nil && i.openedAt == t0.addingTimeInterval(600) && i.triggers == 1)
    }

    /// A trigger and its resolve committed together: the notice never went out, so it is
    /// superseded and the recipient gets a summary; a later trigger opens a new cycle.
    func triggerAndResolveInOneBatch() async throws {
        let trigger = event("dns", .triggered, at: t0)
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(5))
        let r = try await store.enqueue([EnqueueRequest(event: trigger, channels: ["a"]),
                                         EnqueueRequest(event: resolve, channels: ["a"])], now: t0)
        #expect(r == [.accepted(.init(eventId: trigger.id, incident: "dns", deliveries: 1, channels: ["a"], transition: "opened")),
                      .accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 1, channels: ["a"], transition: "resolved"))])
        let all = try await store.deliveries(DeliveryFilter(incident: "dns"))
        #expect(Set(all.map { "\($0.kind.rawValue):\($0.state.rawValue)" }) == ["notice:superseded", "summary:queued"])
        let claimed = try await claim("a", limit: 5)
        #expect(claimed.map(\.delivery.kind) == [.summary])
        #expect(claimed.first?.incident.status == .resolved)
        #expect(claimed.first?.thread == nil, "a summary has no delivered notice to thread onto")
        #expect(claimed.first?.notice?.event.id == trigger.id, "but it knows the notice it stands in for")
        let again = event("dns", .triggered, at: t0.addingTimeInterval(60))
        let r2 = try await store.enqueue([EnqueueRequest(event: again, channels: ["a"])], now: t0.addingTimeInterval(60))
        #expect(r2 == [.accepted(.init(eventId: again.id, incident: "dns", deliveries: 1, channels: ["a"], transition: "opened"))])
        let detail = try #require(try await store.incident(key: "dns"))
        #expect(detail.incident.cycle == 2 && detail.incident.status == .open)
        #expect(detail.events.map(\.id) == [again.id])
        #expect(detail.deliveries.map(\.kind) == [.notice])
    }

    /// A notice that failed for good is handed to the fallback in the same transaction: one notice
    /// per fallback target, and the all-clear follows it there instead of going to the channel
    /// that failed.
    func fallbackTakesTheAllClearAlong() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["primary"])], now: t0)
        let notice = try await claim("primary", limit: 1)
        let backupAndMail = [Target(channel: "backup"), Target(channel: "mail", recipient: "a@x"), Target(channel: "mail", recipient: "b@x")]
        try await answer(notice[0], .failed(reason: "clientError 410"), status: 410, fallback: backupAndMail)
        #expect(try await store.delivery(id: notice[0].delivery.id)?.delivery.state == .failed)
        let backup = try await claim("backup")
        #expect(backup.map(\.delivery.kind) == [.notice])
        #expect(try await store.deliveries(DeliveryFilter(channel: "mail")).count == 2)
        try await answer(backup[0], .delivered(reference: "bk-1"), status: 200)
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(60))
        let r = try await store.enqueue([EnqueueRequest(event: resolve, channels: ["primary"])], now: t0.addingTimeInterval(60))
        // mail's two fallbacks never went out: superseded, and each recipient gets a summary.
        #expect(r == [.accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 3, channels: ["backup", "mail"], transition: "resolved"))])
        let clear = try await claim("backup", at: t0.addingTimeInterval(60))
        #expect(clear.map(\.delivery.kind) == [.allClear])
        #expect(clear.first?.thread == "bk-1")
        #expect(try await claim("primary", at: t0.addingTimeInterval(60)).isEmpty)
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

    /// Alertmanager re-sends every firing alert of a group: a repeat is recorded (counted, in the
    /// history) and pages nobody; a repeat that raises the severity pages only the targets its
    /// new routing adds.
    func aRepeatedTriggerPagesNobodyAndEscalatesOnlyToNewTargets() async throws {
        let routing = Routing(routes: [
            Route(channels: ["oncall"]),
            Route(match: .init(severity: [.critical]), channels: ["pager", "mail"]),
        ], recipients: ["mail": ["a@x", "b@x"]])
        let first = event("db", .triggered, at: t0, severity: .major)
        let r1 = try await store.enqueue([EnqueueRequest(event: first, routing: routing)], now: t0)
        #expect(r1.first == .accepted(.init(eventId: first.id, incident: "db", deliveries: 1, channels: ["oncall"], transition: "opened")))
        let oncall = try await claim("oncall")
        try await answer(oncall[0], .delivered(reference: "o1"))
        // The same again, twice: nothing new, the incident counts it.
        for i in 1...2 {
            let again = event("db", .triggered, at: t0.addingTimeInterval(Double(i)), severity: .major)
            let r = try await store.enqueue([EnqueueRequest(event: again, routing: routing)], now: t0.addingTimeInterval(Double(i)))
            #expect(r.first == .accepted(.init(eventId: again.id, incident: "db", deliveries: 0, channels: [], transition: "repeated")))
        }
        // Escalated: pager and each mail recipient get their notice; oncall (told) nothing.
        let worse = event("db", .triggered, at: t0.addingTimeInterval(5), title: "DB down hard", severity: .critical)
        let r = try await store.enqueue([EnqueueRequest(event: worse, routing: routing)], now: t0.addingTimeInterval(5))
        #expect(r.first == .accepted(.init(eventId: worse.id, incident: "db", deliveries: 3, channels: ["pager", "mail"], transition: "repeated")))
        // Repeated again at the new severity, and one in the same batch: still nobody.
        let r3 = try await store.enqueue([EnqueueRequest(event: event("db", .triggered, at: t0.addingTimeInterval(6)), routing: routing),
                                          EnqueueRequest(event: event("db", .triggered, at: t0.addingTimeInterval(7)), routing: routing)],
                                         now: t0.addingTimeInterval(7))
        #expect(r3.map { if case .accepted(let a) = $0 { return a.deliveries } else { return -1 } } == [0, 0])
        let detail = try #require(try await store.incident(key: "db"))
        #expect(detail.incident.triggers == 6)
        #expect(detail.incident.severity == .critical && detail.incident.title == "DNS down")
        #expect(detail.events.count == 6)
        #expect(detail.deliveries.filter { $0.kind == .notice }.count == 4)
        #expect(try await store.deliveries(DeliveryFilter(channel: "oncall")).count == 1)
        // The resolve reaches all four, each once.
        _ = try await store.enqueue([EnqueueRequest(event: event("db", .resolved, at: t0.addingTimeInterval(9)), routing: routing)],
                                    now: t0.addingTimeInterval(9))
        #expect(try await states("db", "oncall") == ["all_clear:queued", "notice:delivered"])
        #expect(try await states("db", "pager") == ["notice:superseded", "summary:queued"])
        #expect(try await states("db", "mail") == ["notice:superseded", "notice:superseded", "summary:queued", "summary:queued"])
    }

    /// An update goes only to targets already told, threaded; to a target whose notice is still
    /// in flight it waits for the notice's receipt, and goes nowhere if the notice fails.
    func updatesGoOnlyToThoseToldThreadedAfterTheirNotice() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["told", "sending", "waiting", "failing"])], now: t0)
        try await answer(try await claim("told")[0], .delivered(reference: "t1"))
        let sending = try await claim("sending")
        let failing = try await claim("failing")
        let update = event("dns", .updated, at: t0.addingTimeInterval(60), title: "Fix deployed")
        let r = try await store.enqueue([EnqueueRequest(event: update, channels: ["told", "sending", "waiting", "failing", "new"])],
                                        now: t0.addingTimeInterval(60))
        // "told" now; "sending" and "failing" once their notice arrives; never "waiting" or "new".
        #expect(r.first == .accepted(.init(eventId: update.id, incident: "dns", deliveries: 3, channels: ["told"], transition: "updated")))
        let u = try await claim("told", at: t0.addingTimeInterval(60))
        #expect(u.map(\.delivery.kind) == [.update])
        #expect(u.first?.thread == "t1" && u.first?.references == ["t1"])
        try await answer(u[0], .delivered(reference: "t2"))
        #expect(try await claim("sending", at: t0.addingTimeInterval(60)).isEmpty, "the update waits for its notice")
        try await answer(sending[0], .delivered(reference: "s1"), at: t0.addingTimeInterval(61))
        let su = try await claim("sending", at: t0.addingTimeInterval(61))
        #expect(su.map(\.delivery.kind) == [.update] && su.first?.thread == "s1")
        try await answer(failing[0], .failed(reason: "gone"), at: t0.addingTimeInterval(61))
        #expect(try await states("dns", "failing") == ["notice:failed", "update:superseded"])
        #expect(try await states("dns", "waiting") == ["notice:queued"])
        #expect(try await store.deliveries(DeliveryFilter(channel: "new")).isEmpty)
        // The all-clear's references carry the whole thread.
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(120)), channels: [])],
                                    now: t0.addingTimeInterval(120))
        let clear = try await claim("told", at: t0.addingTimeInterval(120))
        #expect(clear.map(\.delivery.kind) == [.allClear] && clear.first?.references == ["t1", "t2"])
        #expect(try await states("dns", "sending") == ["all_clear:queued", "notice:delivered", "update:in_flight"])
        #expect(try await claim("sending", at: t0.addingTimeInterval(120)).isEmpty, "the all-clear waits for the update in flight")
    }

    func anAcknowledgementIsRecordedAndNeverRewritesTheIncident() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0, title: "DNS down"), channels: ["a", "b"])], now: t0)
        try await answer(try await claim("a")[0], .delivered(reference: "a1"))
        var ack = event("dns", .acknowledged, at: t0.addingTimeInterval(30), title: "dns", severity: .major, omitted: [.severity])
        ack.actor = "alice"
        let r = try await store.enqueue([EnqueueRequest(event: ack, channels: ["a", "b"])], now: t0.addingTimeInterval(30))
        #expect(r.first == .accepted(.init(eventId: ack.id, incident: "dns", deliveries: 1, channels: ["a"], transition: "acknowledged")))
        let detail = try #require(try await store.incident(key: "dns"))
        #expect(detail.incident.title == "DNS down" && detail.incident.severity == .critical)
        #expect(detail.incident.acknowledgedAt == t0.addingTimeInterval(30) && detail.incident.acknowledgedBy == "alice")
        #expect(detail.events.last?.status == .acknowledged && detail.events.last?.severity == .critical)
        let u = try await claim("a", at: t0.addingTimeInterval(30))
        #expect(u.map(\.delivery.kind) == [.update] && u.first?.event.status == .acknowledged)
    }

    /// An update, acknowledgement or resolve of an incident that is not open (never seen, or
    /// resolved) is recorded and sends nothing; the next trigger opens a cycle and pages.
    func eventsAboutIncidentsNotOpenSendNothing() async throws {
        for status in [EventStatus.resolved, .updated, .acknowledged] {
            let e = event("ghost-\(status.rawValue)", status, at: t0)
            let r = try await store.enqueue([EnqueueRequest(event: e, channels: ["status", "hook"])], now: t0)
            #expect(r.first == .accepted(.init(eventId: e.id, incident: e.incident, deliveries: 0, channels: [], transition: "recorded")))
            let detail = try #require(try await store.incident(key: e.incident))
            #expect(detail.incident.status == .resolved && detail.incident.cycle == 0)
        }
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["a"])], now: t0)
        try await answer(try await claim("a")[0], .delivered(reference: "a1"))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0), channels: ["a"])], now: t0)
        let late = event("dns", .updated, at: t0.addingTimeInterval(10))
        let r = try await store.enqueue([EnqueueRequest(event: late, channels: ["a"])], now: t0.addingTimeInterval(10))
        #expect(r.first == .accepted(.init(eventId: late.id, incident: "dns", deliveries: 0, channels: [], transition: "recorded")))
        #expect(try await states("dns", "a") == ["all_clear:queued", "notice:delivered"])
        let next = event("ghost-resolved", .triggered, at: t0.addingTimeInterval(20))
        let r2 = try await store.enqueue([EnqueueRequest(event: next, channels: ["hook"])], now: t0.addingTimeInterval(20))
        #expect(r2.first == .accepted(.init(eventId: next.id, incident: "ghost-resolved", deliveries: 1, channels: ["hook"], transition: "opened")))
        #expect(try await store.incident(key: "ghost-resolved")?.incident.cycle == 1)
    }

    /// A notice in flight at the resolve that then fails — for now or for good — is never sent as a
    /// notice again: its target gets the summary instead of the all-clear.
    func aNoticeThatFailsAfterTheResolveBecomesTheSummary() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["retry", "fail", "ok"])], now: t0)
        let retry = try await claim("retry")
        let fail = try await claim("fail")
        let ok = try await claim("ok")
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(5)), channels: [])],
                                    now: t0.addingTimeInterval(5))
        for ch in ["retry", "fail", "ok"] { #expect(try await states("dns", ch) == ["all_clear:queued", "notice:in_flight"]) }
        try await answer(retry[0], .retry(at: t0.addingTimeInterval(6)), status: 503, at: t0.addingTimeInterval(6))
        try await answer(fail[0], .failed(reason: "gone"), status: 410, at: t0.addingTimeInterval(6), fallback: [Target(channel: "backup")])
        try await answer(ok[0], .delivered(reference: "ok-1"), at: t0.addingTimeInterval(6))
        #expect(try await states("dns", "retry") == ["notice:superseded", "summary:queued"])
        #expect(try await states("dns", "fail") == ["notice:superseded", "summary:queued"])
        #expect(try await states("dns", "ok") == ["all_clear:queued", "notice:delivered"])
        #expect(try await store.deliveries(DeliveryFilter(channel: "backup")).isEmpty, "no fallback once the incident is resolved")
        let later = t0.addingTimeInterval(100)
        #expect(try await claim("retry", at: later).map(\.delivery.kind) == [.summary])
        #expect(try await claim("fail", at: later).map(\.delivery.kind) == [.summary])
        // The attempt is history all the same.
        #expect(try await store.delivery(id: retry[0].delivery.id)?.attempts.map(\.outcome) == [.retry])
    }

    /// The same when the notice's claim ends without an answer: its lease expires, or its node
    /// drains or restarts.
    func aNoticeReleasedAfterTheResolveBecomesTheSummary() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["expired", "drained", "open"])], now: t0)
        _ = try await claim("expired", owner: "dead", lease: 10)
        _ = try await claim("drained", owner: "me", lease: 600)
        let open = try await claim("open", owner: "me", lease: 600)
        try await answer(open[0], .retry(at: t0.addingTimeInterval(1)))
        _ = try await claim("open", at: t0.addingTimeInterval(1), owner: "other", lease: 10)
        // Before the resolve, a lease that ends puts the notice back to waiting.
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(20), owner: "other") == ["open"])
        #expect(try await states("dns", "open") == ["notice:retrying"])
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(30)), channels: [])],
                                    now: t0.addingTimeInterval(30))
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(31), owner: nil) == ["expired"])
        #expect(try await store.releaseLeases(expiredBefore: nil, owner: "me") == ["drained"])
        for ch in ["expired", "drained", "open"] {
            #expect(try await states("dns", ch) == ["notice:superseded", "summary:queued"], "\(ch)")
        }
    }

    /// Only the claim that holds a delivery changes it: an answer from a claim whose lease expired
    /// and passed to another is kept in the history as late, and the new claimer's answer counts.
    func aLateAnswerFromAnExpiredLeaseChangesNothing() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["ch"])], now: t0)
        let first = try await claim("ch", owner: "slow", lease: 10)
        #expect(try await store.releaseLeases(expiredBefore: t0.addingTimeInterval(11), owner: nil) == ["ch"])
        let second = try await claim("ch", at: t0.addingTimeInterval(11), owner: "fast")
        #expect(second.map(\.delivery.id) == first.map(\.delivery.id) && second[0].lease != first[0].lease)
        try await answer(first[0], .failed(reason: "clientError 400: stale"), status: 400, at: t0.addingTimeInterval(12))
        #expect(try await store.delivery(id: first[0].delivery.id)?.delivery.state == .inFlight)
        try await answer(second[0], .delivered(reference: "fresh"), status: 200, at: t0.addingTimeInterval(13))
        let detail = try #require(try await store.delivery(id: first[0].delivery.id))
        #expect(detail.delivery.state == .delivered && detail.delivery.receipt == "fresh" && detail.delivery.attempts == 1)
        #expect(detail.attempts.map(\.outcome) == [.failed, .delivered])
        #expect(detail.attempts.map(\.late) == [true, false])
        #expect(detail.attempts.map(\.number) == [1, 2])
        // The late answer of an old lease after the outcome changes nothing either.
        try await answer(first[0], .delivered(reference: "stale"), at: t0.addingTimeInterval(14))
        #expect(try await store.delivery(id: first[0].delivery.id)?.delivery.receipt == "fresh")
    }

    func replayAfterTheResolveSkipsNoticesAndUpdates() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["a", "b"])], now: t0)
        try await answer(try await claim("a")[0], .failed(reason: "gone"), status: 410)
        try await answer(try await claim("b")[0], .delivered(reference: "b1"))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(5)), channels: [])],
                                    now: t0.addingTimeInterval(5))
        let later = t0.addingTimeInterval(10)
        try await answer(try await claim("b", at: later)[0], .failed(reason: "gone"), status: 410, at: later)
        let dry = try await store.replay(ids: nil, filter: DeliveryFilter(), dryRun: true, now: later)
        #expect(dry.count == 1 && dry.skipped.count == 1)
        let done = try await store.replay(ids: nil, filter: DeliveryFilter(), dryRun: false, now: later)
        #expect(done.channels == ["b"] && done.skipped.count == 1)
        #expect(try await states("dns", "a") == ["notice:failed", "summary:queued"])
        #expect(try await claim("b", at: later).map(\.delivery.kind) == [.allClear])
    }

    /// `herald replay --channel gone --to hook`: gone's waiting and failed notices of open incidents
    /// go to hook (once per incident: hook's own notice counts), its notices of a closed incident and
    /// other kinds stay, and the all-clear then follows on hook, threaded onto hook's notice.
    func aRemovedChannelsNoticesGoElsewhereAndTheirAllClearFollows() async throws {
        // A closed incident: told on gone before its resolve; its all-clear waits on gone and stays there.
        _ = try await store.enqueue([EnqueueRequest(event: event("old", .triggered, at: t0), channels: ["gone"])], now: t0)
        try await answer(try #require(try await claim("gone").first), .delivered(reference: "g-old"))
        _ = try await store.enqueue([EnqueueRequest(event: event("old", .resolved, at: t0.addingTimeInterval(1)), channels: ["gone"])],
                                    now: t0.addingTimeInterval(1))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["gone"])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("db", .triggered, at: t0), channels: ["gone"])], now: t0)
        _ = try await store.enqueue([EnqueueRequest(event: event("web", .triggered, at: t0), channels: ["gone", "hook"])], now: t0)
        // db's notice failed for good on gone; the rest go back to waiting.
        let gone = try await claim("gone", at: t0.addingTimeInterval(2))
        #expect(gone.count == 4)
        for c in gone {
            try await store.record([AttemptRecord(deliveryId: c.delivery.id, lease: c.lease, startedAt: t0, duration: .zero,
                                                  outcome: c.delivery.incident == "db" ? .failed(reason: "gone") : .released)],
                                   now: t0.addingTimeInterval(2))
        }
        let later = t0.addingTimeInterval(5)
        let hook = [Target(channel: "hook")]
        let dry = try await store.redirect(channel: "gone", to: hook, dryRun: true, now: later)
        #expect(dry.count == 3 && dry.channels == ["hook"] && dry.skipped.count == 1, "\(dry)")
        #expect(try await states("dns", "gone") == ["notice:queued"], "a dry run changes nothing")
        let done = try await store.redirect(channel: "gone", to: hook, dryRun: false, now: later)
        #expect(done.count == 3 && done.skipped.count == 1)
        for incident in ["dns", "db"] {
            #expect(try await states(incident, "hook") == ["notice:queued"], "\(incident)")
        }
        #expect(try await states("dns", "gone") == ["notice:failed"])
        #expect(try await states("db", "gone") == ["notice:failed"])
        #expect(try await store.deliveries(DeliveryFilter(channel: "gone", incident: "dns")).first?.lastError == "sent to hook instead by an operator")
        // web: hook had its own notice; no second one.
        #expect(try await states("web", "hook") == ["notice:queued"])
        #expect(try await states("old", "gone") == ["all_clear:queued", "notice:delivered"])
        #expect(try await store.deliveries(DeliveryFilter(channel: "hook", incident: "old")).isEmpty)
        // Nothing is left to move; and the all-clear follows on hook, threaded.
        #expect(try await store.redirect(channel: "gone", to: hook, dryRun: false, now: later).count == 0)
        let moved = try #require(try await claim("hook", at: later).first { $0.delivery.incident == "dns" })
        try await answer(moved, .delivered(reference: "h-dns"), at: later)
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: later), channels: ["gone"])], now: later)
        let clear = try await claim("hook", at: later.addingTimeInterval(1)).filter { $0.delivery.incident == "dns" }
        #expect(clear.map(\.delivery.kind) == [.allClear] && clear.first?.thread == "h-dns")
        // gone gets nothing for dns: no summary for a notice an operator sent elsewhere.
        #expect(try await claim("gone", at: later.addingTimeInterval(1)).allSatisfy { $0.delivery.incident == "old" })
        #expect(try await states("dns", "gone") == ["notice:failed"])
    }

    func noFallbackAfterTheResolveAndNoneToATargetAlreadyPaged() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["primary", "backup"])], now: t0)
        let notice = try await claim("primary")
        try await answer(notice[0], .failed(reason: "gone"), status: 410, fallback: [Target(channel: "backup"), Target(channel: "sms")])
        // backup had its own notice: only sms is added.
        #expect(try await states("dns", "backup") == ["notice:queued"])
        #expect(try await states("dns", "sms") == ["notice:queued"])
        #expect(try await store.deliveries(DeliveryFilter(incident: "dns")).count == 3)
    }

    /// A resolve (or repeat) without severity does not make the incident `major`; the stored event
    /// carries the incident's values and says which the sender left out.
    func fieldsAnEventLeavesOutKeepTheIncidentsValues() async throws {
        let routing = Routing(routes: [Route(match: .init(severity: [.critical]), channels: ["public"]), Route(channels: ["oncall"])])
        let first = Event(id: Identifier.make(prefix: "evt", at: t0), incident: "dns", status: .triggered, severity: .minor,
                          title: "DNS slow", components: ["dns"], link: "https://example.com/a", occurredAt: t0, receivedAt: t0)
        _ = try await store.enqueue([EnqueueRequest(event: first, routing: routing)], now: t0)
        let repeatWithout = event("dns", .triggered, at: t0.addingTimeInterval(1), title: "DNS slow", severity: .major,
                                  omitted: [.severity, .components, .link])
        let r = try await store.enqueue([EnqueueRequest(event: repeatWithout, routing: routing)], now: t0.addingTimeInterval(1))
        #expect(r.first == .accepted(.init(eventId: repeatWithout.id, incident: "dns", deliveries: 0, channels: [], transition: "repeated")))
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(2), title: "DNS ok", severity: .major, omitted: [.severity, .link])
        _ = try await store.enqueue([EnqueueRequest(event: resolve, routing: routing)], now: t0.addingTimeInterval(2))
        #expect(try await store.deliveries(DeliveryFilter(channel: "public")).isEmpty, "a minor incident is never announced publicly")
        let detail = try #require(try await store.incident(key: "dns"))
        #expect(detail.incident.severity == .minor && detail.incident.components == ["dns"])
        let stored = try #require(detail.events.last)
        #expect(stored.severity == .minor && stored.link == "https://example.com/a" && stored.components == ["dns"])
        #expect(stored.omitted == [.severity, .link] && stored.title == "DNS ok")
    }
}

actor BatchLog {
    var sizes: [Int] = []
    func add(_ n: Int) { sizes.append(n) }
}

/// Holds the first commit until every other submission has been made.
actor BatchGate {
    private var held = false
    private var holder: CheckedContinuation<Void, Never>?
    private var watchers: [CheckedContinuation<Void, Never>] = []

    /// The first caller waits until `release()`; later callers pass.
    func waitOnce() async {
        guard !held else { return }
        held = true
        for w in watchers { w.resume() }
        watchers = []
        await withCheckedContinuation { holder = $0 }
    }

    func waitUntilHeld() async {
        if held { return }
        await withCheckedContinuation { watchers.append($0) }
    }

    func release() {
        holder?.resume()
        holder = nil
    }
}
