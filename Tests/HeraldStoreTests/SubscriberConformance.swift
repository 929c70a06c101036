import Foundation
import HeraldCore
import HeraldStore
import Testing

/// Subscribers, as every store must keep them: sign-ups confirmed once, before they expire; public
/// events fanned out page by page to the confirmed subscribers who want them, with the planner's
/// rules per subscriber.
extension Conformance {
    var publicRouting: Routing {
        Routing(routes: [Route(channels: ["status", "pager"])], subscriberChannel: "subs", statusChannels: ["status"])
    }

    /// A confirmed subscriber (the confirmation link's secret is the id's).
    func subscribe(_ name: String, _ components: [String] = [], at: Date? = nil) async throws -> Subscriber {
        let now = at ?? t0
        let s = Subscriber(id: "sub_\(name)", address: "\(name)@example.com", components: components, createdAt: now,
                           confirmedAt: nil, token: "tok-\(name)")
        #expect(try await store.addSubscriber(s, confirmHash: "hash-\(name)", now: now) == .pending(id: s.id))
        return try #require(try await store.confirmSubscriber(confirmHash: "hash-\(name)", now: now))
    }

    /// Every page of every waiting fan-out; answers the steps.
    func fanOutAll(limit: Int, at: Date? = nil) async throws -> [FanOutStep] {
        var steps: [FanOutStep] = []
        repeat {
            steps.append(try await store.fanOut(channel: "subs", limit: limit, now: at ?? t0))
        } while steps.last!.more && steps.count < 100
        return steps
    }

    /// `recipient kind:state`, sorted, of the subscribers channel's deliveries of an incident.
    func subscriberStates(_ incident: String) async throws -> [String] {
        try await store.deliveries(DeliveryFilter(incident: incident, limit: 1000)).filter { $0.channel == "subs" }
            .map { "\($0.recipient ?? "-") \($0.kind.rawValue):\($0.state.rawValue)" }.sorted()
    }

