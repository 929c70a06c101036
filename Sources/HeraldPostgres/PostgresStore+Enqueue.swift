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
/// 3. For the incidents that are open: their cycle's deliveries (every notice, and what is not
///    final), locked; and the silences in force (one indexed probe, usually empty).
/// 4. `LifecyclePlanner` runs in memory, event after event, on that state and what this batch
///    already planned — the same planner `SQLiteStore` calls row by row.
/// 5. One statement writes it all (events, deliveries, superseded ones, incidents, idempotency
///    answers) and `pg_notify`s each channel that got work, delivered at commit (a notice a silence
///    holds is no work yet: `releaseSilences` signals its channel when it is let go).
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

    /// The deliveries of these incident cycles the planner decides from (every notice, and what is
    /// not final), in creation order; locked with `lock`.
    /// Without the `excluding` channel's (a subscribers channel's are planned page by page).
    ///
    /// Every statement that waits for delivery row locks takes them in `seq` order (an identity
    /// column, never changed), so a resolve's plan and another node's outcomes for the same
    /// incident queue behind each other instead of deadlocking: a deadlock costs the server's
    /// deadlock_timeout (1 s) before one of them is aborted and retried.
    static func cycleDeliveries(_ cycles: [(String, Int)], _ connection: PostgresConnection, lock: Bool,
                                excluding: String? = nil, logger: Logger) async throws -> [String: [CycleDelivery]] {
        guard !cycles.isEmpty else { return [:] }
        let columns = "id, incident, channel, recipient, kind, state, fallback_of"
        let select = """
            SELECT \(columns), created_at, seq FROM deliveries
            WHERE (incident, cycle) IN (SELECT * FROM unnest($1::text[], $2::int8[]))
              AND ($3::text IS NULL OR channel < $3::text OR channel > $3::text)
              AND (kind = 'notice' OR state IN ('queued', 'retrying', 'in_flight', 'silenced'))
            """
        let rows = try await connection.query(PostgresQuery(unsafeSQL: lock
            ? "SELECT \(columns) FROM (\(select) ORDER BY seq FOR UPDATE) AS locked ORDER BY created_at, seq"
            : "SELECT \(columns) FROM (\(select)) AS d ORDER BY created_at, seq", binds: {
                var b = PostgresBindings()
                b.append(cycles.map(\.0))
                b.append(cycles.map(\.1))
                b.append(excluding)
                return b
            }()), logger: logger).collect()
        var out: [String: [CycleDelivery]] = [:]
        for row in rows {
            let (id, incident, channel, recipient, kind, state, fallbackOf) =
                try row.decode((String, String, String, String?, String, String, String?).self)
            guard let kind = DeliveryKind(rawValue: kind), let state = DeliveryState(rawValue: state) else { continue }
            out[incident, default: []].append(CycleDelivery(id: id, target: Target(channel: channel, recipient: recipient), kind: kind,
                                                            state: state, fallbackOf: fallbackOf))
        }
        return out
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

    /// An incident as the `incidents` upsert and update read it.
    struct IncidentRow: Encodable {
        var key: String
        var status: String
        var cycle: Int
        var title: String
        var severity: String
        var opened_at: Double
        var resolved_at: Double?
        var updated_at: Double
        var components: String
        var labels: String
        var link: String?
        var acknowledged_at: Double?
        var acknowledged_by: String?
        var triggers: Int
        var last_seen_at: Double?

        init(_ i: Incident) {
            key = i.key
            status = i.status.rawValue
            cycle = i.cycle
            title = i.title
            severity = i.severity.rawValue
            opened_at = i.openedAt.timeIntervalSince1970
            resolved_at = i.resolvedAt?.timeIntervalSince1970
            updated_at = i.updatedAt.timeIntervalSince1970
            components = StoredJSON.list(i.components)
            labels = StoredJSON.map(i.labels)
            link = i.link
            acknowledged_at = i.acknowledgedAt?.timeIntervalSince1970
            acknowledged_by = i.acknowledgedBy
            triggers = i.triggers
            last_seen_at = i.lastSeenAt?.timeIntervalSince1970
        }
    }

    static let incidentRecordset = """
        AS r(key text, status text, cycle int, title text, severity text, opened_at float8, resolved_at float8, updated_at float8,
             components text, labels text, link text, acknowledged_at float8, acknowledged_by text, triggers int, last_seen_at float8)
        """

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
        var silenced_by: String?
    }

    struct ReheldRow: Encodable {
        var id: String
        var event_id: String
        var state: String
        var silenced_by: String?
    }

    struct IdemRow: Encodable {
        var scope: String
        var key: String
        var body_hash: String
        var response: String?
    }

    /// Incidents as they stand after the events planned so far (nil: not in the database yet).
    var incidents: [String: Incident] = [:]
    /// Keys this batch planned, to be written.
    var touched: [String] = []
    /// Per incident, its current cycle's deliveries: from the database, then as this batch plans.
    var cycles: [String: [CycleDelivery]] = [:]
    /// For a delivery this batch creates, its index in `deliveries`.
    var pending: [String: Int] = [:]
    var events: [EventRow] = []
    var deliveries: [DeliveryRow] = []
    var superseded: [String] = []
    /// Silenced notices of earlier batches that follow the incident (`LifecyclePlan.reheld`).
    var reheld: [ReheldRow] = []
    /// The silences in force at `now`, read once for the batch.
    var silences: [Silence] = []
    /// Public events to fan out to subscribers, in plan order.
    var fanOuts: [FanOutRow] = []

    struct FanOutRow: Encodable {
        var ord: Int
        var event_id: String
        var cycle: Int
        var before: String?
    }

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
            silences = try await PostgresStore.silencesInForce(now: now, connection, decoder: decoder, logger: logger)
            for i in live {
                accepted[i] = apply(i)
            }
            try await write(live: live, accepted: accepted, firstWithKey: firstWithKey, connection: connection, logger: logger)
            if !fanOuts.isEmpty {
                _ = try await connection.query("""
                    INSERT INTO fanouts (event_id, cycle, before, created_at)
                    SELECT r.event_id, r.cycle, r.before, \(t)
                    FROM jsonb_to_recordset(\(try PostgresStore.json(fanOuts))::jsonb)
                        AS r(ord int, event_id text, cycle int, before text)
                    ORDER BY r.ord
                    """, logger: logger).collect()
            }
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

    /// 2 and 3: lock the incidents (creating placeholders for the new ones), then the open cycles' deliveries.
    private mutating func lockIncidents(_ live: [Int], connection: PostgresConnection, logger: Logger) async throws {
        var placeholders: [String: IncidentRow] = [:]
        for i in live {
            let event = batch[i].event
            if placeholders[event.incident] == nil {
                placeholders[event.incident] = IncidentRow(Incident(
                    key: event.incident, status: .resolved, cycle: 0, title: event.title, severity: event.severity,
                    openedAt: event.occurredAt, resolvedAt: nil, updatedAt: now))
            }
        }
        let rows = try await connection.query("""
            INSERT INTO incidents AS i (key, status, cycle, title, severity, opened_at, resolved_at, updated_at)
            SELECT r.key, r.status, r.cycle, r.title, r.severity, r.opened_at, r.resolved_at, r.updated_at
            FROM jsonb_to_recordset(\(try PostgresStore.json(Array(placeholders.values)))::jsonb)
                \(unescaped: Self.incidentRecordset)
            ORDER BY r.key
            ON CONFLICT (key) DO UPDATE SET key = i.key
            RETURNING \(unescaped: PostgresStore.incidentColumns("i")), (i.xmax = 0) AS inserted
            """, logger: logger).collect()
        var openCycles: [(String, Int)] = []
        for row in rows {
            let r = row.makeRandomAccess()
            // A row this batch created stands for "no incident yet": the planner creates it.
            guard try !r["inserted"].decode(Bool.self) else { continue }
            let incident = try PostgresStore.incident(from: r)
            incidents[incident.key] = incident
            if incident.status == .open { openCycles.append((incident.key, incident.cycle)) }
        }
        cycles = try await PostgresStore.cycleDeliveries(openCycles.sorted { $0.0 < $1.0 }, connection, lock: true,
                                                         excluding: batch.first?.routing.subscriberChannel, logger: logger)
    }

    /// 4: one event through the lifecycle planner, as `SQLiteStore.insert` runs it.
    private mutating func apply(_ i: Int) -> EnqueueResult.Accepted {
        let request = batch[i]
        let key = request.event.incident
        let current = incidents[key]
        let cycle = current?.status == .open ? cycles[key] ?? [] : []
        let plan = LifecyclePlanner.plan(incident: current, cycle: cycle, event: request.event, routing: request.routing, now: now,
                                         silences: silences)
        let fansOut = request.routing.reachesSubscribers(cycle.map(\.target) + plan.create.map(\.target))
        if fansOut {
            fanOuts.append(FanOutRow(ord: fanOuts.count, event_id: plan.event.id, cycle: plan.cycle,
                                     before: current.flatMap { try? String(decoding: StoredJSON.encoder().encode($0), as: UTF8.self) }))
        }
        if current == nil || plan.cycle != current?.cycle { cycles[key] = [] }
        if plan.incident != current {
            incidents[key] = plan.incident
            if !touched.contains(key) { touched.append(key) }
        }
        let event = plan.event
        events.append(EventRow(id: event.id, incident: key, cycle: plan.cycle, status: event.status.rawValue,
                               body: event == request.event ? bodies[i] : String(decoding: event.storedJSON(), as: UTF8.self),
                               received_at: event.receivedAt.timeIntervalSince1970))
        let supersede = Set(plan.supersede)
        if !supersede.isEmpty {
            for j in cycles[key, default: []].indices where supersede.contains(cycles[key]![j].id) {
                cycles[key]![j].state = .superseded
            }
            for id in plan.supersede {
                if let row = pending[id] {
                    deliveries[row].state = DeliveryState.superseded.rawValue
                    deliveries[row].due_at = nil
                } else {
                    superseded.append(id)
                    // An earlier event of the batch let it go (re-held it as queued): the
                    // supersede decides. One statement must not update a row twice — PostgreSQL
                    // keeps one of the two changes, and it was the re-hold's, so a notice went
                    // out after its cycle's summary.
                    reheld.removeAll { $0.id == id }
                }
            }
        }
        for r in plan.reheld {
            let state = r.state
            for j in cycles[key, default: []].indices where cycles[key]![j].id == r.id { cycles[key]![j].state = state }
            if let row = pending[r.id] {
                deliveries[row].event_id = event.id
                deliveries[row].state = state.rawValue
                deliveries[row].due_at = state == .queued ? t : nil
                if let by = r.silencedBy { deliveries[row].silenced_by = by }
            } else {
                // A later event of the batch decides (one UPDATE row per delivery).
                reheld.removeAll { $0.id == r.id }
                reheld.append(ReheldRow(id: r.id, event_id: event.id, state: state.rawValue, silenced_by: r.silencedBy))
            }
        }
        for planned in plan.create {
            let id = Identifier.make(prefix: "dlv", at: now)
            let state = planned.state
            pending[id] = deliveries.count
            deliveries.append(DeliveryRow(ord: deliveries.count, id: id, event_id: event.id, incident: key, cycle: plan.cycle,
                                          channel: planned.target.channel, recipient: planned.target.recipient,
                                          kind: planned.kind.rawValue, state: state.rawValue, priority: planned.kind.priority,
                                          due_at: planned.waitsForNotice || state == .silenced ? nil : t,
                                          silenced_by: planned.silencedBy))
            cycles[key, default: []].append(CycleDelivery(id: id, target: planned.target, kind: planned.kind, state: state))
        }
        return .init(eventId: event.id, incident: key, deliveries: plan.create.count,
                     channels: plan.dueChannels,
                     transition: plan.transition.rawValue, fansOut: fansOut ? true : nil)
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
                                        budget_since, created_at, due_at, updated_at, silenced_by)
                SELECT r.id, r.event_id, r.incident, r.cycle, r.channel, r.recipient, r.kind, r.state, r.priority,
                       \(t), \(t), r.due_at, \(t), r.silenced_by
                FROM jsonb_to_recordset(\(try PostgresStore.json(deliveries))::jsonb)
                    AS r(ord int, id text, event_id text, incident text, cycle int, channel text, recipient text,
                         kind text, state text, priority int, due_at float8, silenced_by text)
                ORDER BY r.ord
                RETURNING 1
            ), sup AS (
                UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = \(t)
                WHERE id = ANY(\(superseded)::text[]) AND state IN ('queued', 'retrying', 'silenced')
                RETURNING 1
            ), rh AS (
                UPDATE deliveries AS d SET event_id = r.event_id, state = r.state, silenced_by = COALESCE(r.silenced_by, d.silenced_by),
                    due_at = CASE WHEN r.state = 'queued' THEN \(t)::float8 END, budget_since = \(t), budget_attempts = 0,
                    updated_at = \(t)
                FROM jsonb_to_recordset(\(try PostgresStore.json(reheld))::jsonb)
                    AS r(id text, event_id text, state text, silenced_by text)
                WHERE d.id = r.id AND d.state = 'silenced'
                RETURNING 1
            ), inc AS (
                UPDATE incidents AS i SET status = r.status, cycle = r.cycle, title = r.title, severity = r.severity,
                    opened_at = r.opened_at, resolved_at = r.resolved_at, updated_at = r.updated_at, components = r.components,
                    labels = r.labels, link = r.link, acknowledged_at = r.acknowledged_at, acknowledged_by = r.acknowledged_by,
                    triggers = r.triggers, last_seen_at = r.last_seen_at
                FROM jsonb_to_recordset(\(try PostgresStore.json(touched.compactMap { incidents[$0].map(IncidentRow.init) }))::jsonb)
                    \(unescaped: Self.incidentRecordset)
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
