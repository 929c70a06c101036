import Foundation
import GRDB
import HeraldCore
import HeraldStore

/// Subscribers, and the fan-out of public events to them (see `Store.fanOut`).
extension SQLiteStore {
    static let subscriberColumns = "id, address, components, created_at, confirmed_at, token"

    static func subscriber(_ row: Row) -> Subscriber {
        Subscriber(id: row[0], address: row[1], components: StoredJSON.readList(row[2]),
                   createdAt: Date(timeIntervalSince1970: row[3]),
                   confirmedAt: (row[4] as Double?).map(Date.init(timeIntervalSince1970:)), token: row[5])
    }

    public func addSubscriber(_ subscriber: Subscriber, confirmHash: String, now: Date) async throws -> SignUp {
        let t = now.timeIntervalSince1970
        return try await wrap {
            try await pool.write { db in
                try Self.deleteExpiredSignUps(before: t, db: db)
                if let confirmed = try Double?.fetchOne(db, sql: "SELECT confirmed_at FROM subscribers WHERE address = ?",
                                                        arguments: [subscriber.address]) {
                    // A confirmed address keeps its choice: a stranger must not change it.
                    if confirmed != nil { return .alreadyConfirmed }
                    try db.execute(sql: "DELETE FROM subscribers WHERE address = ?", arguments: [subscriber.address])
                }
                try db.execute(sql: """
                    INSERT INTO subscribers (id, address, components, token, confirm_hash, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [subscriber.id, subscriber.address, StoredJSON.list(subscriber.components), subscriber.token,
                                     confirmHash, t, t + Subscriber.confirmationLifetime])
                return .pending(id: subscriber.id)
            }
        }
    }

    public func confirmSubscriber(confirmHash: String, now: Date) async throws -> Subscriber? {
        let t = now.timeIntervalSince1970
        return try await wrap {
            try await pool.write { db in
                guard let id = try String.fetchOne(db, sql: """
                    SELECT id FROM subscribers WHERE confirm_hash = ? AND confirmed_at IS NULL AND expires_at > ?
                    """, arguments: [confirmHash, t]) else { return nil }
                try db.execute(sql: """
                    UPDATE subscribers SET confirmed_at = ?, confirm_hash = NULL, expires_at = NULL WHERE id = ?
                    """, arguments: [t, id])
                return try Row.fetchOne(db, sql: "SELECT \(Self.subscriberColumns) FROM subscribers WHERE id = ?", arguments: [id])
                    .map(Self.subscriber)
            }
        }
    }

    public func subscriber(id: String) async throws -> Subscriber? {
        try await confirmedSubscriber(where: "id = ?", id)
    }

    public func subscriber(token: String) async throws -> Subscriber? {
        try await confirmedSubscriber(where: "token = ?", token)
    }

    private func confirmedSubscriber(where condition: String, _ value: String) async throws -> Subscriber? {
        try await wrap {
            try await pool.read { db in
                try Row.fetchOne(db.cachedStatement(sql: """
                    SELECT \(Self.subscriberColumns) FROM subscribers WHERE \(condition) AND confirmed_at IS NOT NULL
                    """), arguments: [value]).map(Self.subscriber)
            }
        }
    }

    public func setSubscriberComponents(id: String, components: [String]) async throws -> Subscriber? {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "UPDATE subscribers SET components = ? WHERE id = ? AND confirmed_at IS NOT NULL",
                               arguments: [StoredJSON.list(components), id])
                return try Row.fetchOne(db, sql: """
                    SELECT \(Self.subscriberColumns) FROM subscribers WHERE id = ? AND confirmed_at IS NOT NULL
                    """, arguments: [id]).map(Self.subscriber)
            }
        }
    }

    public func removeSubscriber(id: String, now: Date) async throws -> Bool {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM subscribers WHERE id = ?", arguments: [id])
                guard db.changesCount > 0 else { return false }
                try db.execute(sql: """
                    UPDATE deliveries SET state = 'superseded', due_at = NULL, updated_at = ?
                    WHERE recipient = ? AND state IN ('queued', 'retrying', 'silenced')
                    """, arguments: [now.timeIntervalSince1970, id])
                return true
            }
        }
    }

    public func subscribers(pending: Bool, after: String?, limit: Int) async throws -> [Subscriber] {
        try await wrap {
            try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.subscriberColumns) FROM subscribers
                    WHERE confirmed_at IS \(pending ? "" : "NOT ")NULL AND id > ? ORDER BY id LIMIT ?
                    """, arguments: [after ?? "", max(1, limit)]).map(Self.subscriber)
            }
        }
    }

