import Foundation
import Testing
@testable import HeraldCore

/// The lifecycle planner, one case per rule: what an event does to its incident, and which
/// deliveries it creates and supersedes.
@Suite struct LifecyclePlannerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let routing = Routing(routes: [
        Route(channels: ["oncall"]),
        Route(match: .init(severity: [.critical]), channels: ["public"]),
        Route(match: .init(components: ["db"]), channels: ["dba"]),
    ], recipients: ["dba": ["a@x", "b@x"]])

    func event(_ status: EventStatus, severity: Severity = .major, title: String = "API down", components: [String] = [],
               omitted: Set<Event.Field> = [], actor: String? = nil, at offset: TimeInterval = 0) -> Event {
        Event(id: "evt_\(offset)", incident: "api", status: status, severity: severity, title: title, components: components,
              occurredAt: t0.addingTimeInterval(offset), receivedAt: t0.addingTimeInterval(offset), actor: actor, omitted: omitted)
    }

    func open(severity: Severity = .major, components: [String] = [], ack: String? = nil) -> Incident {
        Incident(key: "api", status: .open, cycle: 3, title: "API down", severity: severity, openedAt: t0, resolvedAt: nil,
                 updatedAt: t0, components: components, acknowledgedAt: ack.map { _ in t0 }, acknowledgedBy: ack, triggers: 1,
                 lastSeenAt: t0)
    }

    func notice(_ id: String, _ channel: String, _ state: DeliveryState, recipient: String? = nil, fallbackOf: String? = nil) -> CycleDelivery {
        CycleDelivery(id: id, target: Target(channel: channel, recipient: recipient), kind: .notice, state: state, fallbackOf: fallbackOf)
    }

    func created(_ plan: LifecyclePlan) -> [String] {
        plan.create.map { "\($0.kind.rawValue):\($0.target)\($0.waitsForNotice ? ":waits" : "")" }
    }

    @Test func theFirstTriggerOpensCycleOneAndNoticesEveryRoutedTarget() {
        let plan = LifecyclePlanner.plan(incident: nil, cycle: [], event: event(.triggered, severity: .critical, components: ["db"]),
                                         routing: routing, now: t0)
        #expect(plan.transition == .opened && plan.isNewIncident && plan.cycle == 1 && plan.incident.status == .open)
        #expect(created(plan) == ["notice:oncall", "notice:public", "notice:dba/a@x", "notice:dba/b@x"])
        #expect(plan.incident.triggers == 1)
    }

    @Test func aRepeatPagesNobodyAndIsCounted() {
        let cycle = [notice("n1", "oncall", .delivered)]
        let plan = LifecyclePlanner.plan(incident: open(), cycle: cycle, event: event(.triggered, at: 60), routing: routing, now: t0)
        #expect(plan.transition == .repeated && plan.create.isEmpty && plan.supersede.isEmpty)
        #expect(plan.incident.triggers == 2 && plan.incident.lastSeenAt == t0.addingTimeInterval(60) && plan.cycle == 3)
    }

    @Test func aRepeatThatEscalatesNoticesOnlyTargetsNotRoutedBefore() {
        // oncall was told; public failed before (routed: it gets nothing new); dba never routed.
        let cycle = [notice("n1", "oncall", .delivered), notice("n2", "public", .failed)]
        let plan = LifecyclePlanner.plan(incident: open(), cycle: cycle,
                                         event: event(.triggered, severity: .critical, components: ["db"], at: 60),
                                         routing: routing, now: t0)
        #expect(created(plan) == ["notice:dba/a@x", "notice:dba/b@x"])
        #expect(plan.incident.severity == .critical && plan.incident.components == ["db"])
    }

    @Test func componentsAccumulateWithinACycle() {
        let plan = LifecyclePlanner.plan(incident: open(components: ["db"]), cycle: [notice("n1", "oncall", .delivered)],
                                         event: event(.triggered, components: ["web"], at: 60), routing: routing, now: t0)
        #expect(plan.incident.components == ["db", "web"] && plan.event.components == ["db", "web"])
        // db was in the incident already: its route was taken when db was first named, or it
        // is taken now (this cycle never routed dba).
        #expect(created(plan) == ["notice:dba/a@x", "notice:dba/b@x"])
    }

    @Test func aFieldLeftOutKeepsTheIncidentsValue() {
        let plan = LifecyclePlanner.plan(incident: open(severity: .critical, components: ["db"]),
                                         cycle: [notice("n1", "oncall", .delivered), notice("n2", "public", .delivered)],
                                         event: event(.triggered, severity: .major, components: [], omitted: [.severity, .components], at: 5),
                                         routing: routing, now: t0)
        #expect(plan.event.severity == .critical && plan.incident.severity == .critical)
        #expect(plan.event.components == ["db"] && plan.event.omitted == [.severity, .components])
    }

    @Test func anUpdateGoesOnlyToThoseToldAndWaitsForANoticeInFlight() {
        let cycle = [notice("n1", "oncall", .delivered), notice("n2", "public", .inFlight), notice("n3", "dba", .queued, recipient: "a@x"),
                     notice("n4", "dba", .failed, recipient: "b@x"), notice("n5", "old", .superseded)]
        let plan = LifecyclePlanner.plan(incident: open(), cycle: cycle, event: event(.updated, title: "Fix deployed", at: 60),
                                         routing: routing, now: t0)
        #expect(plan.transition == .updated)
        #expect(created(plan) == ["update:oncall", "update:public:waits"])
        #expect(plan.incident.title == "Fix deployed")
    }

    @Test func anAcknowledgementRecordsWhoAndWhenAndNeverRewritesTitleOrSeverity() {
        let cycle = [notice("n1", "oncall", .delivered)]
        let plan = LifecyclePlanner.plan(incident: open(severity: .critical), cycle: cycle,
                                         event: event(.acknowledged, severity: .info, title: "ack", actor: "alice", at: 30),
                                         routing: routing, now: t0)
        #expect(plan.transition == .acknowledged && created(plan) == ["update:oncall"])
        #expect(plan.incident.acknowledgedBy == "alice" && plan.incident.acknowledgedAt == t0.addingTimeInterval(30))
        #expect(plan.incident.title == "API down" && plan.incident.severity == .critical)
        // A second acknowledgement keeps the first one's who and when.
        let again = LifecyclePlanner.plan(incident: plan.incident, cycle: cycle, event: event(.acknowledged, actor: "bob", at: 90),
                                          routing: routing, now: t0)
        #expect(again.incident.acknowledgedBy == "alice")
    }

    @Test func theResolveFollowsTheCyclesNoticesNeverItsOwnRouting() {
        let cycle = [
            notice("n1", "oncall", .delivered),
            notice("n2", "public", .inFlight),
            notice("n3", "dba", .queued, recipient: "a@x"),
            notice("n4", "dba", .retrying, recipient: "b@x"),
            notice("n5", "pager", .failed),
            notice("n6", "sms", .delivered, fallbackOf: "n5"),
            notice("n7", "mail", .superseded),
            CycleDelivery(id: "u1", target: Target(channel: "oncall"), kind: .update, state: .queued),
            CycleDelivery(id: "u2", target: Target(channel: "public"), kind: .update, state: .queued),
        ]
        // The resolve itself is critical and names db: it would route to public and dba; it must not matter.
        let plan = LifecyclePlanner.plan(incident: open(), cycle: cycle,
                                         event: event(.resolved, severity: .critical, components: ["db", "web"], at: 600),
                                         routing: Routing(routes: [Route(channels: ["status", "oncall"])]), now: t0)
        #expect(plan.transition == .resolved && plan.incident.status == .resolved)
        #expect(plan.incident.resolvedAt == t0.addingTimeInterval(600))
        #expect(created(plan) == ["all_clear:oncall", "all_clear:public", "summary:dba/a@x", "summary:dba/b@x", "all_clear:sms",
                                  "summary:mail"])
        #expect(plan.supersede == ["n3", "n4", "u1", "u2"])
    }

    @Test func eventsAboutIncidentsThatAreNotOpenAreRecordedAndSendNothing() {
        for status in [EventStatus.resolved, .updated, .acknowledged] {
            let plan = LifecyclePlanner.plan(incident: nil, cycle: [], event: event(status), routing: routing, now: t0)
            #expect(plan.transition == .recorded && plan.create.isEmpty && plan.isNewIncident)
            #expect(plan.incident.status == .resolved && plan.incident.cycle == 0)
        }
        var resolved = open()
        resolved.status = .resolved
        resolved.resolvedAt = t0
        #expect(LifecyclePlanner.plan(incident: resolved, cycle: [], event: event(.resolved), routing: routing, now: t0).transition
                == .alreadyResolved)
        for status in [EventStatus.updated, .acknowledged] {
            let plan = LifecyclePlanner.plan(incident: resolved, cycle: [], event: event(status), routing: routing, now: t0)
            #expect(plan.transition == .recorded && plan.create.isEmpty && plan.incident == resolved)
        }
        let reopened = LifecyclePlanner.plan(incident: resolved, cycle: [], event: event(.triggered, at: 900), routing: routing, now: t0)
        #expect(reopened.transition == .opened && reopened.cycle == 4 && created(reopened) == ["notice:oncall"])
        #expect(reopened.incident.acknowledgedAt == nil && reopened.incident.triggers == 1)
    }

    @Test func aFallbackNeverPagesATargetTheCycleRoutedAndNothingAfterTheResolve() {
        let cycle = [notice("n1", "primary", .failed), notice("n2", "backup", .delivered)]
        #expect(LifecyclePlanner.fallbackTargets([Target(channel: "backup"), Target(channel: "sms"), Target(channel: "sms")],
                                                 cycle: cycle, cycleOpen: true) == [Target(channel: "sms")])
        #expect(LifecyclePlanner.fallbackTargets([Target(channel: "sms")], cycle: cycle, cycleOpen: false).isEmpty)
    }
}

