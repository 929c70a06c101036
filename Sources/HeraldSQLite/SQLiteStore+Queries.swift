import Foundation
import GRDB
import HeraldCore
import HeraldStore

extension SQLiteStore {
    /// Every query that reads a delivery selects these first, in this order: rows are read by
    /// position (GRDB's lookup by name lower-cases the name on every access, a visible cost per
    /// claimed delivery).
    static let deliveryColumns = """
        id, event_id, incident, channel, recipient, kind, state, priority, attempts, created_at, due_at, updated_at,
        last_status, last_error, receipt, delivered_at, replays, cycle, silenced_by
        """
    /// The position of the first column after `deliveryColumns`.
    static let afterDeliveryColumns = 19

    static func delivery(from row: some ColumnValues) throws -> Delivery {
        guard let kind = row.text(5).flatMap(DeliveryKind.init(rawValue:)),
              let state = row.text(6).flatMap(DeliveryState.init(rawValue:)) else {
            throw StoreError.underlying("unreadable delivery row \(row.text(0) ?? "?")")
        }
        var d = Delivery(
            id: row.text(0) ?? "", eventId: row.text(1) ?? "", incident: row.text(2) ?? "", channel: row.text(3) ?? "",
            recipient: row.text(4), kind: kind, state: state, priority: row.integer(7) ?? 0, attempts: row.integer(8) ?? 0,
            createdAt: date(row.real(9)) ?? Date(timeIntervalSince1970: 0), dueAt: date(row.real(10)),
            updatedAt: date(row.real(11)) ?? Date(timeIntervalSince1970: 0),
            lastStatus: row.integer(12), lastError: row.text(13), receipt: row.text(14),
            deliveredAt: date(row.real(15)), replays: row.integer(16) ?? 0)
        d.cycle = row.integer(17) ?? 0
        d.silencedBy = row.text(18)
        return d
    }

    static func date(_ value: Double?) -> Date? {
        value.map(Date.init(timeIntervalSince1970:))
    }

    /// Every query that reads an incident selects these, in this order.
    static let incidentColumns = """
        key, status, cycle, title, severity, opened_at, resolved_at, updated_at, components, labels, link,
        acknowledged_at, acknowledged_by, triggers, last_seen_at
        """

    static func fetchIncident(key: String, db: Database) throws -> Incident? {
        try db.cachedStatement(sql: "SELECT \(incidentColumns) FROM incidents WHERE key = ?")
            .readRow([key], incident(from:))
    }

    /// From `SELECT incidentColumns`, by position.
    static func incident(from row: some ColumnValues) -> Incident {
        Incident(key: row.text(0) ?? "", status: row.text(1).flatMap(Incident.Status.init(rawValue:)) ?? .open,
                 cycle: row.integer(2) ?? 0, title: row.text(3) ?? "",
                 severity: row.text(4).flatMap(Severity.init(rawValue:)) ?? .major,
                 openedAt: date(row.real(5)) ?? Date(timeIntervalSince1970: 0), resolvedAt: date(row.real(6)),
                 updatedAt: date(row.real(7)) ?? Date(timeIntervalSince1970: 0),
                 components: StoredJSON.readList(row.text(8)), labels: StoredJSON.readMap(row.text(9)), link: row.text(10),
                 acknowledgedAt: date(row.real(11)), acknowledgedBy: row.text(12), triggers: row.integer(13) ?? 1,
                 lastSeenAt: date(row.real(14)))
    }

