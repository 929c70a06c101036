import Foundation
import HeraldCore

/// Where the `statuspage` channel publishes: Herald's own store, behind `/status`,
/// `/status/feed.atom` and `/status.json`.
public protocol StatusBoard: Sendable {
    func publish(_ post: StatusPost) async throws
}

/// `type: statuspage` — publishes incident notices and all-clears to Herald's public status page
/// and Atom feed. Only events routed here are public; nothing else of Herald is exposed there.
/// No keys of its own. The receipt reference is the delivery id (the feed entry's id).
public struct StatusPageChannel: Channel {
    public let name: String
    public let type = "statuspage"
    let board: (any StatusBoard)?

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        StatusPageChannel(name: settings.channel, board: context.statusBoard)
    }

    public var redactedDescription: String { "statuspage (/status, /status/feed.atom, /status.json)" }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        guard let board else {
            throw DeliveryError.permanent(.configuration, "the status page is only available inside herald serve")
        }
        let e = message.event
        var post = StatusPost(id: message.deliveryId, incident: e.incident, kind: message.kind, status: e.status, severity: e.severity,
                              title: message.incident.title, message: e.message, components: e.components, link: e.link,
                              openedAt: message.incident.openedAt, resolvedAt: message.incident.resolvedAt, postedAt: Date())
        if e.labels[Maintenance.breakthroughLabel] == "true" { post.breakthrough = true }
        if e.source == Maintenance.source { post.maintenance = true }
        do {
            try await board.publish(post)
        } catch {
            throw DeliveryError.transient(.other, "cannot store the status post: \(error)")
        }
        return Receipt(reference: message.deliveryId, status: nil)
    }
}
