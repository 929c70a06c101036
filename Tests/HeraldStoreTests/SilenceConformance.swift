import Foundation
import HeraldCore
import HeraldStore
import Testing

/// Silences, as every store must keep them: a notice a silence holds waits `silenced`, goes out
/// when the silence ends while its incident is open, and is never sent after the resolve.
extension Conformance {
    func silence(_ id: String, _ matchers: [String], channels: [String] = [], from: TimeInterval = -60,
                 until: TimeInterval = 600) throws -> Silence {
        Silence(id: id, matchers: try matchers.map { try SilenceMatcher(parsing: $0) }, channels: channels,
                startsAt: t0.addingTimeInterval(from), endsAt: t0.addingTimeInterval(until), createdBy: "ops",
                comment: "deploy window", createdAt: t0.addingTimeInterval(from))
    }

    func labelled(_ incident: String, _ status: EventStatus, at: Date, labels: [String: String]) -> Event {
        var e = event(incident, status, at: at)
        e.labels = labels
        return e
    }

    func aSilencedNoticeWaitsAndGoesOutWhenItsSilenceEnds() async throws {
        try await store.addSilence(try silence("sil_web", ["service=web"]))
        let web = labelled("web-down", .triggered, at: t0, labels: ["service": "web"])
        let r = try await store.enqueue([EnqueueRequest(event: web, channels: ["pager", "chat"])], now: t0)
        // Committed, but nothing to wake: both notices are held.
        #expect(r == [.accepted(.init(eventId: web.id, incident: "web-down", deliveries: 2, channels: [], transition: "opened"))])
        #expect(try await states("web-down", "pager") == ["notice:silenced"])
        let held = try await store.deliveries(DeliveryFilter(incident: "web-down"))
        #expect(held.allSatisfy { $0.silencedBy == "sil_web" && $0.dueAt == nil })
        // Another service is not silenced.
        _ = try await store.enqueue([EnqueueRequest(event: labelled("db-down", .triggered, at: t0, labels: ["service": "db"]),
                                                    channels: ["pager"])], now: t0)
        #expect(try await states("db-down", "pager") == ["notice:queued"])
        #expect(try await claim("pager", at: t0.addingTimeInterval(1)).map(\.delivery.incident) == ["db-down"])
        // Nobody was told: an update and a repeat send nothing (the held notices now carry the repeat).
        let again = labelled("web-down", .triggered, at: t0.addingTimeInterval(3), labels: [:])
        _ = try await store.enqueue([EnqueueRequest(event: labelled("web-down", .updated, at: t0.addingTimeInterval(2), labels: [:]),
                                                    channels: ["pager", "chat"]),
                                     EnqueueRequest(event: again, channels: ["pager", "chat"])], now: t0.addingTimeInterval(3))
        #expect(try await states("web-down", "chat") == ["notice:silenced"])
        // Before its end nothing is let go; the answer says when to look again.
        let early = try await store.releaseSilences(now: t0.addingTimeInterval(10))
        #expect(early == SilenceRelease(channels: [], nextEnd: t0.addingTimeInterval(600)))
        // Expired early by an operator: the notices go out now.
        let expired = try #require(try await store.expireSilence(id: "sil_web", now: t0.addingTimeInterval(20)))
        #expect(expired.endsAt == t0.addingTimeInterval(20))
        let released = try await store.releaseSilences(now: t0.addingTimeInterval(20))
        #expect(Set(released.channels) == ["pager", "chat"] && released.nextEnd == nil)
        #expect(try await states("web-down", "pager") == ["notice:queued"])
        let notice = try await claim("pager", at: t0.addingTimeInterval(21))
        #expect(notice.map(\.delivery.kind) == [.notice] && notice.first?.event.id == again.id)
        // Released once: a second pass finds nothing.
        #expect(try await store.releaseSilences(now: t0.addingTimeInterval(30)).channels == [])
    }

