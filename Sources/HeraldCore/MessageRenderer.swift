import Foundation
import Mustache

/// Renders the words people read during an outage from Mustache templates. The defaults say what
/// is affected, since when and what is known; the all-clear says the window and that service is
/// restored. Operators override any of them under `templates:`.
public struct MessageRenderer: Sendable {
    public struct Templates: Sendable, Equatable {
        public var noticeTitle: String
        public var noticeText: String
        public var updateTitle: String
        public var updateText: String
        public var allClearTitle: String
        public var allClearText: String
        public var summaryTitle: String
        public var summaryText: String
        /// Every message of a scheduled maintenance (the scheduler's events, source `maintenance`): planned
        /// work is not an outage, so no "Since" or "Down from"; its step's words say the rest.
        public var maintenanceTitle: String
        public var maintenanceText: String

        public init(noticeTitle: String = Self.defaults.noticeTitle, noticeText: String = Self.defaults.noticeText,
                    updateTitle: String = Self.defaults.updateTitle, updateText: String = Self.defaults.updateText,
                    allClearTitle: String = Self.defaults.allClearTitle, allClearText: String = Self.defaults.allClearText,
                    summaryTitle: String = Self.defaults.summaryTitle, summaryText: String = Self.defaults.summaryText,
                    maintenanceTitle: String = Self.defaults.maintenanceTitle,
                    maintenanceText: String = Self.defaults.maintenanceText) {
            self.noticeTitle = noticeTitle
            self.noticeText = noticeText
            self.updateTitle = updateTitle
            self.updateText = updateText
            self.allClearTitle = allClearTitle
            self.allClearText = allClearText
            self.summaryTitle = summaryTitle
            self.summaryText = summaryText
            self.maintenanceTitle = maintenanceTitle
            self.maintenanceText = maintenanceText
        }

        /// The first line of every text says what kind of message it is (`Update:`, `Resolved:`),
        /// so a reader of a thread sees the state without opening the message.
        public static let defaults = Templates(
            noticeTitle: "[{{severity_upper}}] {{title}}",
            noticeText: """
                {{title}}
                {{#components}}Affected: {{components}}
                {{/components}}Since: {{opened_at}}
                {{#message}}

                {{message}}
                {{/message}}
                {{#link}}

                More: {{link}}
                {{/link}}
                """,
            updateTitle: "[{{status_upper}}] {{title}}",
            updateText: """
                {{#acknowledged}}Acknowledged{{#actor}} by {{actor}}{{/actor}}: {{/acknowledged}}{{^acknowledged}}Update: {{/acknowledged}}{{title}}
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
                """,
            summaryTitle: "[RESOLVED] {{title}}",
            summaryText: """
                Resolved: {{title}}
                {{#components}}Affected: {{components}}
                {{/components}}There was an incident from {{opened_at}} to {{resolved_at}} ({{duration}}). Service is restored.
                {{#message}}

                {{message}}
                {{/message}}
                {{#link}}

                More: {{link}}
                {{/link}}
                """,
            maintenanceTitle: "[MAINTENANCE] {{title}}",
            maintenanceText: """
                Maintenance: {{title}}
                {{#message}}

                {{message}}
                {{/message}}
                {{#link}}

                More: {{link}}
                {{/link}}
                """)

        /// The `templates:` keys, each with the template it sets.
        public static var keys: [(String, WritableKeyPath<Templates, String>)] {
            [
                ("notice_title", \.noticeTitle), ("notice_text", \.noticeText),
                ("update_title", \.updateTitle), ("update_text", \.updateText),
                ("all_clear_title", \.allClearTitle), ("all_clear_text", \.allClearText),
                ("summary_title", \.summaryTitle), ("summary_text", \.summaryText),
                ("maintenance_title", \.maintenanceTitle), ("maintenance_text", \.maintenanceText),
            ]
        }
    }

    private struct Pair: Sendable {
        var title: MustacheTemplate
        var text: MustacheTemplate
    }
    private let notice: Pair
    private let update: Pair
    private let allClear: Pair
    private let summary: Pair
    private let maintenance: Pair

    /// What every template is compiled with, ahead of its own text.
    static let prefix = "{{% CONTENT_TYPE: TEXT}}"

