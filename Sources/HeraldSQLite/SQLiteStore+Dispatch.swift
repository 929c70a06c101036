import Foundation
import GRDB
import HeraldCore
import HeraldStore

extension SQLiteStore {
    public func claim(channel: String, limit: Int, now: Date, owner: String, leaseUntil: Date) async throws -> [ClaimedDelivery] {
        try await claim(ClaimRequest(channel: channel, limit: limit, leaseUntil: leaseUntil), now: now, owner: owner).claimed
    }

    /// The claim and, when it is short, the next due time, in one turn of the writer. A reader
    /// looks first (the writer is the one serial resource): nothing due takes no write at all, and
    /// a claim that will take an all-clear, or an idle lane's, goes through the writer with ingest
    /// and outcomes, ahead of busy lanes' claims (see `WriteScheduler`). An idle lane woken by a
    /// commit for it skips the look: something is due, and the look would only cost the all-clear
    /// (or the new incident's notice) it is waiting for a hop to a reader and back.
    public func claim(_ r: ClaimRequest, now: Date, owner: String) async throws -> ClaimAnswer {
        guard r.limit > 0 else { return ClaimAnswer(claimed: [], nextDue: nil) }
        let channel = r.channel
        var urgent = r.idle
        if !(r.idle && r.expected) {
            let t = now.timeIntervalSince1970
            let (top, next) = try await wrap {
                try await pool.read { db -> (Int?, Date?) in
                    let top = try Int.fetchOne(db.cachedStatement(sql: """
                        SELECT priority FROM deliveries INDEXED BY deliveries_due
                        WHERE channel = ? AND state IN ('queued', 'retrying') AND due_at <= ?
                        ORDER BY priority DESC, due_at LIMIT 1
                        """), arguments: [channel, t])
                    return (top, top == nil ? try Self.nextDue(db, channel: channel) : nil)
                }
            }
            guard let top else { return ClaimAnswer(claimed: [], nextDue: next) }
            urgent = r.idle || top >= DeliveryKind.allClear.priority
        }
        let decoder = self.decoder
        let lease = Identifier.make(prefix: "lease", at: now)
        let eventCache = self.eventCache
        // A claim need not reach the disk: one process owns the file, and whatever it had in
        // flight is due again at the next start, so a claim lost to a power cut changes nothing.
        return try await wrap { try await writer.write(urgent ? .urgent : .normal, synced: false) { db in
                let claimed = try Self.claimRows(db: db, channel: channel, limit: r.limit, now: now, owner: owner, lease: lease,
                                                 leaseUntil: r.leaseUntil, decoder: decoder, eventCache: eventCache)
                return ClaimAnswer(claimed: claimed, nextDue: claimed.count < r.limit ? try Self.nextDue(db, channel: channel) : nil)
            }
        }
    }

