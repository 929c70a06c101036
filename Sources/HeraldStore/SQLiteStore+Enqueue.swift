import Foundation
import GRDB
import HeraldCore

extension SQLiteStore {
    public func enqueue(_ batch: [EnqueueRequest], now: Date) async throws -> [EnqueueResult] {
        // Encode outside the write lock: the writer is the one serial resource.
        let bodies = batch.map { Data($0.event.storedJSON()) }
        let encoder = self.encoder
        let decoder = self.decoder
        return try await wrap {
            try await pool.write { db in
                var results: [EnqueueResult] = []
                results.reserveCapacity(batch.count)
                for (request, body) in zip(batch, bodies) {
                    if let idem = request.idempotency,
                       let row = try Row.fetchOne(db.cachedStatement(
                            sql: "SELECT body_hash, response FROM idempotency WHERE scope = ? AND key = ?"),
                            arguments: [idem.scope, idem.key]) {
                        let hash: String = row["body_hash"]
                        if hash == idem.bodyHash {
                            var first = try decoder.decode(EnqueueResult.Accepted.self, from: row["response"] as Data)
                            first.channels = []
                            results.append(.repeated(first))
                        } else {
                            results.append(.conflict)
                        }
                        continue
                    }
                    let accepted = try Self.insert(request, body: body, now: now, db: db)
                    if let idem = request.idempotency {
                        try db.cachedStatement(sql: """
                            INSERT INTO idempotency (scope, key, body_hash, response, created_at) VALUES (?, ?, ?, ?, ?)
                            """).execute(arguments: [idem.scope, idem.key, idem.bodyHash, try encoder.encode(accepted), now.timeIntervalSince1970])
                    }
                    results.append(.accepted(accepted))
                }
                return results
            }
        }
    }

