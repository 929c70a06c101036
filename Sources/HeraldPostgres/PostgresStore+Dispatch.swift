import Foundation
import HeraldCore
import HeraldStore
import PostgresNIO

extension PostgresStore {
    public func claim(channel: String, limit: Int, now: Date, owner: String, leaseUntil: Date) async throws -> [ClaimedDelivery] {
        try await claim([ClaimRequest(channel: channel, limit: limit, leaseUntil: leaseUntil)], now: now, owner: owner)[0].claimed
    }

    /// Each channel's wanted rows in one statement, one round trip, one transaction: the due rows
    /// of each channel are picked with `FOR UPDATE SKIP LOCKED` (rows another node is claiming
    /// right now are skipped, never waited for) and leased, and each comes back with its event,
    /// incident and the notice it threads onto; a channel that got fewer than it asked for also
    /// gets the due time of the earliest delivery still waiting for it. A channel named twice is
    /// claimed in a second statement (one statement must not pick a row for two claimers).
    public func claim(_ requests: [ClaimRequest], now: Date, owner: String) async throws -> [ClaimAnswer] {
        var answers = [ClaimAnswer?](repeating: nil, count: requests.count)
        var rest = Array(requests.indices)
        while !rest.isEmpty {
            var seen: Set<String> = []
            let round = rest.filter { seen.insert(requests[$0].channel).inserted }
            rest.removeAll { i in round.contains(i) }
            let got = try await claimOnce(round.map { requests[$0] }, now: now, owner: owner)
            for (i, answer) in zip(round, got) { answers[i] = answer }
        }
        return answers.map { $0! }
    }

    /// The wants of one claim statement (channels distinct).
    struct WantRow: Encodable {
        var ord: Int
        var channel: String
        var lim: Int
        var lease_until: Double
    }