    private static func claimRows(db: Database, channel: String, limit: Int, now: Date, owner: String, lease: String,
                                  leaseUntil: Date, decoder: JSONDecoder, eventCache: BoundedCache<String, Event>) throws -> [ClaimedDelivery] {
        // The partial index deliveries_due serves the inner SELECT: all-clears first, then
        // the oldest due, without scanning the backlog of other channels or states.
        let update = try db.cachedStatement(sql: """
            UPDATE deliveries SET state = 'in_flight', lease_owner = ?, lease_token = ?, lease_until = ?, updated_at = ?
            WHERE id IN (
                SELECT id FROM deliveries AS d
                WHERE channel = ? AND state IN ('queued', 'retrying') AND due_at <= ?
                  -- Nothing overtakes at one target: a follow-up waits while anything earlier to
                  -- its target (the notice, an update) is still being sent.
                  AND (kind = 'notice' OR NOT EXISTS (
                      SELECT 1 FROM deliveries AS n
                      WHERE n.incident = d.incident AND n.cycle = d.cycle AND n.channel = d.channel
                        AND n.recipient IS d.recipient AND n.state = 'in_flight'))
                ORDER BY priority DESC, due_at
                LIMIT ?)
            RETURNING \(Self.deliveryColumns), budget_attempts, budget_since
            """)
        // GRDB steps the write; each row is read by position straight from SQLite (ColumnReader).
        let cursor = try Row.fetchCursor(update, arguments: [owner, lease, leaseUntil.timeIntervalSince1970, now.timeIntervalSince1970,
                                                             channel, now.timeIntervalSince1970, limit])
        let columns = ColumnReader(statement: update.sqliteStatement)
        var rows: [(delivery: Delivery, budgetAttempts: Int, budgetSince: Double)] = []
        while try cursor.next() != nil {
            rows.append((try Self.delivery(from: columns), columns.integer(Self.afterDeliveryColumns) ?? 0,
                         columns.real(Self.afterDeliveryColumns + 1) ?? now.timeIntervalSince1970))
        }
        guard !rows.isEmpty else { return [] }
        var incidents: [String: Incident] = [:]
        var claimed: [ClaimedDelivery] = []
        claimed.reserveCapacity(rows.count)
        let eventStatement = try db.cachedStatement(sql: "SELECT body FROM events WHERE id = ?")
        func loadEvent(_ id: String) throws -> Event? {
            try eventCache.value(for: id) {
                try Data.fetchOne(eventStatement, arguments: [id]).map { try decoder.decode(Event.self, from: $0) }
            }
        }
        // The target's notice in this cycle: the delivered one, else the latest.
        let noticeStatement = try db.cachedStatement(sql: """
            SELECT id, event_id, state, receipt FROM deliveries
            WHERE incident = ? AND cycle = ? AND channel = ? AND recipient IS ? AND kind = 'notice'
            ORDER BY state = 'delivered' DESC, delivered_at, created_at DESC LIMIT 1
            """)
        let referencesStatement = try db.cachedStatement(sql: """
            SELECT receipt FROM deliveries
            WHERE incident = ? AND cycle = ? AND channel = ? AND recipient IS ? AND kind IN ('notice', 'update')
              AND state = 'delivered' AND receipt IS NOT NULL
            ORDER BY delivered_at, rowid
            """)
        for row in rows {
            let delivery = row.delivery
            guard let event = try loadEvent(delivery.eventId) else { continue }
            let incident: Incident
            if let cached = incidents[delivery.incident] {
                incident = cached
            } else if let found = try Self.fetchIncident(key: delivery.incident, db: db) {
                incident = found
                incidents[delivery.incident] = found
            } else {
                continue
            }
            let cycle = delivery.cycle
            var item = ClaimedDelivery(
                delivery: delivery, event: event, incident: incident, lease: lease,
                budgetAttempts: row.budgetAttempts, budgetSince: Date(timeIntervalSince1970: row.budgetSince),
                thread: nil)
            if delivery.kind.isFollowUp {
                let target: StatementArguments = [delivery.incident, cycle, channel, delivery.recipient]
                if let notice = try Row.fetchOne(noticeStatement, arguments: target) {
                    let noticeId: String = notice[0]
                    if let noticeEvent = try loadEvent(notice[1]) {
                        item.notice = .init(deliveryId: noticeId, event: noticeEvent)
                    }
                    if (notice[2] as String) == DeliveryState.delivered.rawValue {
                        item.thread = notice[3]
                        item.threadDeliveryId = noticeId
                    }
                }
                item.references = try String.fetchAll(referencesStatement, arguments: target)
            }
            claimed.append(item)
        }
        // Oldest first within a priority, as the index ordered them (RETURNING does not keep order).
        return claimed.sorted {
            ($0.delivery.priority, -($0.delivery.dueAt?.timeIntervalSince1970 ?? 0))
                > ($1.delivery.priority, -($1.delivery.dueAt?.timeIntervalSince1970 ?? 0))
        }
    }

    public func nextDue(channel: String) async throws -> Date? {
        try await wrap { try await pool.read { db in try Self.nextDue(db, channel: channel) } }
    }

    static func nextDue(_ db: Database, channel: String) throws -> Date? {
        try Double.fetchOne(db.cachedStatement(sql: """
            SELECT MIN(due_at) FROM deliveries WHERE channel = ? AND state IN ('queued', 'retrying')
            """), arguments: [channel]).map(Date.init(timeIntervalSince1970:))
    }

    static let liveColumns = """
        d.id, d.state, d.kind, d.lease_token, d.budget_attempts, d.incident, d.cycle, d.channel, d.recipient, d.event_id,
        COALESCE(i.status = 'resolved' OR i.cycle > d.cycle, 0)
        """