    private static func insert(_ request: EnqueueRequest, body: Data, now: Date, db: Database) throws -> EnqueueResult.Accepted {
        let event = request.event
        let (cycle, transition) = try upsertIncident(for: event, now: now, db: db)
        try db.cachedStatement(sql: """
            INSERT INTO events (id, incident, cycle, status, body, received_at) VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [event.id, event.incident, cycle, event.status.rawValue, body,
                                     event.receivedAt.timeIntervalSince1970])
        let insert = try db.cachedStatement(sql: """
            INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority, budget_since,
                                    created_at, due_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)
            """)
        let t = now.timeIntervalSince1970
        var created: [(Target, DeliveryKind)] = []
        let routed = request.channels.flatMap { channel in
            (request.recipients[channel].map { $0.map(Optional.some) } ?? [nil]).map { Target(channel: channel, recipient: $0) }
        }
        switch transition {
        case .alreadyResolved:
            // A repeated resolve of the same cycle: everything was done by the first one.
            break
        case .resolvedNow:
            created = try allClearPlan(incident: event.incident, cycle: cycle, routed: routed, now: now, db: db)
        case .opened, .continued, .createdResolved:
            let kind = DeliveryKind(for: event.status)
            created = routed.map { ($0, kind) }
        }
        for (target, kind) in created {
            let id = Identifier.make(prefix: "dlv", at: now)
            try insert.execute(arguments: [id, event.id, event.incident, cycle, target.channel, target.recipient, kind.rawValue,
                                           kind.priority, t, t, t, t])
        }
        return .init(eventId: event.id, incident: event.incident, deliveries: created.count,
                     channels: created.map(\.0.channel).uniqued())
    }

    struct Target: Hashable {
        var channel: String
        var recipient: String?
    }

    /// The all-clear is driven by receipts, not by the routes' current lists: every recipient that
    /// was told (its notice delivered, or in flight now) gets an all-clear threaded onto its notice;
    /// notices still waiting are superseded and their recipients get one combined summary instead,
    /// as does a recipient whose notice failed. Routed channels that had no notice in this cycle
    /// (always-notify channels such as a status page) get a plain all-clear.
    private static func allClearPlan(incident: String, cycle: Int, routed: [Target], now: Date, db: Database) throws -> [(Target, DeliveryKind)] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT id, channel, recipient, state, fallback_of FROM deliveries
            WHERE incident = ? AND cycle = ? AND kind = 'notice' ORDER BY created_at, rowid
            """), arguments: [incident, cycle])
        // A recipient whose notice failed but went out through a fallback channel was told there:
        // the all-clear follows it there, and no summary goes to the channel that failed.
        let replaced = Set(rows.compactMap { $0["fallback_of"] as String? })
        var handedOver: Set<Target> = []
        var order: [Target] = []
        var told: Set<Target> = []
        for row in rows {
            if replaced.contains(row["id"] as String) {
                handedOver.insert(Target(channel: row["channel"], recipient: row["recipient"]))
            }
            let target = Target(channel: row["channel"], recipient: row["recipient"])
            if !order.contains(target) { order.append(target) }
            let state: String = row["state"]
            if state == DeliveryState.delivered.rawValue || state == DeliveryState.inFlight.rawValue { told.insert(target) }
        }
        try db.cachedStatement(sql: """
            UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = ?
            WHERE incident = ? AND cycle = ? AND kind = 'notice' AND state IN ('queued', 'retrying')
            """).execute(arguments: [now.timeIntervalSince1970, incident, cycle])
        var plan = order.filter { told.contains($0) || !handedOver.contains($0) }
            .map { ($0, told.contains($0) ? DeliveryKind.allClear : .summary) }
        for target in routed where !order.contains(target) {
            plan.append((target, .allClear))
        }
        return plan
    }

    enum Transition {
        /// A new incident, or a new cycle of a resolved one.
        case opened
        /// Another event of an open cycle.
        case continued
        /// This event resolved an open cycle.
        case resolvedNow
        /// A resolve for a cycle already resolved.
        case alreadyResolved
        /// The first word about this incident is that it is resolved.
        case createdResolved
    }

    /// Moves the incident along its lifecycle and answers the cycle the event belongs to.
    /// A trigger after a resolve opens a new cycle of the same key.
    private static func upsertIncident(for event: Event, now: Date, db: Database) throws -> (Int, Transition) {
        let t = now.timeIntervalSince1970
        let occurred = event.occurredAt.timeIntervalSince1970
        let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT status, cycle FROM incidents WHERE key = ?"),
                                   arguments: [event.incident])
        guard let row else {
            let resolved = event.status == .resolved
            try db.cachedStatement(sql: """
                INSERT INTO incidents (key, status, cycle, title, severity, opened_at, resolved_at, updated_at)
                VALUES (?, ?, 1, ?, ?, ?, ?, ?)
                """).execute(arguments: [event.incident, resolved ? "resolved" : "open", event.title,
                                         event.severity.rawValue, occurred, resolved ? occurred : nil, t])
            return (1, resolved ? .createdResolved : .opened)
        }
        let status: String = row["status"]
        let cycle: Int = row["cycle"]
        switch (status, event.status) {
        case ("resolved", .triggered), ("resolved", .updated):
            try db.cachedStatement(sql: """
                UPDATE incidents SET status = 'open', cycle = cycle + 1, title = ?, severity = ?, opened_at = ?,
                                     resolved_at = NULL, updated_at = ? WHERE key = ?
                """).execute(arguments: [event.title, event.severity.rawValue, occurred, t, event.incident])
            return (cycle + 1, .opened)
        case ("resolved", .resolved):
            // A repeated resolve of the same cycle changes nothing.
            return (cycle, .alreadyResolved)
        case (_, .resolved):
            try db.cachedStatement(sql: """
                UPDATE incidents SET status = 'resolved', resolved_at = ?, updated_at = ? WHERE key = ?
                """).execute(arguments: [occurred, t, event.incident])
            return (cycle, .resolvedNow)
        default:
            try db.cachedStatement(sql: """
                UPDATE incidents SET title = ?, severity = ?, updated_at = ? WHERE key = ?
                """).execute(arguments: [event.title, event.severity.rawValue, t, event.incident])
            return (cycle, .continued)
        }
    }
}
