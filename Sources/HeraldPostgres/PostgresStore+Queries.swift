import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

extension PostgresStore {
    static let deliveryColumnNames = [
        "id", "event_id", "incident", "channel", "recipient", "kind", "state", "priority", "attempts", "created_at", "due_at",
        "updated_at", "last_status", "last_error", "receipt", "delivered_at", "replays", "cycle", "silenced_by",
    ]

    /// The columns `delivery(from:)` reads, optionally qualified by a table alias.
    static func deliveryColumns(_ alias: String? = nil) -> String {
        deliveryColumnNames.map { (alias.map { "\($0)." } ?? "") + $0 }.joined(separator: ", ")
    }

    static func delivery(from r: PostgresRandomAccessRow) throws -> Delivery {
        let id = try r["id"].decode(String.self)
        guard let kind = DeliveryKind(rawValue: try r["kind"].decode(String.self)),
              let state = DeliveryState(rawValue: try r["state"].decode(String.self)) else {
            throw StoreError.underlying("unreadable delivery row \(id)")
        }
        return Delivery(
            id: id, eventId: try r["event_id"].decode(String.self), incident: try r["incident"].decode(String.self),
            cycle: try r["cycle"].decode(Int.self),
            channel: try r["channel"].decode(String.self), recipient: try r["recipient"].decode(String?.self),
            kind: kind, state: state, priority: try r["priority"].decode(Int.self), attempts: try r["attempts"].decode(Int.self),
            createdAt: date(try r["created_at"].decode(Double.self)), dueAt: try r["due_at"].decode(Double?.self).map(date),
            updatedAt: date(try r["updated_at"].decode(Double.self)), lastStatus: try r["last_status"].decode(Int?.self),
            lastError: try r["last_error"].decode(String?.self), receipt: try r["receipt"].decode(String?.self),
            deliveredAt: try r["delivered_at"].decode(Double?.self).map(date), replays: try r["replays"].decode(Int.self),
            silencedBy: try r["silenced_by"].decode(String?.self))
    }

    static func date(_ value: Double) -> Date {
        Date(timeIntervalSince1970: value)
    }

    static let incidentColumnNames = [
        "key", "status", "cycle", "title", "severity", "opened_at", "resolved_at", "updated_at", "components", "labels", "link",
        "acknowledged_at", "acknowledged_by", "triggers", "last_seen_at",
    ]

    /// The incident's columns, each optionally qualified by `alias` and renamed with `prefix`.
    static func incidentColumns(_ alias: String? = nil, as prefix: String = "") -> String {
        incidentColumnNames.map { (alias.map { "\($0)." } ?? "") + $0 + (prefix.isEmpty ? "" : " AS \(prefix)\($0)") }
            .joined(separator: ", ")
    }

    static var incidentColumnList: String { incidentColumns() }

    /// An incident from `incidentColumns(_:as: prefix)`.
    static func incident(from r: PostgresRandomAccessRow, prefix: String = "") throws -> Incident {
        func c(_ name: String) -> PostgresCell { r[prefix + name] }
        return Incident(
            key: try c("key").decode(String.self),
            status: Incident.Status(rawValue: try c("status").decode(String.self)) ?? .open,
            cycle: try c("cycle").decode(Int.self), title: try c("title").decode(String.self),
            severity: Severity(rawValue: try c("severity").decode(String.self)) ?? .major,
            openedAt: date(try c("opened_at").decode(Double.self)), resolvedAt: try c("resolved_at").decode(Double?.self).map(date),
            updatedAt: date(try c("updated_at").decode(Double.self)),
            components: StoredJSON.readList(try c("components").decode(String.self)),
            labels: StoredJSON.readMap(try c("labels").decode(String.self)), link: try c("link").decode(String?.self),
            acknowledgedAt: try c("acknowledged_at").decode(Double?.self).map(date),
            acknowledgedBy: try c("acknowledged_by").decode(String?.self), triggers: try c("triggers").decode(Int.self),
            lastSeenAt: try c("last_seen_at").decode(Double?.self).map(date))
    }

    static func incident(from row: PostgresRow) throws -> Incident {
        try incident(from: row.makeRandomAccess())
    }