    public func subscriberCounts() async throws -> (confirmed: Int, pending: Int) {
        try await wrap {
            try await pool.read { db in
                let row = try Row.fetchOne(db, sql: """
                    SELECT count(confirmed_at), count(*) - count(confirmed_at) FROM subscribers
                    """)
                return (row?[0] ?? 0, row?[1] ?? 0)
            }
        }
    }

    public func deleteExpiredSignUps(now: Date) async throws -> Int {
        try await wrap {
            try await pool.write { db in
                try Self.deleteExpiredSignUps(before: now.timeIntervalSince1970, db: db)
                return db.changesCount
            }
        }
    }

    static func deleteExpiredSignUps(before t: Double, db: Database) throws {
        try db.execute(sql: "DELETE FROM subscribers WHERE confirmed_at IS NULL AND expires_at <= ?", arguments: [t])
    }

    public func fanOut(channel: String, limit: Int, now: Date) async throws -> FanOutStep {
        let decoder = self.decoder
        return try await wrap { try await writer.write(.bulk) { db in
                guard let job = try Row.fetchOne(db, sql: """
                    SELECT seq, event_id, cycle, before, cursor FROM fanouts ORDER BY seq LIMIT 1
                    """) else { return .idle }
                let seq: Int64 = job[0]
                let cycleNumber: Int = job[2]
                let cursor: String = job[4] ?? ""
                guard let body = try Data.fetchOne(db, sql: "SELECT body FROM events WHERE id = ?", arguments: [job[1] as String]) else {
                    // Pruned since (a fan-out that waited past retention): nothing left to plan from.
                    try db.execute(sql: "DELETE FROM fanouts WHERE seq = ?", arguments: [seq])
                    return FanOutStep(created: 0, due: false, more: true)
                }
                let event = try decoder.decode(Event.self, from: body)
                let before = try (job[3] as Data?).map { try StoredJSON.decoder().decode(Incident.self, from: $0) }
                let page = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT \(Self.subscriberColumns) FROM subscribers
                    WHERE confirmed_at IS NOT NULL AND id > ? ORDER BY id LIMIT ?
                    """), arguments: [cursor, limit]).map(Self.subscriber)
                var step = FanOutStep(created: 0, due: false, more: true)
                if let last = page.last {
                    let cycle = try Row.fetchAll(db.cachedStatement(sql: """
                        SELECT id, channel, recipient, kind, state, fallback_of FROM deliveries
                        WHERE incident = ? AND cycle = ? AND channel = ? AND recipient > ? AND recipient <= ?
                          AND \(Self.inCycle)
                        ORDER BY created_at, rowid
                        """), arguments: [event.incident, cycleNumber, channel, cursor, last.id]).compactMap(Self.cycleDelivery)
                    let silences = try Self.silencesInForce(now: now, db: db, decoder: decoder)
                    let plan = LifecyclePlanner.subscriberPage(before: before, event: event, channel: channel, subscribers: page,
                                                               cycle: cycle, now: now, silences: silences)
                    try Self.applyDeliveries(plan, event: event, now: now, db: db)
                    step.created = plan.create.count
                    step.due = !plan.dueChannels.isEmpty
                }
                if page.count < limit {
                    try db.execute(sql: "DELETE FROM fanouts WHERE seq = ?", arguments: [seq])
                    step.more = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM fanouts)") ?? false
                } else {
                    try db.execute(sql: "UPDATE fanouts SET cursor = ? WHERE seq = ?", arguments: [page.last!.id, seq])
                }
                return step
            }
        }
    }
}