    func aResolveDuringASilenceSendsNothingToThoseNeverTold() async throws {
        try await store.addSilence(try silence("sil_pager", ["severity=critical"], channels: ["pager"]))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["pager", "chat"])], now: t0)
        #expect(try await states("dns", "pager") == ["notice:silenced"])
        #expect(try await states("dns", "chat") == ["notice:queued"])
        let told = try await claim("chat")
        try await answer(told[0], .delivered(reference: "m1"), status: 200)
        let resolve = event("dns", .resolved, at: t0.addingTimeInterval(60))
        let r = try await store.enqueue([EnqueueRequest(event: resolve, channels: ["pager", "chat"])], now: t0.addingTimeInterval(60))
        // The all-clear to the one told; the silenced pager gets no summary and its notice never goes.
        #expect(r == [.accepted(.init(eventId: resolve.id, incident: "dns", deliveries: 1, channels: ["chat"], transition: "resolved"))])
        #expect(try await states("dns", "pager") == ["notice:superseded"])
        #expect(try await store.releaseSilences(now: t0.addingTimeInterval(700)).channels == [])
        #expect(try await claim("pager", at: t0.addingTimeInterval(700)).isEmpty)
    }

    func overlappingSilencesHoldUntilTheLastEnds() async throws {
        try await store.addSilence(try silence("sil_short", ["component=~\"api|web\""], until: 100))
        try await store.addSilence(try silence("sil_long", ["incident!=other"], until: 200))
        var e = event("api", .triggered, at: t0)
        e.components = ["api"]
        _ = try await store.enqueue([EnqueueRequest(event: e, channels: ["pager"])], now: t0)
        // Held by the one that ends last.
        #expect(try await store.deliveries(DeliveryFilter(incident: "api")).map(\.silencedBy) == ["sil_long"])
        _ = try await store.expireSilence(id: "sil_long", now: t0.addingTimeInterval(50))
        let first = try await store.releaseSilences(now: t0.addingTimeInterval(50))
        #expect(first == SilenceRelease(channels: [], nextEnd: t0.addingTimeInterval(100)))
        let still = try await store.deliveries(DeliveryFilter(incident: "api"))
        #expect(still.map(\.state) == [.silenced] && still.map(\.silencedBy) == ["sil_short"])
        #expect(try await store.releaseSilences(now: t0.addingTimeInterval(100)).channels == ["pager"])
        #expect(try await states("api", "pager") == ["notice:queued"])
    }

    func silencesNeverHoldWhatATargetToldMustHear() async throws {
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["chat"])], now: t0)
        let told = try await claim("chat")
        try await answer(told[0], .delivered(reference: "m1"), status: 200)
        try await store.addSilence(try silence("sil_all", ["severity=~\".+\""], from: 1))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .updated, at: t0.addingTimeInterval(5)), channels: ["chat"])],
                                    now: t0.addingTimeInterval(5))
        #expect(try await states("dns", "chat") == ["notice:delivered", "update:queued"])
        let update = try await claim("chat", at: t0.addingTimeInterval(5))
        try await answer(update[0], .delivered(reference: "m2"), status: 200, at: t0.addingTimeInterval(5))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .resolved, at: t0.addingTimeInterval(6)), channels: ["chat"])],
                                    now: t0.addingTimeInterval(6))
        #expect(try await states("dns", "chat") == ["all_clear:queued", "notice:delivered", "update:delivered"])
    }

    func silencesAreListedFoundAndExpired() async throws {
        try await store.addSilence(try silence("sil_old", ["team=db"], from: -600, until: -60))
        try await store.addSilence(try silence("sil_now", ["team=db"]))
        try await store.addSilence(try silence("sil_later", ["team!~\"db|web\""], from: 300, until: 900))
        #expect(try await store.silences(includeExpired: false, now: t0, limit: 10).map(\.id).sorted() == ["sil_later", "sil_now"])
        #expect(try await store.silences(includeExpired: true, now: t0, limit: 10).count == 3)
        let found = try #require(try await store.silence(id: "sil_later"))
        #expect(found.matchers.map(\.description) == ["team!~\"db|web\""] && found.createdBy == "ops")
        #expect(try await store.expireSilence(id: "sil_missing", now: t0) == nil)
        // A pending silence holds nothing yet; expired before it began, it never will.
        _ = try await store.enqueue([EnqueueRequest(event: event("disk", .triggered, at: t0), channels: ["pager"])], now: t0)
        #expect(try await states("disk", "pager") == ["notice:queued"])
        let gone = try #require(try await store.expireSilence(id: "sil_later", now: t0))
        #expect(gone.state(at: t0) == "expired")
        // Expiring one already over changes nothing.
        #expect(try await store.expireSilence(id: "sil_old", now: t0)?.endsAt == t0.addingTimeInterval(-60))
    }
}

