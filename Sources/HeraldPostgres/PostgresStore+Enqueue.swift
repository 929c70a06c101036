import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

/// Enqueue: the whole batch in one transaction and a handful of round trips, whatever its size.
///
/// 1. `idempotency`: one upsert of every key in the batch (sorted), which locks them and answers
///    which were already there (a repeat or a conflict) and which this batch now owns.
/// 2. `incidents`: one upsert of every incident the batch touches (sorted by key: nodes lock in
///    the same order, so concurrent batches wait for each other instead of deadlocking), which
///    locks the rows and answers their current state.
/// 3. Only when a resolve closes a cycle that is in the database: its notices, locked.
/// 4. The incident lifecycle and the all-clear plan run in memory, event after event, exactly as
///    `SQLiteStore` runs them row by row.
/// 5. One statement writes it all (events, deliveries, superseded notices, incidents, idempotency
///    answers) and `pg_notify`s each channel that got work, delivered at commit.
extension PostgresStore {
    public func enqueue(_ batch: [EnqueueRequest], now: Date) async throws -> [EnqueueResult] {
        guard !batch.isEmpty else { return [] }
        let encoder = self.encoder
        let bodies = batch.map { String(decoding: $0.event.storedJSON(), as: UTF8.self) }
        let decoder = self.decoder
        let logger = self.logger
        return try await transaction(timeout: Self.hotPathTimeout) { connection in
            var run = EnqueueRun(batch: batch, bodies: bodies, now: now, encoder: encoder, decoder: decoder)
            return try await run.execute(connection, logger: logger)
        }
    }

    /// After a notice failed for good: a new notice of the same event through `channel`, one per
    /// recipient, unless that fallback exists already.
    public func enqueueFallback(of deliveryId: String, channel: String, recipients: [String], now: Date) async throws -> Int {
        let t = now.timeIntervalSince1970
        let targets: [FallbackRow] = (recipients.isEmpty ? [nil] : recipients.uniqued().map(Optional.some))
            .enumerated().map { FallbackRow(ord: $0.offset, id: Identifier.make(prefix: "dlv", at: now), recipient: $0.element) }
        let rows = try Self.json(targets)
        let logger = self.logger
        let workChannel = Self.workChannel
        return try await transaction(timeout: Self.hotPathTimeout) { connection in
            // Same lock order as enqueue: the incident first, then its deliveries.
            let incident = try await connection.query("""
                SELECT i.key FROM incidents AS i WHERE i.key = (SELECT incident FROM deliveries WHERE id = \(deliveryId))
                FOR UPDATE
                """, logger: logger).collect()
            guard !incident.isEmpty else { return 0 }
            let original = try await connection.query("""
                SELECT id FROM deliveries WHERE id = \(deliveryId) AND state = 'failed' AND kind = 'notice' FOR UPDATE
                """, logger: logger).collect()
            guard !original.isEmpty else { return 0 }
            let result = try await connection.query("""
                WITH ins AS (
                    INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority,
                                            budget_since, created_at, due_at, updated_at, fallback_of)
                    SELECT r.id, o.event_id, o.incident, o.cycle, \(channel), r.recipient, 'notice', 'queued', o.priority,
                           \(t), \(t), \(t), \(t), o.id
                    FROM deliveries AS o,
                         jsonb_to_recordset(\(rows)::jsonb) AS r(ord int, id text, recipient text)
                    WHERE o.id = \(deliveryId)
                      AND NOT EXISTS (SELECT 1 FROM deliveries AS f WHERE f.fallback_of = o.id AND f.channel = \(channel)
                                      AND f.recipient IS NOT DISTINCT FROM r.recipient)
                    ORDER BY r.ord
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM ins)::int8,
                       (SELECT count(*) FROM (SELECT pg_notify(\(workChannel), \(channel)) FROM (SELECT 1 FROM ins LIMIT 1) AS one) AS n)::int8
                """, logger: logger).collect()
            guard let row = result.first else { return 0 }
            let (inserted, _) = try row.decode((Int, Int).self)
            return inserted
        }
    }

    struct FallbackRow: Encodable {
        var ord: Int
        var id: String
        var recipient: String?
    }

    /// JSON text for `jsonb_to_recordset`: many rows in one bind, NULLs included.
    static func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}