/// Silences in the planner: they hold notices only, of matching events, on their channels.
extension LifecyclePlannerTests {
    func silence(_ id: String, _ matcher: String, channels: [String] = [], until: TimeInterval = 600) throws -> Silence {
        Silence(id: id, matchers: [try SilenceMatcher(parsing: matcher)], channels: channels, startsAt: t0.addingTimeInterval(-1),
                endsAt: t0.addingTimeInterval(until), createdBy: "ops", comment: "c", createdAt: t0)
    }

    @Test func aSilenceHoldsTheNoticesOfItsChannelsAndTheResolveSupersedesThem() throws {
        let quiet = [try silence("sil_db", "component=db", channels: ["dba", "public"]), try silence("sil_x", "severity=info")]
        let opened = LifecyclePlanner.plan(incident: nil, cycle: [], event: event(.triggered, severity: .critical, components: ["db"]),
                                           routing: routing, now: t0, silences: quiet)
        #expect(opened.create.map { "\($0.target):\($0.silencedBy ?? "-")" }
                == ["oncall:-", "public:sil_db", "dba/a@x:sil_db", "dba/b@x:sil_db"])
        // The silenced were never told: an update reaches only oncall; a repeat pages nobody.
        let cycle = [notice("n1", "oncall", .delivered), notice("n2", "public", .silenced),
                     notice("n3", "dba", .silenced, recipient: "a@x"), notice("n4", "dba", .silenced, recipient: "b@x")]
        let update = LifecyclePlanner.plan(incident: open(severity: .critical, components: ["db"]), cycle: cycle,
                                           event: event(.updated, omitted: [.severity]), routing: routing, now: t0, silences: quiet)
        #expect(created(update) == ["update:oncall"])
        let repeated = LifecyclePlanner.plan(incident: open(severity: .critical, components: ["db"]), cycle: cycle,
                                             event: event(.triggered, severity: .critical), routing: routing, now: t0, silences: quiet)
        #expect(repeated.create.isEmpty)
        // The resolve: the all-clear to the one told, nothing (not even a summary) to the silenced.
        let resolved = LifecyclePlanner.plan(incident: open(severity: .critical, components: ["db"]), cycle: cycle,
                                             event: event(.resolved, omitted: [.severity]), routing: routing, now: t0, silences: quiet)
        #expect(created(resolved) == ["all_clear:oncall"])
        #expect(resolved.supersede == ["n2", "n3", "n4"])
    }

    @Test func aSilenceThatIsOverOrElsewhereHoldsNothing() throws {
        let over = try silence("sil_old", "component=db", until: -0.5)
        let other = try silence("sil_pager", "component=db", channels: ["pager"])
        let plan = LifecyclePlanner.plan(incident: nil, cycle: [], event: event(.triggered, components: ["db"]),
                                         routing: routing, now: t0, silences: [over, other])
        #expect(plan.create.allSatisfy { $0.silencedBy == nil } && plan.create.count == 3)
    }
}