extension Conformance {
    /// Quiet hours from the configuration become stored silences ahead of time; a reload that
    /// drops them expires the one in force (its notices go out); one an operator expired stays so.
    func quietHoursAreStoredAheadAndFollowTheConfiguration() async throws {
        let allDay = QuietHours(name: "pager-off", channels: ["pager"], times: [.init(start: 0, end: 1440)],
                                timeZone: TimeZone(identifier: "UTC")!)
        let desired = allDay.silences(from: t0, horizon: 86_400, createdAt: t0)
        #expect(desired.count == 2) // today's (in force) and tomorrow's
        #expect(try await store.syncQuietHours(desired, now: t0))
        #expect(try await store.syncQuietHours(desired, now: t0) == false)
        let stored = try await store.silences(includeExpired: false, now: t0, limit: 10)
        #expect(Set(stored.map(\.id)) == Set(desired.map(\.id)))
        #expect(Set(stored.map { $0.state(at: t0) }) == ["active", "pending"])
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["pager", "chat"])], now: t0)
        #expect(try await states("dns", "pager") == ["notice:silenced"])
        #expect(try await states("dns", "chat") == ["notice:queued"])
        // The configuration no longer has them: the one in force ends now, and its notice is let go.
        #expect(try await store.syncQuietHours([], now: t0.addingTimeInterval(5)))
        #expect(try await store.silences(includeExpired: false, now: t0.addingTimeInterval(5), limit: 10).isEmpty)
        #expect(try await store.releaseSilences(now: t0.addingTimeInterval(5)).channels == ["pager"])
        // Back in the configuration: what was expired stays expired; nothing new is held today.
        #expect(try await store.syncQuietHours(desired, now: t0.addingTimeInterval(6)) == false)
    }
}

extension Conformance {
    /// A removed channel's silenced notice moves with the rest of its work when an operator
    /// redirects the channel: it would otherwise wake, after its silence, on a channel nobody sends.
    func aRedirectMovesASilencedNotice() async throws {
        try await store.addSilence(try silence("sil_old", [], channels: ["old"]))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["old"])], now: t0)
        #expect(try await states("dns", "old") == ["notice:silenced"])
        let moved = try await store.redirect(channel: "old", to: [Target(channel: "new")], dryRun: false, now: t0)
        #expect(moved.count == 1 && moved.channels == ["new"])
        #expect(try await states("dns", "old") == ["notice:failed"])
        #expect(try await states("dns", "new") == ["notice:queued"])
        #expect(try await store.releaseSilences(now: t0.addingTimeInterval(700)).channels == [])
    }
}

extension Conformance {
    /// A silence matched the incident as it was: a repeat that escalates it past the silence's
    /// matchers lets the held notice go now, carrying the escalated event.
    func anEscalationPastTheSilenceLetsTheHeldNoticeGo() async throws {
        try await store.addSilence(try silence("sil_minor", ["severity=~\"minor|info\""]))
        let minor = event("disk", .triggered, at: t0, title: "Disk 91%", severity: .minor)
        _ = try await store.enqueue([EnqueueRequest(event: minor, channels: ["pager"])], now: t0)
        #expect(try await states("disk", "pager") == ["notice:silenced"])
        // A repeat still minor: still held.
        _ = try await store.enqueue([EnqueueRequest(event: event("disk", .triggered, at: t0.addingTimeInterval(5), title: "Disk 93%",
                                                                 severity: .minor), channels: ["pager"])], now: t0.addingTimeInterval(5))
        #expect(try await states("disk", "pager") == ["notice:silenced"])
        let critical = event("disk", .triggered, at: t0.addingTimeInterval(10), title: "Disk 99%", severity: .critical)
        let r = try await store.enqueue([EnqueueRequest(event: critical, channels: ["pager"])], now: t0.addingTimeInterval(10))
        #expect(r == [.accepted(.init(eventId: critical.id, incident: "disk", deliveries: 0, channels: ["pager"], transition: "repeated"))])
        #expect(try await states("disk", "pager") == ["notice:queued"])
        let sent = try await claim("pager", at: t0.addingTimeInterval(10))
        #expect(sent.map(\.delivery.kind) == [.notice] && sent.first?.event.title == "Disk 99%")
        // Its retry budget starts now, not when it was held.
        #expect(sent.first?.budgetSince == t0.addingTimeInterval(10))
    }
}