/// The in-memory part of one enqueue batch.
struct EnqueueRun {
    let batch: [EnqueueRequest]
    let bodies: [String]
    let now: Date
    let t: Double
    let encoder: JSONEncoder
    let decoder: JSONDecoder

    init(batch: [EnqueueRequest], bodies: [String], now: Date, encoder: JSONEncoder, decoder: JSONDecoder) {
        self.batch = batch
        self.bodies = bodies
        self.now = now
        self.t = now.timeIntervalSince1970
        self.encoder = encoder
        self.decoder = decoder
    }

    struct IdemKey: Hashable {
        var scope: String
        var key: String
    }

    enum Answer {
        case live
        /// The same key earlier in this batch, same body.
        case repeatsLive(Int)
        case repeatsStored(EnqueueResult.Accepted)
        case conflict
    }

    struct IncidentState: Encodable {
        var key: String
        var status: String
        var cycle: Int
        var title: String
        var severity: String
        var opened_at: Double
        var resolved_at: Double?
        var updated_at: Double
    }

    struct Target: Hashable {
        var channel: String
        var recipient: String?
    }

    struct NoticeKey: Hashable {
        var incident: String
        var cycle: Int
    }

    /// A notice of an incident cycle, from the database or created earlier in this batch.
    struct Notice {
        var id: String
        var target: Target
        var state: String
        var fallbackOf: String?
        var createdAt: Double
        /// Database rows sort by seq (SQLite's rowid); this batch's rows after them, in order.
        var order: (Int, Int64)
        /// Index into `deliveries` for a row of this batch.
        var pending: Int?
    }

    struct EventRow: Encodable {
        var id: String
        var incident: String
        var cycle: Int
        var status: String
        var body: String
        var received_at: Double
    }

    struct DeliveryRow: Encodable {
        var ord: Int
        var id: String
        var event_id: String
        var incident: String
        var cycle: Int
        var channel: String
        var recipient: String?
        var kind: String
        var state: String
        var priority: Int
        var due_at: Double?
    }

    struct IdemRow: Encodable {
        var scope: String
        var key: String
        var body_hash: String
        var response: String?
    }

    enum Transition {
        case opened, continued, resolvedNow, alreadyResolved, createdResolved
    }

    var incidents: [String: IncidentState] = [:]
    var notices: [NoticeKey: [Notice]] = [:]
    var events: [EventRow] = []
    var deliveries: [DeliveryRow] = []
    var superseded: [String] = []

    mutating func execute(_ connection: PostgresConnection, logger: Logger) async throws -> [EnqueueResult] {
        // 1. Idempotency keys: the first request with a key decides; the rest repeat or conflict.
        var answers = [Answer](repeating: .live, count: batch.count)
        var firstWithKey: [IdemKey: Int] = [:]
        var keyRows: [IdemRow] = []
        for (i, request) in batch.enumerated() {
            guard let idem = request.idempotency else { continue }
            let k = IdemKey(scope: idem.scope, key: idem.key)
            if firstWithKey[k] == nil {
                firstWithKey[k] = i
                keyRows.append(IdemRow(scope: idem.scope, key: idem.key, body_hash: idem.bodyHash, response: nil))
            }
        }
        if !keyRows.isEmpty {
            let rows = try await connection.query("""
                INSERT INTO idempotency AS q (scope, key, body_hash, response, created_at)
                SELECT r.scope, r.key, r.body_hash, '', \(t)
                FROM jsonb_to_recordset(\(try PostgresStore.json(keyRows))::jsonb) AS r(scope text, key text, body_hash text)
                ORDER BY r.scope, r.key
                ON CONFLICT (scope, key) DO UPDATE SET scope = q.scope
                RETURNING q.scope, q.key, q.body_hash, q.response, (q.xmax = 0) AS inserted
                """, logger: logger).collect()
            var stored: [IdemKey: (hash: String, response: String, inserted: Bool)] = [:]
            for row in rows {
                let (scope, key, hash, response, inserted) = try row.decode((String, String, String, String, Bool).self)
                stored[IdemKey(scope: scope, key: key)] = (hash, response, inserted)
            }
            for (i, request) in batch.enumerated() {
                guard let idem = request.idempotency else { continue }
                let k = IdemKey(scope: idem.scope, key: idem.key)
                guard let found = stored[k], let first = firstWithKey[k] else {
                    throw StoreError.underlying("idempotency key \(idem.scope)/\(idem.key) was not stored")
                }
                if found.inserted {
                    if first == i {
                        answers[i] = .live
                    } else {
                        answers[i] = found.hash == idem.bodyHash ? .repeatsLive(first) : .conflict
                    }
                } else if found.hash == idem.bodyHash {
                    var accepted = try decoder.decode(EnqueueResult.Accepted.self, from: Data(found.response.utf8))
                    accepted.channels = []
                    answers[i] = .repeatsStored(accepted)
                } else {
                    answers[i] = .conflict
                }
            }
        }
        let live = batch.indices.filter { if case .live = answers[$0] { return true } else { return false } }

        var accepted: [Int: EnqueueResult.Accepted] = [:]
        if !live.isEmpty {
            try await lockIncidents(live, connection: connection, logger: logger)
            for i in live {
                accepted[i] = try apply(i)
            }
            try await write(live: live, accepted: accepted, firstWithKey: firstWithKey, connection: connection, logger: logger)
        }

        return batch.indices.map { i in
            switch answers[i] {
            case .live:
                return .accepted(accepted[i]!)
            case .repeatsLive(let first):
                var a = accepted[first]!
                a.channels = []
                return .repeated(a)
            case .repeatsStored(let a):
                return .repeated(a)
            case .conflict:
                return .conflict
            }
        }
    }