    private func claimOnce(_ requests: [ClaimRequest], now: Date, owner: String) async throws -> [ClaimAnswer] {
        let wanted = requests.enumerated().filter { $0.element.limit > 0 }
            .map { WantRow(ord: $0.offset, channel: $0.element.channel, lim: $0.element.limit,
                           lease_until: $0.element.leaseUntil.timeIntervalSince1970) }
        var answers = requests.map { _ in ClaimAnswer(claimed: [], nextDue: nil) }
        guard !wanted.isEmpty else { return answers }
        let decoder = self.decoder
        let logger = self.logger
        let t = now.timeIntervalSince1970
        let lease = Identifier.make(prefix: "lease", at: now)
        let wantJSON = try Self.json(wanted)
        let rows = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query("""
                WITH w AS (
                    SELECT * FROM jsonb_to_recordset(\(wantJSON)::jsonb) AS w(ord int, channel text, lim int, lease_until float8)
                ), picked AS (
                    SELECT p.id, w.ord, w.lease_until FROM w CROSS JOIN LATERAL (
                        SELECT id FROM deliveries AS d
                        WHERE d.channel = w.channel AND state IN ('queued', 'retrying') AND due_at <= \(t)
                          -- Nothing overtakes at one target: a follow-up waits while anything earlier to
                          -- its target (the notice, an update) is still being sent.
                          AND (kind = 'notice' OR NOT EXISTS (
                              SELECT 1 FROM deliveries AS n
                              WHERE n.incident = d.incident AND n.cycle = d.cycle AND n.channel = d.channel
                                AND n.recipient IS NOT DISTINCT FROM d.recipient AND n.state = 'in_flight'))
                        ORDER BY priority DESC, due_at, seq
                        LIMIT w.lim
                        FOR UPDATE SKIP LOCKED
                    ) AS p
                ), claimed AS (
                    UPDATE deliveries AS d SET state = 'in_flight', lease_owner = \(owner), lease_token = \(lease),
                        lease_until = picked.lease_until, updated_at = \(t)
                    FROM picked WHERE d.id = picked.id
                    RETURNING picked.ord, \(unescaped: Self.deliveryColumns("d")), d.seq, d.budget_attempts, d.budget_since
                ), short AS (
                    -- A channel that got fewer than it asked for: when its next waiting delivery is due.
                    SELECT w.ord, (SELECT MIN(q.due_at) FROM deliveries AS q
                                   WHERE q.channel = w.channel AND q.state IN ('queued', 'retrying')
                                     AND NOT EXISTS (SELECT 1 FROM picked WHERE picked.id = q.id)) AS next_due
                    FROM w WHERE (SELECT count(*) FROM picked WHERE picked.ord = w.ord) < w.lim
                ), full_rows AS (
                    SELECT c.*, e.body AS event_body, \(unescaped: Self.incidentColumns("i", as: "i_")),
                           th.id AS thread_id, th.receipt AS thread_receipt, th.state AS thread_state, th.event_id AS thread_event_id,
                           te.body AS thread_event_body, refs.receipts AS thread_references
                    FROM claimed AS c
                    JOIN events AS e ON e.id = c.event_id
                    JOIN incidents AS i ON i.key = c.incident
                    -- A follow-up's notice to the same target: the delivered one, else the latest.
                    LEFT JOIN LATERAL (
                        SELECT t.id, t.receipt, t.state, t.event_id FROM deliveries AS t
                        WHERE t.incident = c.incident AND t.cycle = c.cycle AND t.channel = c.channel
                          AND t.recipient IS NOT DISTINCT FROM c.recipient AND t.kind = 'notice'
                        ORDER BY t.state = 'delivered' DESC, t.delivered_at, t.created_at DESC LIMIT 1
                    ) AS th ON c.kind <> 'notice'
                    LEFT JOIN events AS te ON te.id = th.event_id
                    LEFT JOIN LATERAL (
                        SELECT array_agg(t.receipt ORDER BY t.delivered_at, t.seq) AS receipts FROM deliveries AS t
                        WHERE t.incident = c.incident AND t.cycle = c.cycle AND t.channel = c.channel
                          AND t.recipient IS NOT DISTINCT FROM c.recipient AND t.kind IN ('notice', 'update')
                          AND t.state = 'delivered' AND t.receipt IS NOT NULL
                    ) AS refs ON c.kind <> 'notice'
                )
                -- One row per claimed delivery, and one with no delivery per short channel's next due time.
                SELECT * FROM (
                    SELECT f.*, NULL::float8 AS next_due FROM full_rows AS f
                    UNION ALL
                    SELECT s.ord, \(unescaped: Self.deliveryColumnNames.map { _ in "NULL" }.joined(separator: ", ")), NULL, NULL, NULL,
                           NULL, \(unescaped: Self.incidentColumnNames.map { _ in "NULL" }.joined(separator: ", ")),
                           NULL, NULL, NULL, NULL, NULL, NULL, s.next_due
                    FROM short AS s
                ) AS x
                ORDER BY x.ord, x.priority DESC, x.due_at, x.seq
                """, logger: logger).collect()
        }
        let eventCache = self.eventCache
        func loadEvent(_ id: String, _ body: String?) throws -> Event? {
            try eventCache.value(for: id) {
                try body.map { try decoder.decode(Event.self, from: Data($0.utf8)) }
            }
        }
        for row in rows {
            let r = row.makeRandomAccess()
            let ord = try r["ord"].decode(Int.self)
            guard answers.indices.contains(ord) else { continue }
            guard try r["id"].decode(String?.self) != nil else {
                answers[ord].nextDue = try r["next_due"].decode(Double?.self).map(Date.init(timeIntervalSince1970:))
                continue
            }
            let delivery = try Self.delivery(from: r)
            guard let event = try loadEvent(delivery.eventId, try r["event_body"].decode(String.self)) else { continue }
            var item = ClaimedDelivery(
                delivery: delivery, event: event, incident: try Self.incident(from: r, prefix: "i_"), lease: lease,
                budgetAttempts: try r["budget_attempts"].decode(Int.self),
                budgetSince: Date(timeIntervalSince1970: try r["budget_since"].decode(Double.self)),
                thread: nil)
            if let noticeId = try r["thread_id"].decode(String?.self) {
                if let noticeEventId = try r["thread_event_id"].decode(String?.self),
                   let noticeEvent = try loadEvent(noticeEventId, try r["thread_event_body"].decode(String?.self)) {
                    item.notice = .init(deliveryId: noticeId, event: noticeEvent)
                }
                if try r["thread_state"].decode(String?.self) == DeliveryState.delivered.rawValue {
                    item.thread = try r["thread_receipt"].decode(String?.self)
                    item.threadDeliveryId = noticeId
                }
            }
            item.references = try r["thread_references"].decode([String]?.self) ?? []
            answers[ord].claimed.append(item)
        }
        return answers
    }

    public func nextDue(channel: String) async throws -> Date? {
        let logger = self.logger
        let rows = try await run(timeout: Self.hotPathTimeout) { connection in
            try await connection.query("""
                SELECT MIN(due_at) FROM deliveries WHERE channel = \(channel) AND state IN ('queued', 'retrying')
                """, logger: logger).collect()
        }
        return try rows.first?.decode(Double?.self).map(Date.init(timeIntervalSince1970:))
    }

    /// The new state of one delivery, for the record statement.
    struct StateRow: Encodable {
        var id: String
        var state: String
        var keep_due: Bool
        var due_at: Double?
        var counts: Int
        var answered: Bool
        var delivered: Bool
        var receipt: String?
        var last_status: Int?
        var last_error: String?
    }

    /// One answer for the attempt history (`seq` numbers several answers for one delivery).
    struct AttemptRow: Encodable {
        var id: String
        var seq: Int
        var started_at: Double
        var duration_ms: Double
        var outcome: String
        var status: Int?
        var reason: String?
        var error: String?
        var late: Bool
    }

    struct TargetRow: Encodable, Hashable {
        var incident: String
        var cycle: Int
        var channel: String
        var recipient: String?
        init(_ d: LiveDelivery) {
            incident = d.incident
            cycle = d.cycle
            channel = d.target.channel
            recipient = d.target.recipient
        }
    }

    /// Outcomes as `DeliveryLifecycle` decides them, fenced by the lease, in one transaction: the
    /// deliveries are locked (and, when an outcome may turn on whether the incident is still open,
    /// their incidents first), their new states and every answer's attempt written in one
    /// statement with the updates a delivered notice makes due; the rarer effects (a fallback, a
    /// summary in place of an all-clear) follow in the same transaction.
    public func record(_ records: [AttemptRecord], now: Date) async throws {
        guard !records.isEmpty else { return }
        let t = now.timeIntervalSince1970
        let logger = self.logger
        let workChannel = Self.workChannel
        let ids = records.map(\.deliveryId).uniqued()
        let decidesByIncident = records.contains { if case .delivered = $0.outcome { return false } else { return true } }
        try await transaction(timeout: Self.hotPathTimeout) { connection in
            if decidesByIncident {
                try await Self.lockIncidents(ofDeliveries: ids, connection, logger: logger)
            }
            var live: [String: LiveDelivery] = [:]
            for row in try await connection.query("""
                SELECT \(unescaped: Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                WHERE d.id = ANY(\(ids)::text[]) ORDER BY d.seq FOR UPDATE OF d  -- seq order: see cycleDeliveries
                """, logger: logger).collect() {
                if let d = try Self.liveDelivery(row) { live[d.id] = d }
            }
            var states: [String: StateRow] = [:]
            var attempts: [AttemptRow] = []
            var seq: [String: Int] = [:]
            var due: Set<TargetRow> = []
            var effects: [(LiveDelivery, [DeliveryLifecycle.Effect], [Target])] = []
            for r in records {
                guard var d = live[r.deliveryId] else { continue }
                let change = DeliveryLifecycle.outcome(r.outcome, lease: r.lease, current: d.current)
                var outcome = ""
                var receipt: String?
                var lastError = r.error
                switch r.outcome {
                case .delivered(let reference): outcome = "delivered"; receipt = reference; lastError = nil
                case .retry: outcome = "retry"
                case .failed(let reason): outcome = "failed"; lastError = reason
                case .released: break
                }
                if !outcome.isEmpty {
                    seq[d.id, default: 0] += 1
                    attempts.append(AttemptRow(id: d.id, seq: seq[d.id]!, started_at: r.startedAt.timeIntervalSince1970,
                                               duration_ms: r.duration.seconds * 1000, outcome: outcome, status: r.status,
                                               reason: r.reason, error: r.error, late: change.isLate))
                }
                guard let state = change.state else { continue }
                let previous = states[d.id]
                states[d.id] = StateRow(
                    id: d.id, state: state.rawValue,
                    keep_due: (state == .queued || state == .retrying) && change.dueAt == nil,
                    due_at: change.dueAt?.timeIntervalSince1970, counts: (previous?.counts ?? 0) + (change.countsAttempt ? 1 : 0),
                    answered: !outcome.isEmpty || previous?.answered == true, delivered: state == .delivered,
                    receipt: receipt, last_status: outcome.isEmpty ? previous?.last_status : r.status,
                    last_error: outcome.isEmpty ? previous?.last_error : lastError)
                d.current.state = state
                d.current.lease = nil
                live[d.id] = d
                for effect in change.effects where effect == .updatesDue { due.insert(TargetRow(d)) }
                let rest = change.effects.filter { $0 != .updatesDue }
                if !rest.isEmpty { effects.append((d, rest, r.fallback)) }
            }
            let stateJSON = try Self.json(Array(states.values))
            let attemptJSON = try Self.json(attempts)
            let dueJSON = try Self.json(Array(due))
            _ = try await connection.query("""
                WITH u AS (
                    UPDATE deliveries AS d SET
                        state = r.state,
                        due_at = CASE WHEN r.keep_due THEN d.due_at ELSE r.due_at END,
                        attempts = d.attempts + r.counts, budget_attempts = d.budget_attempts + r.counts,
                        receipt = CASE WHEN r.delivered THEN r.receipt ELSE d.receipt END,
                        delivered_at = CASE WHEN r.delivered THEN \(t) ELSE d.delivered_at END,
                        last_status = CASE WHEN r.answered THEN r.last_status ELSE d.last_status END,
                        last_error = CASE WHEN r.answered THEN r.last_error ELSE d.last_error END,
                        lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = \(t)
                    FROM jsonb_to_recordset(\(stateJSON)::jsonb)
                        AS r(id text, state text, keep_due bool, due_at float8, counts int, answered bool, delivered bool,
                             receipt text, last_status int, last_error text)
                    WHERE d.id = r.id
                    RETURNING 1
                ), a AS (
                    INSERT INTO attempts (delivery_id, number, replay, started_at, duration_ms, outcome, status, reason, error, late)
                    SELECT x.id, COALESCE((SELECT MAX(number) FROM attempts AS h WHERE h.delivery_id = x.id), 0) + x.seq, d.replays,
                           x.started_at, x.duration_ms, x.outcome, x.status, x.reason, x.error, x.late
                    FROM jsonb_to_recordset(\(attemptJSON)::jsonb)
                        AS x(id text, seq int, started_at float8, duration_ms float8, outcome text, status int, reason text,
                             error text, late bool)
                    JOIN deliveries AS d ON d.id = x.id
                    RETURNING 1
                ), due AS (
                    UPDATE deliveries AS w SET due_at = \(t), updated_at = \(t)
                    FROM jsonb_to_recordset(\(dueJSON)::jsonb) AS e(incident text, cycle int, channel text, recipient text)
                    WHERE w.incident = e.incident AND w.cycle = e.cycle AND w.channel = e.channel
                      AND w.recipient IS NOT DISTINCT FROM e.recipient
                      AND w.kind = 'update' AND w.state = 'queued' AND w.due_at IS NULL
                    RETURNING w.channel
                )
                SELECT (SELECT count(*) FROM u)::int8, (SELECT count(*) FROM a)::int8,
                       (SELECT count(*) FROM (SELECT pg_notify(\(workChannel), c) FROM (SELECT DISTINCT channel AS c FROM due) AS n) AS m)::int8
                """, logger: logger).collect()
            for (d, list, fallback) in effects {
                try await Self.apply(list, of: d, fallback: fallback, now: now, connection, logger: logger)
            }
        }
    }

    /// The rarer effects of a transition on the rest of the delivery's target and cycle.
    static func apply(_ effects: [DeliveryLifecycle.Effect], of d: LiveDelivery, fallback: [Target], now: Date,
                      _ connection: PostgresConnection, logger: Logger) async throws {
        let t = now.timeIntervalSince1970
        let (incident, cycle, channel, recipient) = (d.incident, d.cycle, d.target.channel, d.target.recipient)
        for effect in effects {
            switch effect {
            case .updatesDue:
                _ = try await connection.query("""
                    UPDATE deliveries SET due_at = \(t), updated_at = \(t)
                    WHERE incident = \(incident) AND cycle = \(cycle) AND channel = \(channel)
                      AND recipient IS NOT DISTINCT FROM \(recipient) AND kind = 'update' AND state = 'queued' AND due_at IS NULL
                    """, logger: logger).collect()
            case .supersedeUpdates:
                _ = try await connection.query("""
                    UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = \(t)
                    WHERE incident = \(incident) AND cycle = \(cycle) AND channel = \(channel)
                      AND recipient IS NOT DISTINCT FROM \(recipient) AND kind = 'update' AND state IN ('queued', 'retrying')
                    """, logger: logger).collect()
            case .allClearBecomesSummary:
                _ = try await connection.query("""
                    UPDATE deliveries SET kind = 'summary', updated_at = \(t)
                    WHERE incident = \(incident) AND cycle = \(cycle) AND channel = \(channel)
                      AND recipient IS NOT DISTINCT FROM \(recipient) AND kind = 'all_clear' AND state IN ('queued', 'retrying')
                    """, logger: logger).collect()
            case .fallback:
                guard !fallback.isEmpty else { continue }
                let cycleRows = try await cycleDeliveries([(incident, cycle)], connection, lock: false, logger: logger)
                guard !LifecyclePlanner.fallbackTargets(fallback, cycle: cycleRows[incident] ?? [], cycleOpen: true).isEmpty else {
                    continue
                }
                // A silence on a fallback channel holds its notice as it holds any (usually none
                // is in force: one indexed probe, and the event is read only when one is).
                let decoder = StoredJSON.decoder()
                let silences = try await silencesInForce(now: now, connection, decoder: decoder, logger: logger)
                let event = silences.isEmpty ? nil : try await connection.query(
                    "SELECT body FROM events WHERE id = \(d.eventId)", logger: logger).collect().first
                    .map { try decoder.decode(Event.self, from: Data(try $0.decode(String.self).utf8)) }
                let planned = LifecyclePlanner.fallbackNotices(fallback, cycle: cycleRows[incident] ?? [], cycleOpen: true,
                                                               event: event, silences: silences, now: now)
                let rows = planned.enumerated().map {
                    FallbackRow(ord: $0.offset, id: Identifier.make(prefix: "dlv", at: now), channel: $0.element.target.channel,
                                recipient: $0.element.target.recipient, state: $0.element.state.rawValue,
                                silenced_by: $0.element.silencedBy)
                }
                _ = try await connection.query("""
                    WITH ins AS (
                        INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority,
                                                budget_since, created_at, due_at, updated_at, fallback_of, silenced_by)
                        SELECT r.id, \(d.eventId), \(incident), \(cycle), r.channel, r.recipient, 'notice', r.state,
                               \(DeliveryKind.notice.priority), \(t), \(t),
                               CASE WHEN r.silenced_by IS NULL THEN \(t)::float8 END, \(t), \(d.id), r.silenced_by
                        FROM jsonb_to_recordset(\(try json(rows))::jsonb)
                             AS r(ord int, id text, channel text, recipient text, state text, silenced_by text)
                        ORDER BY r.ord
                        RETURNING channel, state
                    )
                    SELECT pg_notify(\(workChannel), c) FROM (SELECT DISTINCT channel AS c FROM ins WHERE state = 'queued') AS n
                    """, logger: logger).collect()
            }
        }
    }

    struct FallbackRow: Encodable {
        var ord: Int
        var id: String
        var channel: String
        var recipient: String?
        var state: String
        var silenced_by: String?
    }

    /// In-flight deliveries whose lease expired (or all of `owner`'s) go back to waiting — or, a
    /// notice or update whose cycle is over, are superseded — and each channel that got work back
    /// is signalled to every node. Incidents are locked first, as every writer takes them.
    public func releaseLeases(expiredBefore: Date?, owner: String?) async throws -> [String] {
        let now = Date()
        let t = now.timeIntervalSince1970
        let before = expiredBefore?.timeIntervalSince1970
        let logger = self.logger
        let workChannel = Self.workChannel
        return try await transaction(timeout: Self.hotPathTimeout) { connection in
            let candidates = try await connection.query("""
                SELECT id FROM deliveries
                WHERE state = 'in_flight'
                  AND (\(before)::float8 IS NULL OR lease_until < \(before)::float8)
                  AND (\(owner)::text IS NULL OR lease_owner = \(owner)::text)
                """, logger: logger).collect().map { try $0.decode(String.self) }
            guard !candidates.isEmpty else { return [] }
            try await Self.lockIncidents(ofDeliveries: candidates, connection, logger: logger)
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                WHERE d.id = ANY(\(candidates)::text[]) AND d.state = 'in_flight'
                  AND (\(before)::float8 IS NULL OR d.lease_until < \(before)::float8)
                  AND (\(owner)::text IS NULL OR d.lease_owner = \(owner)::text)
                ORDER BY d.seq FOR UPDATE OF d
                """, logger: logger).collect().compactMap(Self.liveDelivery)
            var states: [StateRow] = []
            var channels: [String] = []
            var effects: [(LiveDelivery, [DeliveryLifecycle.Effect])] = []
            for d in rows {
                let change = DeliveryLifecycle.release(d.current)
                guard let state = change.state else { continue }
                states.append(StateRow(id: d.id, state: state.rawValue, keep_due: state != .superseded, due_at: nil, counts: 0,
                                       answered: false, delivered: false, receipt: nil, last_status: nil, last_error: nil))
                channels.append(d.target.channel)
                if !change.effects.isEmpty { effects.append((d, change.effects)) }
            }
            guard !states.isEmpty else { return [] }
            _ = try await connection.query("""
                WITH u AS (
                    UPDATE deliveries AS d SET state = r.state, due_at = CASE WHEN r.keep_due THEN d.due_at ELSE NULL END,
                        lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = \(t)
                    FROM jsonb_to_recordset(\(try Self.json(states))::jsonb) AS r(id text, state text, keep_due bool)
                    WHERE d.id = r.id
                    RETURNING d.channel
                )
                SELECT pg_notify(\(workChannel), c) FROM (SELECT DISTINCT channel AS c FROM u) AS n
                """, logger: logger).collect()
            for (d, list) in effects {
                try await Self.apply(list, of: d, fallback: [], now: now, connection, logger: logger)
            }
            return channels.uniqued()
        }
    }
}
