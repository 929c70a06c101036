import Foundation
import HeraldCore

/// Rendered words per event, shared by the lanes: an event fanned out to ten channels is rendered
/// once, not ten times (rendering was a tenth of the delivery profile). Bounded in entries and
/// bytes (see `BoundedCache`); entries depend
/// only on immutable inputs (the event, and the incident's opening and resolution times).
final class RenderMemo: Sendable {
    private struct Key: Hashable {
        var event: String
        var kind: DeliveryKind
        var openedAt: Date
        var resolvedAt: Date?
        var markup: TextMarkup
    }
    private struct Rendered {
        var title: String
        var text: String
    }
    private let renderer: MessageRenderer
    private let cache = BoundedCache<Key, Rendered>(cost: { 64 + $0.title.utf8.count + $0.text.utf8.count })

    init(renderer: MessageRenderer) {
        self.renderer = renderer
    }

    func render(kind: DeliveryKind, event: Event, incident: Incident, markup: TextMarkup = .plain) -> (title: String, text: String) {
        let key = Key(event: event.id, kind: kind, openedAt: incident.openedAt, resolvedAt: incident.resolvedAt, markup: markup)
        let rendered = cache.value(for: key) {
            let (title, text) = renderer.render(kind: kind, event: event, incident: incident, markup: markup)
            return Rendered(title: title, text: text)
        }!
        return (rendered.title, rendered.text)
    }
}
