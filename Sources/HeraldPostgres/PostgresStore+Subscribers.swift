import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

/// Subscribers and the fan-out of public events to them, as `SQLiteStore` keeps them. Nodes take
/// the oldest fan-out locked, so pages are planned one at a time across the cluster, in commit order.
extension PostgresStore {
    static let subscriberColumns = "id, address, components, created_at, confirmed_at, token"

    static func subscriber(_ row: PostgresRow) throws -> Subscriber {
        let (id, address, components, created, confirmed, token) = try row.decode((String, String, String, Double, Double?, String).self)
        return Subscriber(id: id, address: address, components: StoredJSON.readList(components),
                          createdAt: Date(timeIntervalSince1970: created), confirmedAt: confirmed.map(Date.init(timeIntervalSince1970:)),
                          token: token)
    }

    public func addSubscriber(_ subscriber: Subscriber, confirmHash: String, now: Date) async throws -> SignUp {
        let t = now.timeIntervalSince1970
        let logger = self.logger
        return try await transaction { connection in
            _ = try await Self.deleteExpiredSignUps(before: t, connection, logger: logger)
            let found = try await connection.query("""
                SELECT confirmed_at FROM subscribers WHERE address = \(subscriber.address) FOR UPDATE
                """, logger: logger).collect()
            if let row = found.first {
                if try row.decode(Double?.self) != nil { return .alreadyConfirmed }
                _ = try await connection.query("DELETE FROM subscribers WHERE address = \(subscriber.address)", logger: logger).collect()
            }
            _ = try await connection.query("""
                INSERT INTO subscribers (id, address, components, token, confirm_hash, created_at, expires_at)
                VALUES (\(subscriber.id), \(subscriber.address), \(StoredJSON.list(subscriber.components)), \(subscriber.token),
                        \(confirmHash), \(t), \(t + Subscriber.confirmationLifetime))
                """, logger: logger).collect()
            return .pending(id: subscriber.id)
        }
    }