    /// 2 and 3: lock the incidents (creating the new ones), then the notices a resolve may plan from.
    private mutating func lockIncidents(_ live: [Int], connection: PostgresConnection, logger: Logger) async throws {
        var firstEvents: [String: IncidentState] = [:]
        var resolving: Set<String> = []
        for i in live {
            let event = batch[i].event
            if event.status == .resolved { resolving.insert(event.incident) }
            if firstEvents[event.incident] == nil {
                let resolved = event.status == .resolved
                let occurred = event.occurredAt.timeIntervalSince1970
                firstEvents[event.incident] = IncidentState(
                    key: event.incident, status: resolved ? "resolved" : "open", cycle: 1, title: event.title,
                    severity: event.severity.rawValue, opened_at: occurred, resolved_at: resolved ? occurred : nil, updated_at: t)
            }
        }
        let rows = try await connection.query("""
            INSERT INTO incidents AS i (key, status, cycle, title, severity, opened_at, resolved_at, updated_at)
            SELECT r.key, r.status, r.cycle, r.title, r.severity, r.opened_at, r.resolved_at, r.updated_at
            FROM jsonb_to_recordset(\(try PostgresStore.json(Array(firstEvents.values)))::jsonb)
                AS r(key text, status text, cycle int, title text, severity text, opened_at float8, resolved_at float8, updated_at float8)
            ORDER BY r.key
            ON CONFLICT (key) DO UPDATE SET key = i.key
            RETURNING i.key, i.status, i.cycle, i.title, i.severity, i.opened_at, i.resolved_at, i.updated_at, (i.xmax = 0) AS inserted
            """, logger: logger).collect()
        var openCycles: [(String, Int)] = []
        for row in rows {
            let (key, status, cycle, title, severity, opened, resolved, updated, inserted) =
                try row.decode((String, String, Int, String, String, Double, Double?, Double, Bool).self)
            // A row this batch created stands for "no incident yet": the first event creates it below.
            guard !inserted else { continue }
            incidents[key] = IncidentState(key: key, status: status, cycle: cycle, title: title, severity: severity,
                                           opened_at: opened, resolved_at: resolved, updated_at: updated)
            if status == "open", resolving.contains(key) { openCycles.append((key, cycle)) }
        }
        guard !openCycles.isEmpty else { return }
        let noticeRows = try await connection.query("""
            SELECT id, incident, cycle, channel, recipient, state, fallback_of, created_at, seq FROM deliveries
            WHERE kind = 'notice' AND (incident, cycle) IN (SELECT * FROM unnest(\(openCycles.map(\.0))::text[], \(openCycles.map(\.1))::int8[]))
            ORDER BY id
            FOR UPDATE
            """, logger: logger).collect()
        for row in noticeRows {
            let (id, incident, cycle, channel, recipient, state, fallbackOf, createdAt, seq) =
                try row.decode((String, String, Int, String, String?, String, String?, Double, Int64).self)
            notices[NoticeKey(incident: incident, cycle: cycle), default: []].append(Notice(
                id: id, target: Target(channel: channel, recipient: recipient), state: state, fallbackOf: fallbackOf,
                createdAt: createdAt, order: (0, seq), pending: nil))
        }
    }