    /// WHERE clause and arguments for a filter (ANDed conditions).
    static func whereClause(_ filter: DeliveryFilter, ids: [String]? = nil) -> (String, StatementArguments) {
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let state = filter.state {
            // The state's own index, by its exact condition (a raw value, never user text):
            // deliveries_leases for in flight, deliveries_unsent for every state but delivered,
            // and deliveries_created's time order for delivered, which most rows are.
            switch state {
            case .inFlight, .delivered: conditions.append("state = '\(state.rawValue)'")
            default: conditions.append("state = '\(state.rawValue)' AND \(unsentIndexCondition)")
            }
        }
        if let channel = filter.channel {
            conditions.append("channel = ?")
            _ = arguments.append(contentsOf: [channel])
        }
        if let incident = filter.incident {
            conditions.append("incident = ?")
            _ = arguments.append(contentsOf: [incident])
        }
        if let since = filter.since {
            conditions.append("created_at >= ?")
            _ = arguments.append(contentsOf: [since.timeIntervalSince1970])
        }
        if let ids {
            conditions.append("id IN (\(databaseQuestionMarks(count: ids.count)))")
            _ = arguments.append(contentsOf: StatementArguments(ids))
        }
        return (conditions.isEmpty ? "1" : conditions.joined(separator: " AND "), arguments)
    }

    public func deliveries(_ filter: DeliveryFilter) async throws -> [Delivery] {
        try await wrap {
            try await pool.read { db in
                let (clause, arguments) = Self.whereClause(filter)
                var args = arguments
                _ = args.append(contentsOf: [max(1, filter.limit)])
                return try Row.fetchAll(db, sql: """
                    SELECT \(Self.deliveryColumns) FROM deliveries WHERE \(clause) ORDER BY created_at DESC, id DESC LIMIT ?
                    """, arguments: args).map(Self.delivery(from:))
            }
        }
    }