    /// A template's syntax error as a person reads it: what is wrong, and where in the template.
    public struct TemplateError: Error, CustomStringConvertible {
        public var description: String
    }

    static func describe(_ error: any Error) -> TemplateError {
        guard let parse = error as? MustacheTemplate.ParserError else { return TemplateError(description: "\(error)") }
        let what: String
        switch parse.error as? MustacheTemplate.Error {
        case .sectionCloseNameIncorrect?: what = "a {{/name}} closes a section of another name"
        case .unfinishedName?: what = "a tag is not closed with }}"
        case .expectedSectionEnd?: what = "a section is opened with {{#name}} or {{^name}} and never closed with {{/name}}"
        case .invalidSetDelimiter?: what = "a delimiter change {{=…=}} is malformed"
        case .invalidConfigVariableSyntax?, .unrecognisedConfigVariable?: what = "a {{% … }} setting is not understood"
        default: what = "\(parse.error)"
        }
        // Positions count from the template's own text, not the prefix it is compiled with.
        let line = parse.context.lineNumber
        let column = line == 1 ? max(1, parse.context.columnNumber - prefix.count) : parse.context.columnNumber
        return TemplateError(description: "\(what) (template line \(line), column \(column))")
    }

    /// Compiles the templates once; rendering reuses them.
    public init(templates: Templates = .defaults) throws {
        func compile(_ source: String) throws -> MustacheTemplate {
            do {
                return try MustacheTemplate(string: Self.prefix + source)
            } catch {
                throw Self.describe(error)
            }
        }
        notice = Pair(title: try compile(templates.noticeTitle), text: try compile(templates.noticeText))
        update = Pair(title: try compile(templates.updateTitle), text: try compile(templates.updateText))
        allClear = Pair(title: try compile(templates.allClearTitle), text: try compile(templates.allClearText))
        summary = Pair(title: try compile(templates.summaryTitle), text: try compile(templates.summaryText))
        maintenance = Pair(title: try compile(templates.maintenanceTitle), text: try compile(templates.maintenanceText))
    }

    /// The title and text of one delivery. Every value that comes from the event is escaped for
    /// `markup` (the channel's); the templates' own words are not.
    public func render(kind: DeliveryKind, event: Event, incident: Incident, markup: TextMarkup = .plain) -> (title: String, text: String) {
        let context = Self.context(event: event, incident: incident, markup: markup)
        let pair: Pair
        switch kind {
        case _ where event.source == Maintenance.source: pair = maintenance
        case .notice: pair = notice
        case .update: pair = update
        case .allClear: pair = allClear
        case .summary: pair = summary
        }
        let title = pair.title.render(context)
        let text = pair.text.render(context)
        // A title is one line whatever the template or the event said.
        let oneLine = title.split(whereSeparator: \.isNewline).joined(separator: " ")
        return (oneLine.trimmingWhitespace(), text.trimmingWhitespace())
    }

    static func context(event: Event, incident: Incident, markup: TextMarkup = .plain) -> [String: Any] {
        let resolvedAt = incident.resolvedAt ?? (event.status == .resolved ? event.occurredAt : nil)
        let e = markup.escape
        var c: [String: Any] = [
            "incident": e(event.incident),
            "status": event.status.rawValue,
            "status_upper": event.status.rawValue.uppercased(),
            "updated": event.status == .updated,
            "acknowledged": event.status == .acknowledged,
            "resolved": event.status == .resolved,
            "severity": event.severity.rawValue,
            "severity_upper": event.severity.rawValue.uppercased(),
            "title": e(event.title),
            "opened_at": Self.humanTime(incident.openedAt),
            "occurred_at": Self.humanTime(event.occurredAt),
        ]
        if let message = event.message { c["message"] = e(message) }
        if !event.components.isEmpty { c["components"] = e(event.components.joined(separator: ", ")) }
        if let link = event.link { c["link"] = markup.escapeLink(link) }
        if let actor = event.actor { c["actor"] = e(actor) }
        if let resolvedAt {
            c["resolved_at"] = Self.humanTime(resolvedAt)
            c["duration"] = Self.humanDuration(resolvedAt.timeIntervalSince(incident.openedAt))
        }
        for (k, v) in event.labels { c["label_\(k)"] = e(v) }
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