    /// What `liveDelivery(_:)` reads, from `deliveries AS d LEFT JOIN incidents AS i`.
    static let liveColumns = """
        d.id, d.state, d.kind, d.lease_token, d.budget_attempts, d.incident, d.cycle, d.channel, d.recipient, d.event_id,
        COALESCE(i.status = 'resolved' OR i.cycle > d.cycle, false)
        """

    static func liveDelivery(_ row: PostgresRow) throws -> LiveDelivery? {
        let (id, state, kind, lease, attempts, incident, cycle, channel, recipient, eventId, closed) =
            try row.decode((String, String, String, String?, Int, String, Int, String, String?, String, Bool).self)
        guard let state = DeliveryState(rawValue: state), let kind = DeliveryKind(rawValue: kind) else { return nil }
        return LiveDelivery(id: id, current: .init(state: state, kind: kind, lease: lease, cycleClosed: closed, attempts: attempts),
                            incident: incident, cycle: cycle, target: Target(channel: channel, recipient: recipient), eventId: eventId)
    }

    /// Locks the incidents of these deliveries, in key order — the order every writer that
    /// decides by an incident's state takes them (enqueue first of all), so a resolve and an
    /// outcome, release or replay of one of its deliveries never cross.
    static func lockIncidents(ofDeliveries ids: [String], _ connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query("""
            SELECT key FROM incidents WHERE key IN (SELECT incident FROM deliveries WHERE id = ANY(\(ids)::text[]))
            ORDER BY key FOR UPDATE
            """, logger: logger).collect()
    }