    /// 4: one event through the incident lifecycle and its fan-out, as `SQLiteStore.insert`.
    private mutating func apply(_ i: Int) throws -> EnqueueResult.Accepted {
        let request = batch[i]
        let event = request.event
        let (cycle, transition) = upsertIncident(for: event)
        events.append(EventRow(id: event.id, incident: event.incident, cycle: cycle, status: event.status.rawValue,
                               body: bodies[i], received_at: event.receivedAt.timeIntervalSince1970))
        let routed = request.channels.flatMap { channel in
            (request.recipients[channel].map { $0.map(Optional.some) } ?? [nil]).map { Target(channel: channel, recipient: $0) }
        }
        var created: [(Target, DeliveryKind)] = []
        switch transition {
        case .alreadyResolved:
            break
        case .resolvedNow:
            created = allClearPlan(incident: event.incident, cycle: cycle, routed: routed)
        case .opened, .continued, .createdResolved:
            let kind = DeliveryKind(for: event.status)
            created = routed.map { ($0, kind) }
        }
        for (target, kind) in created {
            let id = Identifier.make(prefix: "dlv", at: now)
            deliveries.append(DeliveryRow(ord: deliveries.count, id: id, event_id: event.id, incident: event.incident, cycle: cycle,
                                          channel: target.channel, recipient: target.recipient, kind: kind.rawValue,
                                          state: DeliveryState.queued.rawValue, priority: kind.priority, due_at: t))
            if kind == .notice {
                notices[NoticeKey(incident: event.incident, cycle: cycle), default: []].append(Notice(
                    id: id, target: target, state: DeliveryState.queued.rawValue, fallbackOf: nil, createdAt: t,
                    order: (1, Int64(deliveries.count - 1)), pending: deliveries.count - 1))
            }
        }
        return .init(eventId: event.id, incident: event.incident, deliveries: created.count,
                     channels: created.map(\.0.channel).uniqued())
    }

    /// The receipt-driven all-clear plan of `SQLiteStore.allClearPlan`, over the notices locked in
    /// the database and those created earlier in this batch.
    private mutating func allClearPlan(incident: String, cycle: Int, routed: [Target]) -> [(Target, DeliveryKind)] {
        let key = NoticeKey(incident: incident, cycle: cycle)
        var rows = (notices[key] ?? []).enumerated().sorted { a, b in
            // ORDER BY created_at, rowid (stable for equal keys).
            if a.element.createdAt != b.element.createdAt { return a.element.createdAt < b.element.createdAt }
            if a.element.order != b.element.order { return a.element.order < b.element.order }
            return a.offset < b.offset
        }.map(\.element)
        let replaced = Set(rows.compactMap(\.fallbackOf))
        var handedOver: Set<Target> = []
        var order: [Target] = []
        var told: Set<Target> = []
        for row in rows {
            if replaced.contains(row.id) { handedOver.insert(row.target) }
            if !order.contains(row.target) { order.append(row.target) }
            if row.state == DeliveryState.delivered.rawValue || row.state == DeliveryState.inFlight.rawValue { told.insert(row.target) }
        }
        for j in rows.indices where rows[j].state == DeliveryState.queued.rawValue || rows[j].state == DeliveryState.retrying.rawValue {
            rows[j].state = DeliveryState.superseded.rawValue
            if let pending = rows[j].pending {
                deliveries[pending].state = DeliveryState.superseded.rawValue
                deliveries[pending].due_at = nil
            } else {
                superseded.append(rows[j].id)
            }
        }
        notices[key] = rows
        var plan = order.filter { told.contains($0) || !handedOver.contains($0) }
            .map { ($0, told.contains($0) ? DeliveryKind.allClear : .summary) }
        for target in routed where !order.contains(target) {
            plan.append((target, .allClear))
        }
        return plan
    }

