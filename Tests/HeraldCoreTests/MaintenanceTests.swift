import Foundation
import HeraldCore
import Testing

/// A maintenance window's steps: each due once, in order, none after one it has passed, and the
/// events that post them open, update and resolve one incident.
struct MaintenanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func window(from: TimeInterval = 7200, until: TimeInterval = 10_800, reminder: TimeInterval = 3600,
                channels: [String] = ["pager"], steps: [Maintenance.Step: TimeInterval] = [:]) throws -> Silence {
        var m = Maintenance(title: "Database upgrade", message: "Read-only for a while.", components: ["web", "api (v2)"],
                            reminder: reminder)
        for (step, at) in steps { m.steps[step.rawValue] = t0.addingTimeInterval(at) }
        return try Silence.maintenance(m, id: "mnt_1", channels: channels, startsAt: t0.addingTimeInterval(from),
                                       endsAt: t0.addingTimeInterval(until), createdBy: "ops", createdAt: t0)
    }

    func due(_ w: Silence, at: TimeInterval) -> Maintenance.Step? { w.dueMaintenanceStep(at: t0.addingTimeInterval(at)) }

    @Test func eachStepFallsDueInItsTurn() throws {
        #expect(due(try window(), at: 0) == .announced)
        let announced = try window(steps: [.announced: 0])
        #expect(due(announced, at: 3599) == nil)
        #expect(announced.nextMaintenanceStep(after: t0) == t0.addingTimeInterval(3600))
        #expect(due(announced, at: 3600) == .reminder)
        let reminded = try window(steps: [.announced: 0, .reminder: 3600])
        #expect(due(reminded, at: 7199) == nil && reminded.nextMaintenanceStep(after: t0.addingTimeInterval(3600)) == t0.addingTimeInterval(7200))
        #expect(due(reminded, at: 7200) == .started)
        let started = try window(steps: [.announced: 0, .reminder: 3600, .started: 7200])
        #expect(due(started, at: 10_799) == nil && started.nextMaintenanceStep(after: t0.addingTimeInterval(7200)) == t0.addingTimeInterval(10_800))
        #expect(due(started, at: 10_800) == .completed)
        let done = try window(steps: [.announced: 0, .reminder: 3600, .started: 7200, .completed: 10_800])
        #expect(due(done, at: 20_000) == nil && done.nextMaintenanceStep(after: t0.addingTimeInterval(10_800)) == nil)
        #expect(done.maintenanceStatus(at: t0.addingTimeInterval(10_800)) == "completed")
    }

    @Test func aStepPassedWhileDownIsSkippedForTheLatestDue() throws {
        // Down through the reminder and the start: "started", not a late reminder.
        let announced = try window(steps: [.announced: 0])
        #expect(due(announced, at: 8000) == .started)
        // Scheduled less than the reminder ahead: no reminder.
        let soon = try window(from: 1800, until: 3600, steps: [.announced: 0])
        #expect(due(soon, at: 1000) == nil && soon.nextMaintenanceStep(after: t0) == t0.addingTimeInterval(1800))
        // No reminder at all.
        #expect(due(try window(reminder: 0, steps: [.announced: 0]), at: 5000) == nil)
        // Over and never posted: nothing (nobody was told); over and announced: the completion.
        #expect(due(try window(), at: 20_000) == nil)
        #expect(due(announced, at: 20_000) == .completed)
        // Begun before anything was posted: the announcement opens it, then "started".
        #expect(due(try window(from: -10), at: 0) == .announced)
        #expect(due(try window(from: -10, steps: [.announced: 0]), at: 0) == .started)
        // A node whose clock lags one that posted the start does not go back to the reminder.
        #expect(due(try window(steps: [.announced: 0, .started: 7200]), at: 5000) == nil)
    }

    @Test func aWindowEndedBeforeItBeganIsCancelled() throws {
        var w = try window(steps: [.announced: 0])
        w.startsAt = t0.addingTimeInterval(60)
        w.endsAt = t0.addingTimeInterval(60)
        #expect(w.maintenanceStatus(at: t0.addingTimeInterval(60)) == "cancelled")
        #expect(due(w, at: 60) == .cancelled)
        let cancelled = try #require(w.maintenanceEvent(.cancelled, id: "evt_1", now: t0))
        #expect(cancelled.status == .resolved)
        // What was planned, not the moment it was cancelled.
        #expect(cancelled.message?.contains("planned from 2027-01-15 10:00 UTC to 2027-01-15 11:00 UTC is cancelled") == true, "\(cancelled.message ?? "")")
        #expect(w.shownWindow.start == t0.addingTimeInterval(7200))
    }

    @Test func theStepsAreEventsOfOneIncident() throws {
        let first = try #require(try window().maintenanceEvent(.announced, id: "evt_1", now: t0))
        #expect(first.incident == "maintenance:mnt_1" && first.status == .triggered && first.severity == .info)
        #expect(first.labels == ["kind": "maintenance", "maintenance": "mnt_1", "step": "announced"])
        #expect(first.components == ["web", "api (v2)"] && first.source == "maintenance" && first.actor == "ops")
        #expect(first.message?.contains("2027-01-15 10:00 UTC") == true && first.message?.contains("Read-only") == true)
        let later = try window(steps: [.announced: 0])
        #expect(later.maintenanceEvent(.started, id: "evt_2", now: t0)?.status == .updated)
        #expect(later.maintenanceEvent(.completed, id: "evt_3", now: t0)?.status == .resolved)
    }

    @Test func itsMessagesReadAsPlannedWorkNotAnOutage() throws {
        let renderer = try MessageRenderer()
        let w = try window(steps: [.announced: 0])
        let incident = Incident(key: "maintenance:mnt_1", status: .open, cycle: 1, title: "Database upgrade", severity: .info,
                                openedAt: t0, resolvedAt: nil, updatedAt: t0)
        let first = try #require(try window().maintenanceEvent(.announced, id: "evt_1", now: t0))
        let notice = renderer.render(kind: .notice, event: first, incident: incident)
        #expect(notice.title == "[MAINTENANCE] Database upgrade")
        #expect(notice.text.hasPrefix("Maintenance: Database upgrade\n\nMaintenance of web, api (v2) is scheduled from 2027-01-15 10:00 UTC"))
        #expect(!notice.text.contains("Since"))
        var resolved = incident
        resolved.resolvedAt = t0.addingTimeInterval(10_800)
        let done = try #require(w.maintenanceEvent(.completed, id: "evt_2", now: t0.addingTimeInterval(10_800)))
        let allClear = renderer.render(kind: .allClear, event: done, incident: resolved)
        #expect(allClear.text.contains("is complete") && !allClear.text.contains("Down from") && !allClear.text.contains("restored"))
        // An operator's own words for it, under `templates:`.
        var templates = MessageRenderer.Templates.defaults
        templates.maintenanceTitle = "Planned: {{title}} ({{label_step}})"
        #expect(try MessageRenderer(templates: templates).render(kind: .update, event: done, incident: resolved).title
                == "Planned: Database upgrade (completed)")
    }

    @Test func theWindowSilencesItsComponentsOnItsChannelsOnly() throws {
        let w = try window(from: 0)
        let during = t0.addingTimeInterval(60)
        func event(_ components: [String], labels: [String: String] = [:]) -> Event {
            Event(id: "evt", incident: "x", status: .triggered, severity: .critical, title: "x", components: components,
                  labels: labels, occurredAt: during, receivedAt: during)
        }
        #expect(w.silences(event(["api (v2)"]), channel: "pager", at: during))
        #expect(w.silences(event(["db", "web"]), channel: "pager", at: during))
        #expect(!w.silences(event(["web"]), channel: "chat", at: during))
        #expect(!w.silences(event(["apiXv2"]), channel: "pager", at: during))
        #expect(!w.silences(event(["web"], labels: ["breakthrough": "true"]), channel: "pager", at: during))
        // Its own events pass (by their source, which only the scheduler sets); a sender's label does not.
        var own = event(["web"], labels: ["kind": "maintenance"])
        #expect(w.silences(own, channel: "pager", at: during))
        own.source = "maintenance"
        #expect(!w.silences(own, channel: "pager", at: during))
        // A window that names no channel silences nothing.
        #expect(!(try window(from: 0, channels: [])).silences(event(["web"]), channel: "pager", at: during))
        // Stored and read back, it is the same window.
        let decoded = try JSONDecoder().decode(Silence.self, from: try JSONEncoder().encode(w))
        #expect(decoded == w && decoded.isMaintenance)
    }
}