    static func liveRow(_ row: some ColumnValues) -> LiveDelivery? {
        guard let state = row.text(1).flatMap(DeliveryState.init(rawValue:)),
              let kind = row.text(2).flatMap(DeliveryKind.init(rawValue:)) else { return nil }
        return LiveDelivery(id: row.text(0) ?? "", current: .init(state: state, kind: kind, lease: row.text(3),
                                                                  cycleClosed: row.flag(10) ?? false, attempts: row.integer(4) ?? 0),
                            incident: row.text(5) ?? "", cycle: row.integer(6) ?? 0,
                            target: Target(channel: row.text(7) ?? "", recipient: row.text(8)), eventId: row.text(9) ?? "")
    }

    /// Outcomes go through the writer with ingest (an all-clear waits for its notice's outcome) and
    /// commit without waiting for the disk, like claims: the next synced commit (an event's, a
    /// checkpoint's) makes them durable, the WAL being written in order. A power cut before that
    /// loses the last outcomes, and their deliveries go out again after the restart, with the same
    /// delivery id: the at-least-once promise. A process crash loses nothing.
    public func record(_ records: [AttemptRecord], now: Date) async throws {
        guard !records.isEmpty else { return }
        try await wrap { try await writer.write(.urgent, synced: false) { db in
                let t = now.timeIntervalSince1970
                let read = try db.cachedStatement(sql: """
                    SELECT \(Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                    WHERE d.id = ?
                    """)
                // VALUES, not INSERT … SELECT: a SELECT that reads the table it inserts into is
                // copied to a temporary table first (opened and closed for every outcome).
                let attempt = try db.cachedStatement(sql: """
                    INSERT INTO attempts (delivery_id, number, replay, started_at, duration_ms, outcome, status, reason, error, late)
                    VALUES (?1, (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE delivery_id = ?1),
                            (SELECT replays FROM deliveries WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                    """)
                for r in records {
                    guard let row = try read.readRow([r.deliveryId], Self.liveRow) ?? nil else { continue }
                    let change = DeliveryLifecycle.outcome(r.outcome, lease: r.lease, current: row.current)
                    let outcome: String
                    switch r.outcome {
                    case .delivered: outcome = "delivered"
                    case .retry: outcome = "retry"
                    case .failed: outcome = "failed"
                    case .released: outcome = ""
                    }
                    if !outcome.isEmpty {
                        // Every answer is history, a late one too (it changed nothing).
                        try attempt.execute(arguments: [r.deliveryId, r.startedAt.timeIntervalSince1970, r.duration.seconds * 1000,
                                                        outcome, r.status, r.reason, r.error, change.isLate])
                    }
                    guard let state = change.state else { continue }
                    var receipt: String?
                    var lastError: String? = r.error
                    if case .delivered(let reference) = r.outcome { receipt = reference; lastError = nil }
                    if case .failed(let reason) = r.outcome { lastError = reason }
                    let answered = outcome.isEmpty ? 0 : 1
                    // Due: a retry's time; unchanged for a claim that ended without an answer; else none.
                    let keepDue = (state == .queued || state == .retrying) && change.dueAt == nil
                    try db.cachedStatement(sql: """
                        UPDATE deliveries SET state = ?, due_at = CASE WHEN ? THEN due_at ELSE ? END,
                            attempts = attempts + ?, budget_attempts = budget_attempts + ?,
                            receipt = CASE WHEN ? = 'delivered' THEN ? ELSE receipt END,
                            delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,
                            last_status = CASE WHEN ? = 1 THEN ? ELSE last_status END,
                            last_error = CASE WHEN ? = 1 THEN ? ELSE last_error END,
                            lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = ?
                        WHERE id = ?
                        """).execute(arguments: [
                            state.rawValue, keepDue, change.dueAt?.timeIntervalSince1970,
                            change.countsAttempt ? 1 : 0, change.countsAttempt ? 1 : 0,
                            state.rawValue, receipt, state.rawValue, t,
                            answered, r.status, answered, lastError, t, r.deliveryId,
                        ])
                    try Self.apply(change.effects, of: row, fallback: r.fallback, now: now, db: db)
                }
            }
        }
    }