extension Conformance {
    /// A channel-wide silence through a storm: the release goes in batches, each its own short
    /// transaction, and says when there is more.
    func aLargeReleaseGoesInBatches() async throws {
        try await store.addSilence(try silence("sil_storm", [], channels: ["pager"]))
        let count = SilenceRelease.batch + 5
        var batch: [EnqueueRequest] = []
        for i in 0..<count {
            batch.append(EnqueueRequest(event: event("storm-\(i)", .triggered, at: t0), channels: ["pager"]))
            if batch.count == 500 || i == count - 1 {
                _ = try await store.enqueue(batch, now: t0)
                batch = []
            }
        }
        #expect(try await store.waitingCounts()[.silenced] == count)
        _ = try await store.expireSilence(id: "sil_storm", now: t0.addingTimeInterval(1))
        let first = try await store.releaseSilences(now: t0.addingTimeInterval(1))
        #expect(first.more && first.channels == ["pager"])
        let second = try await store.releaseSilences(now: t0.addingTimeInterval(1))
        #expect(!second.more && second.channels == ["pager"])
        let counts = try await store.waitingCounts()
        #expect(counts[.silenced] == 0 && counts[.queued] == count)
    }
}

/// Scheduled maintenance, as every store must keep it: a silence `mnt_…` with its steps.
extension Conformance {
    func window(_ id: String, from: TimeInterval, until: TimeInterval, channels: [String] = ["pager"]) throws -> Silence {
        try Silence.maintenance(Maintenance(title: "Database upgrade", components: ["web", "api"]), id: id, channels: channels,
                                startsAt: t0.addingTimeInterval(from), endsAt: t0.addingTimeInterval(until), createdBy: "ops",
                                createdAt: t0)
    }

    func maintenanceWindowsAreListedAndTheirStepsRecordedOnce() async throws {
        try await store.addSilence(try window("mnt_b", from: 600, until: 900))
        try await store.addSilence(try window("mnt_a", from: 60, until: 120))
        try await store.addSilence(try window("mnt_old", from: -900, until: -600))
        // An ordinary silence is not maintenance, whatever it holds.
        try await store.addSilence(try silence("sil_web", ["service=web"]))
        // Earliest start first; only those ending after the time asked.
        #expect(try await store.maintenanceWindows(endingAfter: t0, limit: 10).map(\.id) == ["mnt_a", "mnt_b"])
        #expect(try await store.maintenanceWindows(endingAfter: t0.addingTimeInterval(-3600), limit: 10).map(\.id)
                == ["mnt_old", "mnt_a", "mnt_b"])
        #expect(try await store.maintenanceWindows(endingAfter: t0, limit: 1).map(\.id) == ["mnt_a"])
        // A step keeps its first time.
        let first = try #require(try await store.recordMaintenanceStep(id: "mnt_a", step: .announced, at: t0))
        #expect(first.maintenance?.posted(.announced) == t0)
        let again = try #require(try await store.recordMaintenanceStep(id: "mnt_a", step: .announced, at: t0.addingTimeInterval(5)))
        #expect(again.maintenance?.posted(.announced) == t0)
        // Cancelled before it began: recording a step does not undo the cancel.
        _ = try await store.expireSilence(id: "mnt_a", now: t0.addingTimeInterval(10))
        let cancelled = try #require(try await store.recordMaintenanceStep(id: "mnt_a", step: .cancelled, at: t0.addingTimeInterval(11)))
        #expect(cancelled.endsAt == t0.addingTimeInterval(10) && cancelled.maintenanceStatus(at: t0.addingTimeInterval(11)) == "cancelled")
        #expect(cancelled.maintenance?.steps.keys.sorted() == ["announced", "cancelled"])
        #expect(try await store.silence(id: "mnt_a")?.maintenance?.steps.count == 2)
        // Not a maintenance window, or none at all: nothing is written.
        #expect(try await store.recordMaintenanceStep(id: "sil_web", step: .started, at: t0)?.maintenance == nil)
        #expect(try await store.recordMaintenanceStep(id: "mnt_nope", step: .started, at: t0) == nil)
        // The window holds notices of its components to the channels it names, not its own events.
        var web = labelled("web-down", .triggered, at: t0.addingTimeInterval(700), labels: [:])
        web.components = ["web"]
        var own = labelled("maintenance:mnt_b", .triggered, at: t0.addingTimeInterval(700), labels: ["kind": "maintenance"])
        own.components = ["web"]
        own.source = "maintenance"
        _ = try await store.enqueue([EnqueueRequest(event: web, channels: ["pager", "chat"]),
                                     EnqueueRequest(event: own, channels: ["pager"])], now: t0.addingTimeInterval(700))
        #expect(try await states("web-down", "pager") == ["notice:silenced"])
        #expect(try await states("web-down", "chat") == ["notice:queued"])
        #expect(try await states("maintenance:mnt_b", "pager") == ["notice:queued"])
    }
}