    /// The incident lifecycle of `SQLiteStore.upsertIncident`, on the locked row in memory.
    private mutating func upsertIncident(for event: Event) -> (Int, Transition) {
        let occurred = event.occurredAt.timeIntervalSince1970
        guard var row = incidents[event.incident] else {
            let resolved = event.status == .resolved
            incidents[event.incident] = IncidentState(
                key: event.incident, status: resolved ? "resolved" : "open", cycle: 1, title: event.title,
                severity: event.severity.rawValue, opened_at: occurred, resolved_at: resolved ? occurred : nil, updated_at: t)
            return (1, resolved ? .createdResolved : .opened)
        }
        let result: (Int, Transition)
        switch (row.status, event.status) {
        case ("resolved", .triggered), ("resolved", .updated):
            row.status = "open"
            row.cycle += 1
            row.title = event.title
            row.severity = event.severity.rawValue
            row.opened_at = occurred
            row.resolved_at = nil
            row.updated_at = t
            result = (row.cycle, .opened)
        case ("resolved", .resolved):
            return (row.cycle, .alreadyResolved)
        case (_, .resolved):
            row.status = "resolved"
            row.resolved_at = occurred
            row.updated_at = t
            result = (row.cycle, .resolvedNow)
        default:
            row.title = event.title
            row.severity = event.severity.rawValue
            row.updated_at = t
            result = (row.cycle, .continued)
        }
        incidents[event.incident] = row
        return result
    }

    /// 5: everything in one statement; `pg_notify` is delivered when the transaction commits.
    private func write(live: [Int], accepted: [Int: EnqueueResult.Accepted], firstWithKey: [IdemKey: Int],
                       connection: PostgresConnection, logger: Logger) async throws {
        var answers: [IdemRow] = []
        for i in live {
            guard let idem = batch[i].idempotency, let a = accepted[i] else { continue }
            answers.append(IdemRow(scope: idem.scope, key: idem.key, body_hash: idem.bodyHash,
                                   response: String(decoding: try encoder.encode(a), as: UTF8.self)))
        }
        let channels = live.flatMap { accepted[$0]?.channels ?? [] }.uniqued()
        _ = try await connection.query("""
            WITH ev AS (
                INSERT INTO events (id, incident, cycle, status, body, received_at)
                SELECT r.id, r.incident, r.cycle, r.status, r.body, r.received_at
                FROM jsonb_to_recordset(\(try PostgresStore.json(events))::jsonb)
                    AS r(id text, incident text, cycle int, status text, body text, received_at float8)
                RETURNING 1
            ), dl AS (
                INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority,
                                        budget_since, created_at, due_at, updated_at)
                SELECT r.id, r.event_id, r.incident, r.cycle, r.channel, r.recipient, r.kind, r.state, r.priority,
                       \(t), \(t), r.due_at, \(t)
                FROM jsonb_to_recordset(\(try PostgresStore.json(deliveries))::jsonb)
                    AS r(ord int, id text, event_id text, incident text, cycle int, channel text, recipient text,
                         kind text, state text, priority int, due_at float8)
                ORDER BY r.ord
                RETURNING 1
            ), sup AS (
                UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = \(t)
                WHERE id = ANY(\(superseded)::text[]) AND state IN ('queued', 'retrying')
                RETURNING 1
            ), inc AS (
                UPDATE incidents AS i SET status = r.status, cycle = r.cycle, title = r.title, severity = r.severity,
                    opened_at = r.opened_at, resolved_at = r.resolved_at, updated_at = r.updated_at
                FROM jsonb_to_recordset(\(try PostgresStore.json(Array(incidents.values)))::jsonb)
                    AS r(key text, status text, cycle int, title text, severity text, opened_at float8, resolved_at float8,
                         updated_at float8)
                WHERE i.key = r.key
                RETURNING 1
            ), idem AS (
                UPDATE idempotency AS q SET response = r.response
                FROM jsonb_to_recordset(\(try PostgresStore.json(answers))::jsonb) AS r(scope text, key text, response text)
                WHERE q.scope = r.scope AND q.key = r.key
                RETURNING 1
            )
            SELECT pg_notify(\(PostgresStore.workChannel), c) FROM unnest(\(channels)::text[]) AS c
            """, logger: logger).collect()
    }
}
