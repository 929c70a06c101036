import Foundation
import Mustache

/// Renders the words people read during an outage from Mustache templates. The defaults say what
/// is affected, since when and what is known; the all-clear says the window and that service is
/// restored. Operators override any of them under `templates:`.
public struct MessageRenderer: Sendable {
    public struct Templates: Sendable, Equatable {
        public var noticeTitle: String
        public var noticeText: String
        public var allClearTitle: String
        public var allClearText: String

        public init(noticeTitle: String = Self.defaults.noticeTitle, noticeText: String = Self.defaults.noticeText,
                    allClearTitle: String = Self.defaults.allClearTitle, allClearText: String = Self.defaults.allClearText) {
            self.noticeTitle = noticeTitle
            self.noticeText = noticeText
            self.allClearTitle = allClearTitle
            self.allClearText = allClearText
        }

        public static let defaults = Templates(
            noticeTitle: "[{{severity_upper}}] {{title}}",
            noticeText: """
                {{#updated}}Update: {{/updated}}{{title}}
                {{#components}}Affected: {{components}}
                {{/components}}Since: {{opened_at}}
                {{#message}}

                {{message}}
                {{/message}}
                {{#link}}

                More: {{link}}
                {{/link}}
                """,
            allClearTitle: "[RESOLVED] {{title}}",
            allClearText: """
                Resolved: {{title}}
                {{#components}}Affected: {{components}}
                {{/components}}Down from {{opened_at}} to {{resolved_at}} ({{duration}}). Service is restored.
                {{#message}}

                {{message}}
                {{/message}}
                {{#link}}

                More: {{link}}
                {{/link}}
                """)
    }

    private let noticeTitle: MustacheTemplate
    private let noticeText: MustacheTemplate
    private let allClearTitle: MustacheTemplate
    private let allClearText: MustacheTemplate

    /// Compiles the templates once; rendering reuses them.
    public init(templates: Templates = .defaults) throws {
        func compile(_ source: String) throws -> MustacheTemplate {
            try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + source)
        }
        noticeTitle = try compile(templates.noticeTitle)
        noticeText = try compile(templates.noticeText)
        allClearTitle = try compile(templates.allClearTitle)
        allClearText = try compile(templates.allClearText)
    }

    public func render(kind: DeliveryKind, event: Event, incident: Incident) -> (title: String, text: String) {
        let context = Self.context(event: event, incident: incident)
        let title: String
        let text: String
        if kind == .notice {
            title = noticeTitle.render(context)
            text = noticeText.render(context)
        } else {
            title = allClearTitle.render(context)
            text = allClearText.render(context)
        }
        // A title is one line whatever the template or the event said.
        let oneLine = title.split(whereSeparator: \.isNewline).joined(separator: " ")
        return (oneLine.trimmingWhitespace(), text.trimmingWhitespace())
    }

    static func context(event: Event, incident: Incident) -> [String: Any] {
        let resolvedAt = incident.resolvedAt ?? (event.status == .resolved ? event.occurredAt : nil)
        var c: [String: Any] = [
            "incident": event.incident,
            "status": event.status.rawValue,
            "updated": event.status == .updated,
            "resolved": event.status == .resolved,
            "severity": event.severity.rawValue,
            "severity_upper": event.severity.rawValue.uppercased(),
            "title": event.title,
            "opened_at": Self.humanTime(incident.openedAt),
            "occurred_at": Self.humanTime(event.occurredAt),
        ]
        if let message = event.message { c["message"] = message }
        if !event.components.isEmpty { c["components"] = event.components.joined(separator: ", ") }
        if let link = event.link { c["link"] = link }
        if let resolvedAt {
            c["resolved_at"] = Self.humanTime(resolvedAt)
            c["duration"] = Self.humanDuration(resolvedAt.timeIntervalSince(incident.openedAt))
        }
        for (k, v) in event.labels { c["label_\(k)"] = v }
        return c
    }

    /// `2026-11-25 10:02 UTC`: what a person reads in an outage notice.
    public static func humanTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", c.year!, c.month!, c.day!, c.hour!, c.minute!)
    }

    /// `39 min`, `2 h 5 min`, `3 d 4 h`, `45 s`. The span comes from event times clients send:
    /// held to 1e15 s (NaN counts as 0) so that no span can trap converting to Int.
    public static func humanDuration(_ seconds: TimeInterval) -> String {
        let s = Int(min(max(0, seconds), 1e15).rounded())
        if s < 60 { return "\(s) s" }
        let m = s / 60
        if m < 60 { return "\(m) min" }
        let h = m / 60
        if h < 24 { return m % 60 == 0 ? "\(h) h" : "\(h) h \(m % 60) min" }
        return h % 24 == 0 ? "\(h / 24) d" : "\(h / 24) d \(h % 24) h"
    }
}