    /// Several reads that must agree with each other: one snapshot.
    func snapshot<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await withConnection { connection in
            try await Self.inTransaction(connection, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger, body)
        }
    }

    public func deliveries(_ filter: DeliveryFilter) async throws -> [Delivery] {
        let logger = self.logger
        var binds = Self.filterBindings(filter, ids: nil)
        binds.append(max(1, filter.limit))
        let query = PostgresQuery(unsafeSQL: """
            SELECT \(Self.deliveryColumns()) FROM deliveries WHERE \(Self.filterClause)
            ORDER BY created_at DESC, id DESC LIMIT $6
            """, binds: binds)
        let rows = try await run { connection in
            try await connection.query(query, logger: logger).collect()
        }
        return try rows.map { try Self.delivery(from: $0.makeRandomAccess()) }
    }

    /// $1…$5 for `filterClause`.
    static func filterBindings(_ filter: DeliveryFilter, ids: [String]?) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(filter.state?.rawValue)
        binds.append(filter.channel)
        binds.append(filter.incident)
        binds.append(filter.since?.timeIntervalSince1970)
        binds.append(ids)
        return binds
    }

    /// The filter's conditions, NULL-guarded so one statement serves every filter (the server plans
    /// each execution with the actual values, so the guards cost nothing).
    static let filterClause = """
        ($1::text IS NULL OR state = $1::text) AND ($2::text IS NULL OR channel = $2::text)
        AND ($3::text IS NULL OR incident = $3::text) AND ($4::float8 IS NULL OR created_at >= $4::float8)
        AND ($5::text[] IS NULL OR id = ANY($5::text[]))
        """

    public func delivery(id: String) async throws -> DeliveryDetail? {
        let logger = self.logger
        return try await snapshot { connection in
            guard let row = try await connection.query("""
                SELECT \(unescaped: Self.deliveryColumns()) FROM deliveries WHERE id = \(id)
                """, logger: logger).collect().first else { return nil }
            let attempts = try await connection.query("""
                SELECT delivery_id, number, replay, started_at, duration_ms, outcome, status, reason, error, late
                FROM attempts WHERE delivery_id = \(id) ORDER BY number
                """, logger: logger).collect().map { r in
                let (deliveryId, number, replay, started, duration, outcome, status, reason, error, late) =
                    try r.decode((String, Int, Int, Double, Double, String, Int?, String?, String?, Bool).self)
                return Attempt(deliveryId: deliveryId, number: number, replay: replay, startedAt: Self.date(started),
                               durationMs: duration, outcome: Attempt.Outcome(rawValue: outcome) ?? .failed, status: status,
                               reason: reason, error: error, late: late)
            }
            return DeliveryDetail(delivery: try Self.delivery(from: row.makeRandomAccess()), attempts: attempts)
        }
    }

    /// Failed deliveries the lifecycle allows (a notice or update of a cycle that is over is
    /// skipped), with their incidents locked first, as every writer takes them.
    public func replay(ids: [String]?, filter: DeliveryFilter, dryRun: Bool, now: Date) async throws -> ReplayResult {
        var filter = filter
        filter.state = .failed
        let t = now.timeIntervalSince1970
        let logger = self.logger
        let binds = Self.filterBindings(filter, ids: ids)
        let select = PostgresQuery(unsafeSQL: """
            SELECT \(Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
            WHERE \(Self.filterClause) ORDER BY d.seq
            """, binds: binds)
        @Sendable func result(_ rows: [LiveDelivery]) -> ReplayResult {
            let replay = rows.filter { DeliveryLifecycle.replayable($0.current) }
            return ReplayResult(count: replay.count, ids: replay.map(\.id), channels: replay.map(\.target.channel).uniqued(),
                                skipped: rows.filter { !DeliveryLifecycle.replayable($0.current) }.map(\.id))
        }
        if dryRun {
            let rows = try await run { connection in try await connection.query(select, logger: logger).collect() }
            return result(try rows.compactMap(Self.liveDelivery))
        }
        let workChannel = Self.workChannel
        return try await transaction { connection in
            let candidates = try await connection.query(PostgresQuery(unsafeSQL: "SELECT id FROM deliveries WHERE \(Self.filterClause)",
                                                                      binds: binds), logger: logger).collect()
                .map { try $0.decode(String.self) }
            guard !candidates.isEmpty else { return ReplayResult(count: 0, ids: [], channels: []) }
            try await Self.lockIncidents(ofDeliveries: candidates, connection, logger: logger)
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                WHERE d.id = ANY(\(candidates)::text[]) AND d.state = 'failed' ORDER BY d.seq FOR UPDATE OF d
                """, logger: logger).collect().compactMap(Self.liveDelivery)
            let answer = result(rows)
            if !answer.ids.isEmpty {
                _ = try await connection.query("""
                    WITH u AS (
                        UPDATE deliveries SET state = 'queued', due_at = \(t), budget_attempts = 0, budget_since = \(t),
                            replays = replays + 1, updated_at = \(t)
                        WHERE id = ANY(\(answer.ids)::text[]) AND state = 'failed'
                        RETURNING channel
                    )
                    SELECT pg_notify(\(workChannel), c) FROM (SELECT DISTINCT channel AS c FROM u) AS n
                    """, logger: logger).collect()
            }
            return answer
        }
    }

    public func redirect(channel: String, to targets: [Target], dryRun: Bool, now: Date) async throws -> ReplayResult {
        let t = now.timeIntervalSince1970
        let logger = self.logger
        let reason = DeliveryLifecycle.redirectReason(targets)
        /// Each row with what redirecting it does, given its cycle's deliveries.
        @Sendable func plan(_ rows: [LiveDelivery], _ connection: PostgresConnection)
            async throws -> [(row: LiveDelivery, change: DeliveryLifecycle.Transition?)] {
            let cycles = try await Self.cycleDeliveries(rows.map { ($0.incident, $0.cycle) }, connection, lock: false, logger: logger)
            return rows.map { row in
                let fresh = LifecyclePlanner.fallbackTargets(targets, cycle: cycles[row.incident] ?? [], cycleOpen: !row.current.cycleClosed)
                return (row, DeliveryLifecycle.redirect(row.current, newTargets: !fresh.isEmpty))
            }
        }
        if dryRun {
            return try await run { connection in
                let rows = try await connection.query("""
                    SELECT \(unescaped: Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                    WHERE d.channel = \(channel) AND d.state IN ('queued', 'retrying', 'failed', 'silenced') ORDER BY d.seq
                    """, logger: logger).collect().compactMap(Self.liveDelivery)
                return ReplayResult.redirect(try await plan(rows, connection), targets: targets)
            }
        }
        return try await transaction { connection in
            let candidates = try await connection.query("""
                SELECT id FROM deliveries WHERE channel = \(channel) AND state IN ('queued', 'retrying', 'failed', 'silenced')
                """, logger: logger).collect().map { try $0.decode(String.self) }
            guard !candidates.isEmpty else { return ReplayResult(count: 0, ids: [], channels: []) }
            // Incidents first, as every writer takes them; then the rows as they are now.
            try await Self.lockIncidents(ofDeliveries: candidates, connection, logger: logger)
            let live = try await connection.query("""
                SELECT \(unescaped: Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                WHERE d.id = ANY(\(candidates)::text[]) AND d.state IN ('queued', 'retrying', 'failed', 'silenced') ORDER BY d.seq FOR UPDATE OF d
                """, logger: logger).collect().compactMap(Self.liveDelivery)
            let planned = try await plan(live, connection)
            for (row, change) in planned {
                guard let change, let state = change.state else { continue }
                _ = try await connection.query("""
                    UPDATE deliveries SET state = \(state.rawValue), due_at = NULL, last_error = \(reason), updated_at = \(t)
                    WHERE id = \(row.id)
                    """, logger: logger).collect()
                try await Self.apply(change.effects, of: row, fallback: targets, now: now, connection, logger: logger)
            }
            return ReplayResult.redirect(planned, targets: targets)
        }
    }

    public func incidents(limit: Int) async throws -> [Incident] {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT \(unescaped: Self.incidentColumnList) FROM incidents ORDER BY updated_at DESC LIMIT \(max(1, limit))
                """, logger: logger).collect()
        }
        return try rows.map(Self.incident(from:))
    }

    public func incident(key: String, deliveries withDeliveries: Bool, excluding: String?) async throws -> IncidentDetail? {
        let decoder = self.decoder
        let logger = self.logger
        return try await snapshot { connection in
            guard let row = try await connection.query("""
                SELECT \(unescaped: Self.incidentColumnList) FROM incidents WHERE key = \(key)
                """, logger: logger).collect().first else { return nil }
            let incident = try Self.incident(from: row)
            let events = try await connection.query("""
                SELECT body FROM events WHERE incident = \(key) AND cycle = \(incident.cycle) ORDER BY received_at, id
                """, logger: logger).collect().map { try decoder.decode(Event.self, from: Data(try $0.decode(String.self).utf8)) }
            let deliveries = !withDeliveries ? [] : try await connection.query("""
                SELECT \(unescaped: Self.deliveryColumns()) FROM deliveries WHERE incident = \(key) AND cycle = \(incident.cycle)
                  AND (\(excluding)::text IS NULL OR channel < \(excluding)::text OR channel > \(excluding)::text)
                ORDER BY created_at, id
                """, logger: logger).collect().map { try Self.delivery(from: $0.makeRandomAccess()) }
            return IncidentDetail(incident: incident, events: events, deliveries: deliveries)
        }
    }

    public func deliveryCounts(incident: String, cycle: Int, channel: String) async throws -> [String: Int] {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT kind, state, COUNT(*)::int8 FROM deliveries
                WHERE incident = \(incident) AND cycle = \(cycle) AND channel = \(channel) GROUP BY kind, state
                """, logger: logger).collect()
        }
        var counts: [String: Int] = [:]
        for row in rows {
            let (kind, state, n) = try row.decode((String, String, Int).self)
            counts["\(kind):\(state)"] = n
        }
        return counts
    }

    public func countsByState() async throws -> [DeliveryState: Int] {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("SELECT state, COUNT(*)::int8 FROM deliveries GROUP BY state", logger: logger).collect()
        }
        var counts: [DeliveryState: Int] = [:]
        for state in DeliveryState.allCases { counts[state] = 0 }
        for row in rows {
            let (state, n) = try row.decode((String, Int).self)
            if let state = DeliveryState(rawValue: state) { counts[state] = n }
        }
        return counts
    }

    public func publishStatus(_ post: StatusPost) async throws {
        let body = String(decoding: try encoder.encode(post), as: UTF8.self)
        let logger = self.logger
        _ = try await run { connection in
            try await connection.query("""
                INSERT INTO status_posts (id, posted_at, body) VALUES (\(post.id), \(post.postedAt.timeIntervalSince1970), \(body))
                ON CONFLICT (id) DO UPDATE SET posted_at = EXCLUDED.posted_at, body = EXCLUDED.body
                """, logger: logger).collect()
        }
    }

    public func statusPosts(limit: Int) async throws -> [StatusPost] {
        let decoder = self.decoder
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT body FROM status_posts ORDER BY posted_at DESC, id DESC LIMIT \(max(1, limit))
                """, logger: logger).collect()
        }
        return try rows.map { try decoder.decode(StatusPost.self, from: Data(try $0.decode(String.self).utf8)) }
    }
}

