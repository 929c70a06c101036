import Foundation

/// A scheduled maintenance window: what customers are told (the status page, its feed and JSON,
/// and the events the routes send on) and what operators are spared (the channels it silences).
/// It is one object: stored as the `Silence` of its window (id `mnt_…`), whose `maintenance`
/// holds the rest. Its steps — announced, reminder, started, completed (or cancelled) — are
/// events of the incident `maintenance:<id>`, posted once each from the store (`steps` records
/// what was posted), so a restart neither loses nor repeats one.
public struct Maintenance: Sendable, Equatable, Codable {
    public enum Step: String, Sendable, Codable, CaseIterable {
        case announced, reminder, started, completed, cancelled
    }

    public static let idPrefix = "mnt_"
    public static let incidentPrefix = "maintenance:"
    /// The label that marks the maintenance's own events, and the one that lets an event through
    /// the window's silence (and show as an incident on the page during it).
    public static let kindLabel = "kind"
    public static let breakthroughLabel = "breakthrough"
    public static let defaultReminder: TimeInterval = 3600
    /// The source of the maintenance's own events: only the scheduler sets it.
    public static let source = "maintenance"

    public var title: String
    public var message: String?
    public var components: [String]
    /// How long before the start the reminder goes out; 0: none.
    public var reminder: TimeInterval
    /// When each step was posted (by step name).
    public var steps: [String: Date]
    /// The window as scheduled (cancelling one that has not begun ends it at once; what was
    /// planned is still what a cancellation names). Nil in windows stored before it was kept.
    public var plannedStart: Date?
    public var plannedEnd: Date?

    public init(title: String, message: String? = nil, components: [String], reminder: TimeInterval = Self.defaultReminder,
                steps: [String: Date] = [:]) {
        self.title = title
        self.message = message
        self.components = components
        self.reminder = reminder
        self.steps = steps
    }

    public func posted(_ step: Step) -> Date? { steps[step.rawValue] }

    enum CodingKeys: String, CodingKey {
        case title, message, components, steps
        case reminder = "reminder_seconds"
        case plannedStart = "planned_start"
        case plannedEnd = "planned_end"
    }
}

extension Silence {
    /// A maintenance window from `startsAt` to `endsAt`: its silence holds notices to `channels`
    /// of events that touch one of `components` — except the maintenance's own events and events
    /// labelled `breakthrough=true`. With no channels it silences nothing.
    public static func maintenance(_ maintenance: Maintenance, id: String, channels: [String], startsAt: Date, endsAt: Date,
                                   createdBy: String, createdAt: Date) throws(SilenceError) -> Silence {
        let names = maintenance.components.map(Self.regexLiteral).joined(separator: "|")
        let matchers = [
            try SilenceMatcher(name: "component", op: .regex, value: names),
            try SilenceMatcher(name: "source", op: .notEqual, value: Maintenance.source),
            try SilenceMatcher(name: Maintenance.breakthroughLabel, op: .notEqual, value: "true"),
        ]
        var silence = Silence(id: id, matchers: matchers, channels: channels, startsAt: startsAt, endsAt: endsAt,
                              createdBy: createdBy, comment: "maintenance: " + maintenance.title, createdAt: createdAt)
        var m = maintenance
        m.plannedStart = startsAt
        m.plannedEnd = endsAt
        silence.maintenance = m
        return silence
    }