extension Conformance {
    /// Quiet hours store a silence a day, for years: ended ones go with the deliveries' history,
    /// but never one a notice still waits on (its release reads it).
    func endedSilencesArePrunedUnlessTheyStillHoldANotice() async throws {
        try await store.addSilence(try silence("sil_old", ["service=web"], from: -3600, until: 86_400))
        try await store.addSilence(try silence("sil_held", ["service=db"], from: -60, until: 600))
        try await store.addSilence(try silence("sil_recent", ["service=api"], from: -60, until: 95 * 86_400))
        try await store.addSilence(try window("mnt_old", from: 60, until: 120))
        _ = try await store.enqueue([EnqueueRequest(event: labelled("db-down", .triggered, at: t0, labels: ["service": "db"]),
                                                    channels: ["pager"])], now: t0)
        #expect(try await states("db-down", "pager") == ["notice:silenced"])
        // 100 days on (deliveries are kept 90): the old ones go; the one a notice waits on stays,
        // ended though it is; the one that ended 5 days ago stays.
        let later = t0.addingTimeInterval(100 * 86_400)
        let removed = try await prune(at: later, limit: 2)
        #expect(removed["silences"] == 2)
        #expect(try await store.silences(includeExpired: true, now: later, limit: 10).map(\.id).sorted() == ["sil_held", "sil_recent"])
        // Released, it goes at the next pass.
        #expect(try await store.releaseSilences(now: later).channels == ["pager"])
        #expect(try await prune(at: later)["silences"] == 1)
        #expect(try await store.silences(includeExpired: true, now: later, limit: 10).map(\.id) == ["sil_recent"])
        // Kept forever when deliveries are.
        #expect(try await prune(at: later.addingTimeInterval(400 * 86_400), retention: .forever)["silences"] ?? 0 == 0)
    }
}

extension Conformance {
    /// One batch commits an update that lets a held notice go (its silence ended, not yet
    /// released) and then the resolve: the resolve supersedes the notice and the target gets the
    /// summary — never the notice after it. (Found by the lifecycle simulation on PostgreSQL,
    /// where both changes to the notice went into one statement and the release won.)
    func anUpdateThatLetsAHeldNoticeGoAndTheResolveInOneBatch() async throws {
        try await store.addSilence(try silence("sil_pager", [], channels: ["pager"], from: -60, until: 60))
        _ = try await store.enqueue([EnqueueRequest(event: event("db", .triggered, at: t0), channels: ["pager"])], now: t0)
        #expect(try await states("db", "pager") == ["notice:silenced"])
        let t1 = t0.addingTimeInterval(100)
        _ = try await store.enqueue([EnqueueRequest(event: event("db", .updated, at: t1), channels: ["pager"]),
                                     EnqueueRequest(event: event("db", .resolved, at: t1), channels: ["pager"])], now: t1)
        #expect(try await states("db", "pager") == ["notice:superseded", "summary:queued"])
        #expect(try await claim("pager", at: t1.addingTimeInterval(1)).map(\.delivery.kind) == [.summary])
    }
}

extension Conformance {
    /// A notice handed to a fallback channel is held by a silence on that channel, as any notice
    /// is; the fallback without one goes out at once.
    func aSilenceOnAFallbackChannelHoldsItsNotice() async throws {
        try await store.addSilence(try silence("sil_backup", ["severity=critical"], channels: ["backup"]))
        _ = try await store.enqueue([EnqueueRequest(event: event("dns", .triggered, at: t0), channels: ["primary"])], now: t0)
        let notice = try await claim("primary", limit: 1)
        try await answer(notice[0], .failed(reason: "clientError 410"), status: 410,
                         fallback: [Target(channel: "backup"), Target(channel: "mail")])
        #expect(try await states("dns", "backup") == ["notice:silenced"])
        #expect(try await claim("backup").isEmpty)
        #expect(try await claim("mail").map(\.delivery.kind) == [.notice])
        // When the silence ends with the incident open, the held fallback goes out.
        _ = try await store.expireSilence(id: "sil_backup", now: t0.addingTimeInterval(30))
        #expect(try await store.releaseSilences(now: t0.addingTimeInterval(30)).channels == ["backup"])
        #expect(try await claim("backup", at: t0.addingTimeInterval(31)).map(\.delivery.kind) == [.notice])
    }
}
