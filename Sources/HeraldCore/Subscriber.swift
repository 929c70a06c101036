import Foundation

/// A customer who signed up on the status page for the notices of public incidents (those routed
/// to a `statuspage` channel), by email. A subscriber is a recipient of the `subscribers` channel
/// (its `id` is the delivery's recipient, never the address), so receipts, retries and the
/// all-clear are per subscriber like any recipient's.
public struct Subscriber: Codable, Sendable, Equatable {
    /// `sub_…`, the recipient of the subscribers channel's deliveries.
    public var id: String
    public var address: String
    /// The components they care about; empty: all.
    public var components: [String]
    public var createdAt: Date
    /// Nil until they followed the confirmation link: an unconfirmed sign-up receives nothing.
    public var confirmedAt: Date?
    /// The secret in every message's links (change components, unsubscribe). Never logged.
    public var token: String

    public init(id: String, address: String, components: [String], createdAt: Date, confirmedAt: Date?, token: String) {
        self.id = id
        self.address = address
        self.components = components
        self.createdAt = createdAt
        self.confirmedAt = confirmedAt
        self.token = token
    }

    /// They hear of an incident that names any of their components, or no component at all (an
    /// incident about everything), or of every incident if they chose none.
    public func wants(_ incidentComponents: [String]) -> Bool {
        components.isEmpty || incidentComponents.isEmpty || incidentComponents.contains { components.contains($0) }
    }

    /// How long a confirmation link works; an unconfirmed sign-up is deleted after it.
    public static let confirmationLifetime: TimeInterval = 24 * 3600

    /// The most components one subscriber can choose.
    public static let componentLimit = 100

    enum CodingKeys: String, CodingKey {
        case id, address, components, token
        case createdAt = "created_at"
        case confirmedAt = "confirmed_at"
    }
}

/// How a sign-up went, as the store saw it. The page answers the same in every case (no one
/// learns whether an address is subscribed); only the mail differs.
public enum SignUp: Sendable, Equatable {
    /// A new or renewed unconfirmed sign-up: send the confirmation link.
    case pending(id: String)
    /// The address is already confirmed: nothing changes and no mail goes.
    case alreadyConfirmed
}

/// Where a channel finds a subscriber at delivery time (the server's store).
public protocol SubscriberDirectory: Sendable {
    func subscriber(id: String) async throws -> Subscriber?
}

/// Email addresses as Herald accepts them.
public enum EmailAddress {
    /// A plausible addr-spec: a dot-atom local part, `@`, and a domain of letter/digit/hyphen
    /// labels with at least one dot (or `localhost`). ASCII only: give IDN domains in punycode.
    public static func isPlausible(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, s.utf8.count <= 254 else { return false }
        let local = parts[0], domain = parts[1]
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
        guard !local.isEmpty, local.count <= 64, !local.hasPrefix("."), !local.hasSuffix("."), !local.contains(".."),
              local.allSatisfy({ $0 == "." || atext.contains($0) }) else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 || domain.lowercased() == "localhost" else { return false }
        let labelChars = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-") && label.allSatisfy(labelChars.contains)
        }
    }

    /// The form an address is stored and compared in: the domain lower-cased (the local part is
    /// the receiving server's business, but nearly every server ignores its case, so it is
    /// lower-cased too, which keeps one person from subscribing twice by case).
    public static func normalized(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespaces).lowercased()
    }
}

extension LifecyclePlanner {
    /// One page of a public event's subscribers, as recipients of the subscribers `channel`: the
    /// plan `plan` makes for them, from the incident as the event found it (`before`), the stored
    /// event, and their own deliveries of the cycle. A subscriber is routed when they want one of
    /// the incident's components; the planner's rules do the rest (a notice when the cycle opens,
    /// updates and the all-clear to those told, a summary to those routed but never reached, a
    /// repeat that names their component noticing them). Only the plan's deliveries are used.
    /// `cycle` may hold deliveries of others (one who unsubscribed, whose id falls in the page's
    /// range): they hear nothing more, so they are left out.
    public static func subscriberPage(before: Incident?, event: Event, channel: String, subscribers: [Subscriber],
                                      cycle: [CycleDelivery], now: Date, silences: [Silence]) -> LifecyclePlan {
        let ids = Set(subscribers.map(\.id))
        let cycle = cycle.filter { $0.target.recipient.map(ids.contains) ?? false }
        let routed = subscribers.filter { $0.wants(event.components) }.map(\.id)
        let routing = routed.isEmpty
            ? Routing(routes: [])
            : Routing(routes: [Route(channels: [channel])], recipients: [channel: routed])
        return plan(incident: before, cycle: cycle, event: event, routing: routing, now: now, silences: silences)
    }
}