    public func confirmSubscriber(confirmHash: String, now: Date) async throws -> Subscriber? {
        let t = now.timeIntervalSince1970
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                UPDATE subscribers SET confirmed_at = \(t), confirm_hash = NULL, expires_at = NULL
                WHERE confirm_hash = \(confirmHash) AND confirmed_at IS NULL AND expires_at > \(t)
                RETURNING \(unescaped: Self.subscriberColumns)
                """, logger: logger).collect()
        }
        return try rows.first.map(Self.subscriber)
    }

    public func subscriber(id: String) async throws -> Subscriber? {
        try await confirmedSubscriber(column: "id", id)
    }

    public func subscriber(token: String) async throws -> Subscriber? {
        try await confirmedSubscriber(column: "token", token)
    }

    private func confirmedSubscriber(column: String, _ value: String) async throws -> Subscriber? {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT \(unescaped: Self.subscriberColumns) FROM subscribers
                WHERE \(unescaped: column) = \(value) AND confirmed_at IS NOT NULL
                """, logger: logger).collect()
        }
        return try rows.first.map(Self.subscriber)
    }

    public func setSubscriberComponents(id: String, components: [String]) async throws -> Subscriber? {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                UPDATE subscribers SET components = \(StoredJSON.list(components)) WHERE id = \(id) AND confirmed_at IS NOT NULL
                RETURNING \(unescaped: Self.subscriberColumns)
                """, logger: logger).collect()
        }
        return try rows.first.map(Self.subscriber)
    }

    public func removeSubscriber(id: String, now: Date) async throws -> Bool {
        let logger = self.logger
        let t = now.timeIntervalSince1970
        return try await transaction { connection in
            let gone = try await connection.query("DELETE FROM subscribers WHERE id = \(id) RETURNING 1", logger: logger).collect()
            guard !gone.isEmpty else { return false }
            _ = try await connection.query("""
                UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = \(t)
                WHERE recipient = \(id) AND state IN ('queued', 'retrying', 'silenced')
                """, logger: logger).collect()
            return true
        }
    }

    public func subscribers(pending: Bool, after: String?, limit: Int) async throws -> [Subscriber] {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT \(unescaped: Self.subscriberColumns) FROM subscribers
                WHERE (confirmed_at IS NULL) = \(pending) AND id > \(after ?? "") ORDER BY id LIMIT \(max(1, limit))
                """, logger: logger).collect()
        }
        return try rows.map(Self.subscriber)
    }

    public func subscriberCounts() async throws -> (confirmed: Int, pending: Int) {
        let logger = self.logger
        let rows = try await run { connection in
            try await connection.query("""
                SELECT count(confirmed_at)::int8, (count(*) - count(confirmed_at))::int8 FROM subscribers
                """, logger: logger).collect()
        }
        guard let row = rows.first else { return (0, 0) }
        let (confirmed, pending) = try row.decode((Int, Int).self)
        return (confirmed, pending)
    }

    public func deleteExpiredSignUps(now: Date) async throws -> Int {
        let logger = self.logger
        let t = now.timeIntervalSince1970
        return try await run { connection in try await Self.deleteExpiredSignUps(before: t, connection, logger: logger) }
    }

    /// Deletes the unconfirmed sign-ups whose link expired by `t`; answers how many.
    static func deleteExpiredSignUps(before t: Double, _ connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.query("""
            DELETE FROM subscribers WHERE confirmed_at IS NULL AND expires_at <= \(t) RETURNING 1
            """, logger: logger).collect().count
    }

    public func fanOut(channel: String, limit: Int, now: Date) async throws -> FanOutStep {
        let decoder = self.decoder
        let logger = self.logger
        let t = now.timeIntervalSince1970
        return try await transaction { connection in
            // Every node takes the oldest, locked: pages are planned one at a time, in order.
            guard let job = try await connection.query("""
                SELECT seq, event_id, cycle, before, cursor FROM fanouts ORDER BY seq LIMIT 1 FOR UPDATE
                """, logger: logger).collect().first else {
                let left = try await connection.query("SELECT EXISTS (SELECT 1 FROM fanouts)", logger: logger).collect()
                return FanOutStep(created: 0, due: false, more: try left.first?.decode(Bool.self) ?? false)
            }
            let (seq, eventId, cycleNumber, beforeJSON, storedCursor) = try job.decode((Int64, String, Int, String?, String?).self)
            let cursor = storedCursor ?? ""
            guard let body = try await connection.query("SELECT body FROM events WHERE id = \(eventId)", logger: logger)
                .collect().first?.decode(String.self) else {
                _ = try await connection.query("DELETE FROM fanouts WHERE seq = \(seq)", logger: logger).collect()
                return FanOutStep(created: 0, due: false, more: true)
            }
            let event = try decoder.decode(Event.self, from: Data(body.utf8))
            let before = try beforeJSON.map { try StoredJSON.decoder().decode(Incident.self, from: Data($0.utf8)) }
            let page = try await connection.query("""
                SELECT \(unescaped: Self.subscriberColumns) FROM subscribers
                WHERE confirmed_at IS NOT NULL AND id > \(cursor) ORDER BY id LIMIT \(limit)
                """, logger: logger).collect().map(Self.subscriber)
            var step = FanOutStep(created: 0, due: false, more: true)
            if let last = page.last {
                var cycle: [CycleDelivery] = []
                // Locked in seq order (see `cycleDeliveries`), planned in creation order.
                for row in try await connection.query("""
                    SELECT id, recipient, kind, state, fallback_of FROM (
                        SELECT id, recipient, kind, state, fallback_of, created_at, seq FROM deliveries
                        WHERE incident = \(event.incident) AND cycle = \(cycleNumber) AND channel = \(channel)
                          AND recipient > \(cursor) AND recipient <= \(last.id)
                          AND (kind = 'notice' OR state IN ('queued', 'retrying', 'in_flight', 'silenced'))
                        ORDER BY seq FOR UPDATE
                    ) AS locked ORDER BY created_at, seq
                    """, logger: logger).collect() {
                    let (id, recipient, kind, state, fallbackOf) = try row.decode((String, String?, String, String, String?).self)
                    guard let kind = DeliveryKind(rawValue: kind), let state = DeliveryState(rawValue: state) else { continue }
                    cycle.append(CycleDelivery(id: id, target: Target(channel: channel, recipient: recipient), kind: kind, state: state,
                                               fallbackOf: fallbackOf))
                }
                let silences = try await Self.silencesInForce(now: now, connection, decoder: decoder, logger: logger)
                let plan = LifecyclePlanner.subscriberPage(before: before, event: event, channel: channel, subscribers: page,
                                                           cycle: cycle, now: now, silences: silences)
                let rows = plan.create.enumerated().map { i, planned in
                    EnqueueRun.DeliveryRow(ord: i, id: Identifier.make(prefix: "dlv", at: now), event_id: event.id,
                                           incident: event.incident, cycle: plan.cycle, channel: channel,
                                           recipient: planned.target.recipient, kind: planned.kind.rawValue,
                                           state: planned.state.rawValue, priority: planned.kind.priority,
                                           due_at: planned.waitsForNotice || planned.state == .silenced ? nil : t,
                                           silenced_by: planned.silencedBy)
                }
                let reheld = plan.reheld.map {
                    EnqueueRun.ReheldRow(id: $0.id, event_id: event.id, state: $0.state.rawValue, silenced_by: $0.silencedBy)
                }
                let due = !plan.dueChannels.isEmpty
                _ = try await connection.query("""
                    WITH sup AS (
                        UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = \(t)
                        WHERE id = ANY(\(plan.supersede)::text[]) AND state IN ('queued', 'retrying', 'silenced')
                        RETURNING 1
                    ), rh AS (
                        UPDATE deliveries AS d SET event_id = r.event_id, state = r.state,
                            silenced_by = COALESCE(r.silenced_by, d.silenced_by),
                            due_at = CASE WHEN r.state = 'queued' THEN \(t)::float8 END, budget_since = \(t), budget_attempts = 0,
                            updated_at = \(t)
                        FROM jsonb_to_recordset(\(try PostgresStore.json(reheld))::jsonb)
                            AS r(id text, event_id text, state text, silenced_by text)
                        WHERE d.id = r.id AND d.state = 'silenced'
                        RETURNING 1
                    ), dl AS (
                        INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority,
                                                budget_since, created_at, due_at, updated_at, silenced_by)
                        SELECT r.id, r.event_id, r.incident, r.cycle, r.channel, r.recipient, r.kind, r.state, r.priority,
                               \(t), \(t), r.due_at, \(t), r.silenced_by
                        FROM jsonb_to_recordset(\(try PostgresStore.json(rows))::jsonb)
                            AS r(ord int, id text, event_id text, incident text, cycle int, channel text, recipient text,
                                 kind text, state text, priority int, due_at float8, silenced_by text)
                        ORDER BY r.ord
                        RETURNING 1
                    )
                    SELECT pg_notify(\(PostgresStore.workChannel), c) FROM unnest(\(due ? [channel] : [])::text[]) AS c
                    """, logger: logger).collect()
                step.created = plan.create.count
                step.due = due
            }
            if page.count < limit {
                _ = try await connection.query("DELETE FROM fanouts WHERE seq = \(seq)", logger: logger).collect()
                let left = try await connection.query("SELECT EXISTS (SELECT 1 FROM fanouts)", logger: logger).collect()
                step.more = try left.first?.decode(Bool.self) ?? false
            } else {
                _ = try await connection.query("UPDATE fanouts SET cursor = \(page.last?.id ?? "") WHERE seq = \(seq)", logger: logger).collect()
            }
            return step
        }
    }
}
