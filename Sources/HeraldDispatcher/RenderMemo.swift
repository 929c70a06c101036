import Foundation
import HeraldCore
import Synchronization

/// Rendered words per event, shared by the lanes: an event fanned out to ten channels is rendered
/// once, not ten times (rendering was a tenth of the delivery profile). Bounded; entries depend
/// only on immutable inputs (the event, and the incident's opening and resolution times).
final class RenderMemo: Sendable {
    private struct Key: Hashable {
        var event: String
        var kind: DeliveryKind
        var openedAt: Date
        var resolvedAt: Date?
    }
    private let renderer: MessageRenderer
    private let entries = Mutex<[Key: (title: String, text: String)]>([:])
    private let capacity: Int

    init(renderer: MessageRenderer, capacity: Int = 4096) {
        self.renderer = renderer
        self.capacity = capacity
    }

    func render(kind: DeliveryKind, event: Event, incident: Incident) -> (title: String, text: String) {
        let key = Key(event: event.id, kind: kind, openedAt: incident.openedAt, resolvedAt: incident.resolvedAt)
        if let hit = entries.withLock({ $0[key] }) { return hit }
        let rendered = renderer.render(kind: kind, event: event, incident: incident)
        entries.withLock {
            if $0.count >= capacity { $0.removeAll(keepingCapacity: true) }
            $0[key] = rendered
        }
        return rendered
    }
}