    func subscribersHearPublicIncidentsPageByPage() async throws {
        for name in ["a", "b", "c"] { _ = try await subscribe(name) }
        _ = try await subscribe("d", ["db"])
        _ = try await subscribe("e", ["web"])
        let unconfirmed = Subscriber(id: "sub_f", address: "f@example.com", components: [], createdAt: t0, confirmedAt: nil, token: "tok-f")
        _ = try await store.addSubscriber(unconfirmed, confirmHash: "hash-f", now: t0)

        var web = event("web", .triggered, at: t0)
        web.components = ["web"]
        let opened = try await store.enqueue([EnqueueRequest(event: web, routing: publicRouting)], now: t0)
        guard case .accepted(let a) = opened.first else { Issue.record("not accepted"); return }
        #expect(a.fansOut == true && a.deliveries == 2)
        // Committed before anyone subscribed is planned: nothing for them yet.
        #expect(try await subscriberStates("web").isEmpty)
        // A private incident (no status page) is nobody's business but the pager's.
        let privateRouting = Routing(routes: [Route(channels: ["pager"])], subscriberChannel: "subs", statusChannels: ["status"])
        let quiet = try await store.enqueue([EnqueueRequest(event: event("db", .triggered, at: t0), routing: privateRouting)], now: t0)
        guard case .accepted(let q) = quiet.first else { Issue.record("not accepted"); return }
        #expect(q.fansOut != true)

        // Pages of two: a b | c d | e — d wants only "db".
        let steps = try await fanOutAll(limit: 2)
        #expect(steps.map(\.created) == [2, 1, 1])
        #expect(steps.map(\.more) == [true, true, false])
        #expect(try await subscriberStates("web") == ["sub_a notice:queued", "sub_b notice:queued", "sub_c notice:queued",
                                                      "sub_e notice:queued"])
        #expect(try await store.fanOut(channel: "subs", limit: 2, now: t0) == .idle)

        let notices = try await claim("subs")
        #expect(notices.count == 4)
        for n in notices where ["sub_a", "sub_c"].contains(n.delivery.recipient) {
            try await answer(n, .delivered(reference: "<\(n.delivery.recipient!)@mail>"), status: 250)
        }
        // Released to queued again: b and e were never told.
        _ = try await store.releaseLeases(expiredBefore: nil, owner: "n")
        // b unsubscribes before hearing: their notice never goes. c unsubscribes after: no all-clear.
        #expect(try await store.removeSubscriber(id: "sub_b", now: t0))
        #expect(try await store.removeSubscriber(id: "sub_c", now: t0))
        #expect(try await store.removeSubscriber(id: "sub_c", now: t0) == false)
        let counts = try await store.subscriberCounts()
        #expect(counts.confirmed == 3 && counts.pending == 1)

        let resolve = event("web", .resolved, at: t0.addingTimeInterval(600))
        _ = try await store.enqueue([EnqueueRequest(event: resolve, routing: publicRouting)], now: t0.addingTimeInterval(600))
        let resolveSteps = try await fanOutAll(limit: 2, at: t0.addingTimeInterval(600))
        #expect(resolveSteps.reduce(0) { $0 + $1.created } == 2)
        #expect(try await subscriberStates("web") == [
            "sub_a all_clear:queued", "sub_a notice:delivered", "sub_b notice:superseded", "sub_c notice:delivered",
            "sub_e notice:superseded", "sub_e summary:queued",
        ])
        let clears = try await claim("subs", at: t0.addingTimeInterval(601))
        let clear = try #require(clears.first { $0.delivery.recipient == "sub_a" })
        #expect(clear.delivery.kind == .allClear && clear.thread == "<sub_a@mail>")
        // The status page's own all-clear was planned in the commit, as before.
        #expect(try await states("web", "status") == ["notice:superseded", "summary:queued"])
    }

    func signUpsAreConfirmedOnceBeforeTheyExpire() async throws {
        let s = Subscriber(id: "sub_x1", address: "x@example.com", components: ["web"], createdAt: t0, confirmedAt: nil, token: "tok-x1")
        #expect(try await store.addSubscriber(s, confirmHash: "h1", now: t0) == .pending(id: "sub_x1"))
        #expect(try await store.subscriber(id: "sub_x1") == nil)
        #expect(try await store.confirmSubscriber(confirmHash: "wrong", now: t0) == nil)
        // Signing up again replaces the first link.
        var again = s
        again.id = "sub_x2"
        again.token = "tok-x2"
        #expect(try await store.addSubscriber(again, confirmHash: "h2", now: t0.addingTimeInterval(60)) == .pending(id: "sub_x2"))
        #expect(try await store.confirmSubscriber(confirmHash: "h1", now: t0.addingTimeInterval(61)) == nil)
        #expect(try await store.subscribers(pending: true, after: nil, limit: 10).map(\.id) == ["sub_x2"])
        // Past its 24 hours the link no longer works, and the sign-up is deleted.
        let late = t0.addingTimeInterval(60 + Subscriber.confirmationLifetime + 1)
        #expect(try await store.confirmSubscriber(confirmHash: "h2", now: late) == nil)
        #expect(try await store.deleteExpiredSignUps(now: late) == 1)
        let counts = try await store.subscriberCounts()
        #expect(counts.confirmed == 0 && counts.pending == 0)

        var third = s
        third.id = "sub_x3"
        third.token = "tok-x3"
        #expect(try await store.addSubscriber(third, confirmHash: "h3", now: late) == .pending(id: "sub_x3"))
        let confirmed = try #require(try await store.confirmSubscriber(confirmHash: "h3", now: late))
        #expect(confirmed.id == "sub_x3" && confirmed.confirmedAt != nil && confirmed.components == ["web"])
        // Once used, the link is spent; a new sign-up of a confirmed address changes nothing.
        #expect(try await store.confirmSubscriber(confirmHash: "h3", now: late) == nil)
        var stranger = s
        stranger.id = "sub_x4"
        stranger.components = []
        #expect(try await store.addSubscriber(stranger, confirmHash: "h4", now: late) == .alreadyConfirmed)
        #expect(try await store.subscriber(token: "tok-x3")?.components == ["web"])
        #expect(try await store.setSubscriberComponents(id: "sub_x3", components: ["api", "web"])?.components == ["api", "web"])
        #expect(try await store.subscribers(pending: false, after: nil, limit: 10).map(\.id) == ["sub_x3"])
        #expect(try await store.subscribers(pending: false, after: "sub_x3", limit: 10).isEmpty)
    }
}