    /// `text` as a regex that matches exactly it.
    static func regexLiteral(_ text: String) -> String {
        var out = ""
        for ch in text {
            if "\\^$.|?*+()[]{}".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }

    public var isMaintenance: Bool { maintenance != nil }

    /// Records that `step` was posted at `at`; a step already recorded keeps its first time.
    /// Answers whether that changed it (false too for a silence that is not maintenance).
    public mutating func record(_ step: Maintenance.Step, at: Date) -> Bool {
        guard maintenance != nil, maintenance?.posted(step) == nil else { return false }
        maintenance?.steps[step.rawValue] = at
        return true
    }

    /// The window as planned: for a cancelled one, what was scheduled; else as it stands (one
    /// ended early ends when it ended).
    public var shownWindow: (start: Date, end: Date) {
        guard wasCancelled, let start = maintenance?.plannedStart,
              let end = maintenance?.plannedEnd else { return (startsAt, endsAt) }
        return (start, end)
    }

    /// When what is shown of the window last changed: its creation or its latest step.
    public var lastChanged: Date? {
        maintenance.map { ([createdAt] + $0.steps.values).max() ?? createdAt }
    }

    /// Ended before it began: cancelling a window that has not begun ends it at its start.
    var wasCancelled: Bool { endsAt <= startsAt }

    /// `scheduled`, `in_progress`, `completed` or `cancelled` (see `wasCancelled`).
    public func maintenanceStatus(at now: Date) -> String {
        if endsAt <= now { return wasCancelled ? "cancelled" : "completed" }
        return now >= startsAt ? "in_progress" : "scheduled"
    }

    /// The maintenance step to post at `now`, if any: the one the window is in, never one it has
    /// passed (a reminder due while Herald was down is not sent after the start). Nothing when
    /// it is over and nothing was ever posted.
    public func dueMaintenanceStep(at now: Date) -> Maintenance.Step? {
        guard let m = maintenance else { return nil }
        if endsAt <= now {
            guard !m.steps.isEmpty, m.posted(.completed) == nil, m.posted(.cancelled) == nil else { return nil }
            return wasCancelled ? .cancelled : .completed
        }
        // The announcement opens the incident, so it goes first even when the start has come (a
        // crash after committing it but before recording it re-posts it, a repeat the store drops).
        guard let announced = m.posted(.announced) else { return .announced }
        if now >= startsAt { return m.posted(.started) == nil ? .started : nil }
        // Never back to an earlier step (a node whose clock lags one that posted the start).
        guard m.posted(.started) == nil else { return nil }
        if let at = reminderAt, m.posted(.reminder) == nil, now >= at, announced < at { return .reminder }
        return nil
    }

    /// When the reminder is due (nil without one).
    var reminderAt: Date? {
        guard let m = maintenance, m.reminder > 0 else { return nil }
        return startsAt.addingTimeInterval(-m.reminder)
    }

    /// When the next step after `now` falls due (nil when none is left).
    public func nextMaintenanceStep(after now: Date) -> Date? {
        guard let m = maintenance, m.posted(.completed) == nil, m.posted(.cancelled) == nil else { return nil }
        var times = [startsAt, endsAt]
        if let at = reminderAt, m.posted(.reminder) == nil, let announced = m.posted(.announced), announced < at { times.append(at) }
        return times.filter { $0 > now }.min()
    }

    /// The event that posts `step`: the announcement opens the incident `maintenance:<id>`,
    /// the last step resolves it (so each channel's completion is the all-clear, threaded onto its
    /// announcement), the others update it.
    public func maintenanceEvent(_ step: Maintenance.Step, id eventId: String, now: Date) -> Event? {
        guard let m = maintenance else { return nil }
        let status: EventStatus
        switch step {
        case .completed, .cancelled: status = .resolved
        case .announced: status = .triggered
        default: status = .updated
        }
        let what = m.components.joined(separator: ", ")
        let (start, end) = shownWindow
        let window = "from \(Self.human(start)) to \(Self.human(end))"
        var text: String
        switch step {
        case .announced: text = "Maintenance of \(what) is scheduled \(window)."
        case .reminder: text = "Maintenance of \(what) begins at \(Self.human(startsAt)) and is expected to end at \(Self.human(endsAt))."
        case .started: text = "Maintenance of \(what) is in progress; it is expected to end at \(Self.human(endsAt))."
        case .completed: text = "Maintenance of \(what) is complete (\(window))."
        case .cancelled: text = "The maintenance of \(what) planned \(window) is cancelled."
        }
        if let extra = m.message, step != .completed && step != .cancelled { text += "\n\n" + extra }
        return Event(id: eventId, incident: Maintenance.incidentPrefix + id, status: status, severity: .info,
                     title: m.title, message: text, components: m.components,
                     labels: [Maintenance.kindLabel: "maintenance", "maintenance": id, "step": step.rawValue],
                     occurredAt: now, receivedAt: now, source: Maintenance.source, actor: createdBy)
    }

    /// `2026-12-01 02:00 UTC`.
    public static func human(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", c.year ?? 1970, c.month ?? 1, c.day ?? 1, c.hour ?? 0, c.minute ?? 0)
    }
}
