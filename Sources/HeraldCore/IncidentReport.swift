import Foundation

/// Per channel recipient of one incident cycle: when the notice and the all-clear were delivered
/// (or why not), and how long the all-clear took from the resolve's arrival.
public struct IncidentReport: Codable, Sendable, Equatable {
    public struct Leg: Codable, Sendable, Equatable {
        public var deliveryId: String
        public var kind: DeliveryKind
        public var state: DeliveryState
        public var deliveredAt: Date?
        public var error: String?
        /// The silence that holds (or held) this notice, and when it ends (or ended).
        public var silencedBy: String?
        public var silencedUntil: Date?

        enum CodingKeys: String, CodingKey {
            case kind, state, error
            case deliveryId = "delivery_id"
            case deliveredAt = "delivered_at"
            case silencedBy = "silenced_by"
            case silencedUntil = "silenced_until"
        }
    }

    public struct Row: Codable, Sendable, Equatable {
        public var channel: String
        public var recipient: String?
        /// The first notice of the cycle to this recipient.
        public var notice: Leg?
        /// Updates delivered to this recipient (acknowledgements included).
        public var updates: Int
        /// The all-clear or the summary.
        public var allClear: Leg?
        /// From the resolve's arrival to the all-clear's delivery, in milliseconds.
        public var allClearDelayMs: Double?

        public init(channel: String, recipient: String?, notice: Leg? = nil, updates: Int = 0, allClear: Leg? = nil,
                    allClearDelayMs: Double? = nil) {
            self.channel = channel
            self.recipient = recipient
            self.notice = notice
            self.updates = updates
            self.allClear = allClear
            self.allClearDelayMs = allClearDelayMs
        }

        enum CodingKeys: String, CodingKey {
            case channel, recipient, notice, updates
            case allClear = "all_clear"
            case allClearDelayMs = "all_clear_delay_ms"
        }
    }

    public var rows: [Row]

    /// - Parameter silenceEnds: when the silences named by the deliveries end, by id.
    public init(events: [Event], deliveries: [Delivery], silenceEnds: [String: Date] = [:]) {
        let resolvedAt = events.first { $0.status == .resolved }?.receivedAt
        var rows: [Row] = []
        func index(_ d: Delivery) -> Int {
            if let i = rows.firstIndex(where: { $0.channel == d.channel && $0.recipient == d.recipient }) { return i }
            rows.append(Row(channel: d.channel, recipient: d.recipient))
            return rows.count - 1
        }
        for d in deliveries {
            let leg = Leg(deliveryId: d.id, kind: d.kind, state: d.state, deliveredAt: d.deliveredAt,
                          error: d.state == .delivered ? nil : d.lastError, silencedBy: d.silencedBy,
                          silencedUntil: d.silencedBy.flatMap { silenceEnds[$0] })
            let i = index(d)
            if d.kind == .notice {
                // The first notice delivered counts; else the first one at all.
                if rows[i].notice == nil || (rows[i].notice?.state != .delivered && d.state == .delivered) { rows[i].notice = leg }
            } else if d.kind == .update {
                if d.state == .delivered { rows[i].updates += 1 }
            } else if rows[i].allClear == nil {
                rows[i].allClear = leg
                if let at = d.deliveredAt, let resolvedAt { rows[i].allClearDelayMs = (at.timeIntervalSince(resolvedAt) * 1000).rounded() }
            }
        }
        self.rows = rows
    }
}
