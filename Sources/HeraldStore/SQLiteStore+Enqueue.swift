import Foundation
import GRDB
import HeraldCore

extension SQLiteStore {
    public func enqueue(_ batch: [EnqueueRequest], now: Date) async throws -> [EnqueueResult] {
        // Encode outside the write lock: the writer is the one serial resource.
        let bodies = try batch.map { try self.encoder.encode($0.event) }
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
        let cycle = try upsertIncident(for: event, now: now, db: db)
        try db.cachedStatement(sql: """
            INSERT INTO events (id, incident, cycle, status, body, received_at) VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [event.id, event.incident, cycle, event.status.rawValue, body,
                                     event.receivedAt.timeIntervalSince1970])
        let kind = DeliveryKind(for: event.status)
        let insert = try db.cachedStatement(sql: """
            INSERT INTO deliveries (id, event_id, incident, cycle, channel, recipient, kind, state, priority, budget_since,
                                    created_at, due_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)
            """)
        let t = now.timeIntervalSince1970
        var count = 0
        for channel in request.channels {
            let recipients: [String?] = request.recipients[channel].map { $0.map(Optional.some) } ?? [nil]
            for recipient in recipients {
                let id = Identifier.make(prefix: "dlv", at: now)
                try insert.execute(arguments: [id, event.id, event.incident, cycle, channel, recipient, kind.rawValue,
                                               kind.priority, t, t, t, t])
                count += 1
            }
        }
        return .init(eventId: event.id, incident: event.incident, deliveries: count, channels: request.channels)
    }

    /// Moves the incident along its lifecycle and answers the cycle the event belongs to.
    /// A trigger after a resolve opens a new cycle of the same key.
    private static func upsertIncident(for event: Event, now: Date, db: Database) throws -> Int {
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
            return 1
        }
        let status: String = row["status"]
        let cycle: Int = row["cycle"]
        switch (status, event.status) {
        case ("resolved", .triggered), ("resolved", .updated):
            try db.cachedStatement(sql: """
                UPDATE incidents SET status = 'open', cycle = cycle + 1, title = ?, severity = ?, opened_at = ?,
                                     resolved_at = NULL, updated_at = ? WHERE key = ?
                """).execute(arguments: [event.title, event.severity.rawValue, occurred, t, event.incident])
            return cycle + 1
        case ("resolved", .resolved):
            // A repeated resolve of the same cycle changes nothing.
            return cycle
        case (_, .resolved):
            try db.cachedStatement(sql: """
                UPDATE incidents SET status = 'resolved', resolved_at = ?, updated_at = ? WHERE key = ?
                """).execute(arguments: [occurred, t, event.incident])
            return cycle
        default:
            try db.cachedStatement(sql: """
                UPDATE incidents SET title = ?, severity = ?, updated_at = ? WHERE key = ?
                """).execute(arguments: [event.title, event.severity.rawValue, t, event.incident])
            return cycle
        }
    }
}