    public func delivery(id: String) async throws -> DeliveryDetail? {
        try await wrap {
            try await pool.read { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT \(Self.deliveryColumns) FROM deliveries WHERE id = ?",
                                                 arguments: [id]) else { return nil }
                let attempts = try Row.fetchAll(db, sql: """
                    SELECT delivery_id, number, replay, started_at, duration_ms, outcome, status, reason, error, late
                    FROM attempts WHERE delivery_id = ? ORDER BY number
                    """, arguments: [id]).map { r in
                    Attempt(deliveryId: r[0], number: r[1], replay: r[2],
                            startedAt: Self.date(r[3])!, durationMs: r[4],
                            outcome: Attempt.Outcome(rawValue: r[5]) ?? .failed, status: r[6],
                            reason: r[7], error: r[8], late: r[9])
                }
                return DeliveryDetail(delivery: try Self.delivery(from: row), attempts: attempts)
            }
        }
    }

    public func replay(ids: [String]?, filter: DeliveryFilter, dryRun: Bool, now: Date) async throws -> ReplayResult {
        var filter = filter
        filter.state = .failed
        let (clause, arguments) = Self.whereClause(filter, ids: ids)
        let t = now.timeIntervalSince1970
        @Sendable func plan(_ db: Database) throws -> (replay: [LiveDelivery], skip: [LiveDelivery]) {
            let rows = try Row.fetchAll(db, sql: """
                SELECT \(Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                WHERE \(clause) ORDER BY d.created_at, d.id
                """, arguments: arguments).compactMap(Self.liveRow)
            let replay = rows.filter { DeliveryLifecycle.replayable($0.current) }
            return (replay, rows.filter { !DeliveryLifecycle.replayable($0.current) })
        }
        @Sendable func result(_ p: (replay: [LiveDelivery], skip: [LiveDelivery])) -> ReplayResult {
            ReplayResult(count: p.replay.count, ids: p.replay.map(\.id), channels: p.replay.map(\.target.channel).uniqued(),
                         skipped: p.skip.map(\.id))
        }
        return try await wrap {
            if dryRun {
                return try await pool.read { db in result(try plan(db)) }
            }
            return try await pool.write { db in
                let p = try plan(db)
                let update = try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = 'queued', due_at = ?, budget_attempts = 0, budget_since = ?,
                        replays = replays + 1, updated_at = ?
                    WHERE id = ? AND state = 'failed'
                    """)
                for row in p.replay { try update.execute(arguments: [t, t, t, row.id]) }
                return result(p)
            }
        }
    }

    public func redirect(channel: String, to targets: [Target], dryRun: Bool, now: Date) async throws -> ReplayResult {
        let t = now.timeIntervalSince1970
        /// The channel's waiting and failed deliveries, each with what redirecting it does.
        @Sendable func plan(_ db: Database) throws -> [(row: LiveDelivery, change: DeliveryLifecycle.Transition?)] {
            try Row.fetchAll(db, sql: """
                SELECT \(Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                WHERE d.channel = ? AND d.state IN ('queued', 'retrying', 'failed', 'silenced') AND \(Self.unsentIndexCondition)
                ORDER BY d.created_at, d.id
                """, arguments: [channel]).compactMap(Self.liveRow).map { row in
                    let cycle = try Self.cycleDeliveries(incident: row.incident, cycle: row.cycle, db: db)
                    let fresh = LifecyclePlanner.fallbackTargets(targets, cycle: cycle, cycleOpen: !row.current.cycleClosed)
                    return (row, DeliveryLifecycle.redirect(row.current, newTargets: !fresh.isEmpty))
                }
        }
        return try await wrap {
            if dryRun {
                return try await pool.read { db in ReplayResult.redirect(try plan(db), targets: targets) }
            }
            return try await pool.write { db in
                let planned = try plan(db)
                for (row, change) in planned {
                    guard let change, let state = change.state else { continue }
                    try db.cachedStatement(sql: """
                        UPDATE deliveries SET state = ?, due_at = NULL, last_error = ?, updated_at = ? WHERE id = ?
                        """).execute(arguments: [state.rawValue, DeliveryLifecycle.redirectReason(targets), t, row.id])
                    try Self.apply(change.effects, of: row, fallback: targets, now: now, db: db)
                }
                return ReplayResult.redirect(planned, targets: targets)
            }
        }
    }

    public func incidents(limit: Int) async throws -> [Incident] {
        try await wrap {
            try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.incidentColumns) FROM incidents ORDER BY updated_at DESC LIMIT ?
                    """, arguments: [max(1, limit)]).map(Self.incident(from:))
            }
        }
    }

    public func incident(key: String, deliveries withDeliveries: Bool, excluding: String?) async throws -> IncidentDetail? {
        let decoder = self.decoder
        return try await wrap {
            try await pool.read { db in
                guard let incident = try Self.fetchIncident(key: key, db: db) else { return nil }
                let events = try Data.fetchAll(db, sql: """
                    SELECT body FROM events WHERE incident = ? AND cycle = ? ORDER BY received_at, id
                    """, arguments: [key, incident.cycle]).map { try decoder.decode(Event.self, from: $0) }
                // An excluded channel's rows are filtered out in the query, never decoded or answered
                // (this is not the enqueue's hot path: it scans their index entries, unlike `cycleDeliveries`).
                let deliveries = !withDeliveries ? [] : try Row.fetchAll(db, sql: """
                    SELECT \(Self.deliveryColumns) FROM deliveries
                    WHERE incident = ? AND cycle = ? AND (? IS NULL OR channel < ? OR channel > ?) ORDER BY created_at, id
                    """, arguments: [key, incident.cycle, excluding, excluding, excluding]).map(Self.delivery(from:))
                return IncidentDetail(incident: incident, events: events, deliveries: deliveries)
            }
        }
    }

    public func deliveryCounts(incident: String, cycle: Int, channel: String) async throws -> [String: Int] {
        try await wrap {
            try await pool.read { db in
                var counts: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: """
                    SELECT kind, state, COUNT(*) FROM deliveries WHERE incident = ? AND cycle = ? AND channel = ? GROUP BY kind, state
                    """, arguments: [incident, cycle, channel]) {
                    counts["\(row[0] as String):\(row[1] as String)"] = row[2]
                }
                return counts
            }
        }
    }

    public func countsByState() async throws -> [DeliveryState: Int] {
        try await wrap {
            try await pool.read { db in
                var counts: [DeliveryState: Int] = [:]
                for state in DeliveryState.allCases { counts[state] = 0 }
                for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state") {
                    if let state = DeliveryState(rawValue: row["state"]) { counts[state] = row["n"] }
                }
                return counts
            }
        }
    }
}
