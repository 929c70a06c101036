import Foundation
import GRDB
import HeraldCore
import HeraldStore

extension SQLiteStore {
    public func enqueue(_ batch: [EnqueueRequest], now: Date) async throws -> [EnqueueResult] {
        // Encode outside the write lock: the writer is the one serial resource. (An event the
        // planner fills in is encoded again inside; most are stored as received.)
        let bodies = batch.map { Data($0.event.storedJSON()) }
        let encoder = self.encoder
        let decoder = self.decoder
        return try await wrap { try await writer.write(.urgent) { db in
                let silences = try Self.silencesInForce(now: now, db: db, decoder: decoder)
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
                    let accepted = try Self.insert(request, body: body, now: now, silences: silences, db: db)
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

    /// One event through the lifecycle planner: read the incident and its open cycle, plan, store
    /// what the plan says.
    private static func insert(_ request: EnqueueRequest, body: Data, now: Date, silences: [Silence],
                               db: Database) throws -> EnqueueResult.Accepted {
        let current = try fetchIncident(key: request.event.incident, db: db)
        var cycle: [CycleDelivery] = []
        if let current, current.status == .open {
            // The subscribers' deliveries are planned page by page after the commit (`fanOut`).
            cycle = try cycleDeliveries(incident: current.key, cycle: current.cycle, excluding: request.routing.subscriberChannel,
                                        db: db)
        }
        let plan = LifecyclePlanner.plan(incident: current, cycle: cycle, event: request.event, routing: request.routing, now: now,
                                         silences: silences)
        if plan.incident != current {
            try writeIncident(plan.incident, isNew: plan.isNewIncident, db: db)
        }
        let event = plan.event
        try db.cachedStatement(sql: """
            INSERT INTO events (id, incident, cycle, status, body, received_at) VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [event.id, event.incident, plan.cycle, event.status.rawValue,
                                     event == request.event ? body : Data(event.storedJSON()),
                                     event.receivedAt.timeIntervalSince1970])
        try applyDeliveries(plan, event: event, now: now, db: db)
        let fansOut = request.routing.reachesSubscribers(cycle.map(\.target) + plan.create.map(\.target))
        if fansOut {
            try db.cachedStatement(sql: """
                INSERT INTO fanouts (event_id, cycle, before, created_at) VALUES (?, ?, ?, ?)
                """).execute(arguments: [event.id, plan.cycle, try current.map { try StoredJSON.encoder().encode($0) },
                                         now.timeIntervalSince1970])
        }
        return .init(eventId: event.id, incident: event.incident, deliveries: plan.create.count,
                     channels: plan.dueChannels,
                     transition: plan.transition.rawValue, fansOut: fansOut ? true : nil)
    }

    /// What a plan does to deliveries: supersedes, lets held notices go or holds them again, creates.
    static func applyDeliveries(_ plan: LifecyclePlan, event: Event, now: Date, db: Database) throws {
        let t = now.timeIntervalSince1970
        if !plan.supersede.isEmpty {
            let supersede = try db.cachedStatement(sql: """
                UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = ?
                WHERE id = ? AND state IN ('queued', 'retrying', 'silenced')
                """)
            for id in plan.supersede { try supersede.execute(arguments: [t, id]) }
        }
        // Silenced notices follow the incident: they carry this event now, and go out if no
        // silence holds the incident as it stands (fresh retry budget: the wait was not theirs).
        if !plan.reheld.isEmpty {
            let reheld = try db.cachedStatement(sql: """
                UPDATE deliveries SET event_id = ?, state = ?, silenced_by = COALESCE(?, silenced_by), due_at = ?,
                    budget_since = ?, budget_attempts = 0, updated_at = ?
                WHERE id = ? AND state = 'silenced'
                """)
            for r in plan.reheld {
                try reheld.execute(arguments: [event.id, r.state.rawValue, r.silencedBy, r.state == .queued ? t : nil, t, t, r.id])
            }
        }
        let insert = try db.cachedStatement(sql: """
            INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority, budget_since,
                                    created_at, due_at, updated_at, silenced_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for planned in plan.create {
            let id = Identifier.make(prefix: "dlv", at: now)
            try insert.execute(arguments: [id, event.id, event.incident, plan.cycle, planned.target.channel, planned.target.recipient,
                                           planned.kind.rawValue, planned.state.rawValue, planned.kind.priority, t, t,
                                           planned.waitsForNotice || planned.state == .silenced ? nil : t, t, planned.silencedBy])
        }
    }

    /// The deliveries of an open cycle the planner decides from: every notice, and what is not
    /// final; without the `excluding` channel's (two index ranges around it, so a subscribers
    /// channel's hundred thousand rows are not even read).
    static func cycleDeliveries(incident: String, cycle: Int, excluding: String? = nil, db: Database) throws -> [CycleDelivery] {
        let columns = "SELECT id, channel, recipient, kind, state, fallback_of, created_at, rowid AS r FROM deliveries"
        let statement = excluding == nil
            ? try db.cachedStatement(sql: "\(columns) WHERE incident = ? AND cycle = ? AND \(inCycle) ORDER BY created_at, r")
            : try db.cachedStatement(sql: """
                \(columns) WHERE incident = ? AND cycle = ? AND channel < ? AND \(inCycle)
                UNION ALL
                \(columns) WHERE incident = ? AND cycle = ? AND channel > ? AND \(inCycle)
                ORDER BY created_at, r
                """)
        let arguments: StatementArguments = excluding.map { [incident, cycle, $0, incident, cycle, $0] } ?? [incident, cycle]
        return try Row.fetchAll(statement, arguments: arguments).compactMap(cycleDelivery)
    }

    /// The deliveries of a cycle the planner decides from: every notice, and what is not final.
    static let inCycle = "(kind = 'notice' OR state IN ('queued', 'retrying', 'in_flight', 'silenced'))"

    /// A row of `id, channel, recipient, kind, state, fallback_of` as the planner sees it.
    static func cycleDelivery(_ row: Row) -> CycleDelivery? {
        guard let kind = DeliveryKind(rawValue: row[3]), let state = DeliveryState(rawValue: row[4]) else { return nil }
        return CycleDelivery(id: row[0], target: Target(channel: row[1], recipient: row[2]), kind: kind, state: state,
                             fallbackOf: row[5])
    }

    static func writeIncident(_ i: Incident, isNew: Bool, db: Database) throws {
        let arguments: StatementArguments = [
            i.status.rawValue, i.cycle, i.title, i.severity.rawValue, i.openedAt.timeIntervalSince1970,
            i.resolvedAt?.timeIntervalSince1970, i.updatedAt.timeIntervalSince1970, StoredJSON.list(i.components),
            StoredJSON.map(i.labels), i.link, i.acknowledgedAt?.timeIntervalSince1970, i.acknowledgedBy, i.triggers,
            i.lastSeenAt?.timeIntervalSince1970, i.key,
        ]
        if isNew {
            try db.cachedStatement(sql: """
                INSERT INTO incidents (status, cycle, title, severity, opened_at, resolved_at, updated_at, components, labels,
                                       link, acknowledged_at, acknowledged_by, triggers, last_seen_at, key)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: arguments)
        } else {
            try db.cachedStatement(sql: """
                UPDATE incidents SET status = ?, cycle = ?, title = ?, severity = ?, opened_at = ?, resolved_at = ?,
                    updated_at = ?, components = ?, labels = ?, link = ?, acknowledged_at = ?, acknowledged_by = ?,
                    triggers = ?, last_seen_at = ?
                WHERE key = ?
                """).execute(arguments: arguments)
        }
    }
}