    /// The effects of a transition on the rest of the delivery's target and cycle.
    static func apply(_ effects: [DeliveryLifecycle.Effect], of row: LiveDelivery, fallback: [Target], now: Date, db: Database) throws {
        let t = now.timeIntervalSince1970
        let target: StatementArguments = [row.incident, row.cycle, row.target.channel, row.target.recipient]
        for effect in effects {
            switch effect {
            case .updatesDue:
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET due_at = ?, updated_at = ?
                    WHERE incident = ? AND cycle = ? AND channel = ? AND recipient IS ?
                      AND kind = 'update' AND state = 'queued' AND due_at IS NULL
                    """).execute(arguments: [t, t] + target)
            case .supersedeUpdates:
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = ?
                    WHERE incident = ? AND cycle = ? AND channel = ? AND recipient IS ?
                      AND kind = 'update' AND state IN ('queued', 'retrying')
                    """).execute(arguments: [t] + target)
            case .allClearBecomesSummary:
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET kind = 'summary', updated_at = ?
                    WHERE incident = ? AND cycle = ? AND channel = ? AND recipient IS ?
                      AND kind = 'all_clear' AND state IN ('queued', 'retrying')
                    """).execute(arguments: [t] + target)
            case .fallback:
                guard !fallback.isEmpty else { continue }
                let cycle = try cycleDeliveries(incident: row.incident, cycle: row.cycle, db: db)
                // A silence on a fallback channel holds its notice as it holds any (usually none
                // is in force: one indexed probe, and the event is read only when one is).
                let decoder = StoredJSON.decoder()
                let silences = try silencesInForce(now: now, db: db, decoder: decoder)
                let event = silences.isEmpty ? nil : try Data.fetchOne(db, sql: "SELECT body FROM events WHERE id = ?",
                                                                       arguments: [row.eventId]).map { try decoder.decode(Event.self, from: $0) }
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority,
                                            budget_since, created_at, due_at, updated_at, fallback_of, silenced_by)
                    VALUES (?, ?, ?, ?, ?, ?, 'notice', ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                for planned in LifecyclePlanner.fallbackNotices(fallback, cycle: cycle, cycleOpen: true, event: event,
                                                                silences: silences, now: now) {
                    try insert.execute(arguments: [Identifier.make(prefix: "dlv", at: now), row.eventId, row.incident, row.cycle,
                                                   planned.target.channel, planned.target.recipient, planned.state.rawValue,
                                                   DeliveryKind.notice.priority, t, t, planned.silencedBy == nil ? t : nil, t, row.id,
                                                   planned.silencedBy])
                }
            }
        }
    }

    public func releaseLeases(expiredBefore: Date?, owner: String?) async throws -> [String] {
        try await wrap { try await writer.write(.bulk) { db in
                let now = Date()
                var conditions = ["d.state = 'in_flight'"]
                var arguments = StatementArguments()
                if let expiredBefore {
                    conditions.append("d.lease_until < ?")
                    _ = arguments.append(contentsOf: [expiredBefore.timeIntervalSince1970])
                }
                if let owner {
                    conditions.append("d.lease_owner = ?")
                    _ = arguments.append(contentsOf: [owner])
                }
                let rows = try Row.fetchAll(db, sql: """
                    SELECT \(Self.liveColumns) FROM deliveries AS d LEFT JOIN incidents AS i ON i.key = d.incident
                    WHERE \(conditions.joined(separator: " AND ")) ORDER BY d.rowid
                    """, arguments: arguments).compactMap(Self.liveRow)
                var channels: [String] = []
                for row in rows {
                    let change = DeliveryLifecycle.release(row.current)
                    guard let state = change.state else { continue }
                    try db.cachedStatement(sql: """
                        UPDATE deliveries SET state = ?, due_at = CASE WHEN ? = 'superseded' THEN NULL ELSE due_at END,
                            lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = ?
                        WHERE id = ?
                        """).execute(arguments: [state.rawValue, state.rawValue, now.timeIntervalSince1970, row.id])
                    try Self.apply(change.effects, of: row, fallback: [], now: now, db: db)
                    channels.append(row.target.channel)
                }
                return channels.uniqued()
            }
        }
    }
}
