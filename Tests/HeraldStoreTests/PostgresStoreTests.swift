import Foundation
import Synchronization
import Testing
@testable import HeraldCore
@testable import HeraldStore
@testable import HeraldPostgres

/// The test server: `HERALD_TEST_POSTGRES_URL`, e.g. what `scripts/pg-start DIR` prints.
enum TestPostgres {
    static let url: String? = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static var isConfigured: Bool { url != nil }
    /// The folder of the test server's private CA and certificates (`PG_TLS=1 scripts/pg-start`).
    static let tls: String? = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_TLS"].flatMap { $0.isEmpty ? nil : $0 }
    static let disabledReason: Comment = "set HERALD_TEST_POSTGRES_URL (scripts/pg-start) to run against PostgreSQL"

    /// A new, empty database on the test server; answers its URL.
    static func freshDatabase() async throws -> String {
        let server = try #require(url, "HERALD_TEST_POSTGRES_URL is not set")
        let name = "herald_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return try await PostgresStore.createDatabase(serverURL: server, name: name)
    }

    /// A migrated store on a fresh database.
    static func freshStore() async throws -> PostgresStore {
        try await PostgresStore.open(url: try await freshDatabase(), migrate: true)
    }
}

@Suite(.enabled(if: TestPostgres.isConfigured, TestPostgres.disabledReason))
struct PostgresStoreTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ incident: String, _ status: EventStatus = .triggered) -> Event {
        Event(id: Identifier.make(prefix: "evt", at: t0), incident: incident, status: status, severity: .critical,
              title: "down", occurredAt: t0, receivedAt: t0)
    }

    /// Two nodes on one database, claiming the same channel at once: every delivery is taken by
    /// exactly one of them (SKIP LOCKED), none twice, and all-clears still go first.
    @Test func concurrentClaimsFromTwoNodesNeverShareADelivery() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        let total = 300
        _ = try await a.enqueue((0..<total).map { EnqueueRequest(event: event("i\($0)"), channels: ["ch"]) }, now: t0)
        let now = t0.addingTimeInterval(1)
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (n, store) in [a, b, a, b].enumerated() {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let c = try await store.claim(channel: "ch", limit: 7, now: now, owner: "node\(n)",
                                                      leaseUntil: now.addingTimeInterval(60))
                        if c.isEmpty { return mine }
                        mine += c.map(\.delivery.id)
                    }
                }
            }
            var all: [[String]] = []
            for try await ids in group { all.append(ids) }
            return all
        }
        let ids = claimed.flatMap { $0 }
        #expect(ids.count == total)
        #expect(Set(ids).count == total, "a delivery was claimed twice")
        #expect(claimed.filter { !$0.isEmpty }.count >= 2, "both nodes got work: \(claimed.map(\.count))")
        #expect(try await b.countsByState()[.inFlight] == total)
    }

    /// Priority holds across nodes: an all-clear enqueued by one node is claimed by the other
    /// ahead of its backlog.
    @Test func allClearsFirstAcrossNodes() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        _ = try await a.enqueue((0..<20).map { EnqueueRequest(event: event("i\($0)"), channels: ["ch"]) }, now: t0)
        let first = try await b.claim(channel: "ch", limit: 1, now: t0, owner: "b", leaseUntil: t0.addingTimeInterval(60))
        try await b.record([AttemptRecord(deliveryId: first[0].delivery.id, lease: first[0].lease, startedAt: t0, duration: .zero,
                                          outcome: .delivered(reference: "r"), status: 200)], now: t0)
        _ = try await a.enqueue([EnqueueRequest(event: event(first[0].delivery.incident, .resolved), channels: ["ch"])],
                                now: t0.addingTimeInterval(5))
        let next = try await b.claim(channel: "ch", limit: 2, now: t0.addingTimeInterval(5), owner: "b",
                                     leaseUntil: t0.addingTimeInterval(60))
        #expect(next.map(\.delivery.kind) == [.allClear, .notice])
        #expect(next.first?.thread == "r")
    }

    /// A node that died holding leases: its deliveries come back once the lease expired, to any node.
    @Test func leaseOfADeadOwnerComesBackAfterExpiry() async throws {
        let url = try await TestPostgres.freshDatabase()
        let dead = try await PostgresStore.open(url: url, migrate: true)
        _ = try await dead.enqueue([EnqueueRequest(event: event("dns"), channels: ["ch", "other"])], now: t0)
        let taken = try await dead.claim(channel: "ch", limit: 5, now: t0, owner: "dead", leaseUntil: t0.addingTimeInterval(30))
        #expect(taken.count == 1)
        await dead.close()
        let alive = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await alive.close() } }
        #expect(try await alive.claim(channel: "ch", limit: 5, now: t0.addingTimeInterval(10), owner: "alive",
                                      leaseUntil: t0.addingTimeInterval(70)).isEmpty)
        #expect(try await alive.releaseLeases(expiredBefore: t0.addingTimeInterval(20), owner: nil).isEmpty)
        #expect(try await alive.releaseLeases(expiredBefore: t0.addingTimeInterval(31), owner: nil) == ["ch"])
        let back = try await alive.claim(channel: "ch", limit: 5, now: t0.addingTimeInterval(31), owner: "alive",
                                         leaseUntil: t0.addingTimeInterval(90))
        #expect(back.map(\.delivery.id) == taken.map(\.delivery.id))
        // Releasing by owner takes only that owner's.
        #expect(try await alive.releaseLeases(expiredBefore: nil, owner: "someone-else").isEmpty)
        #expect(try await alive.releaseLeases(expiredBefore: nil, owner: "alive") == ["ch"])
        #expect(alive.isShared)
    }

    /// New work enqueued on one node wakes the others: B's work signals name A's channels.
    @Test func workSignalsReachOtherNodes() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        let signals = b.workSignals()
        let seen = Mutex<Set<String>>([])
        let listener = Task {
            for await channel in signals { seen.withLock { _ = $0.insert(channel) } }
        }
        // The listener needs a moment to LISTEN: keep giving work until it has seen every kind.
        let wanted: Set<String> = ["mail", "hook", "lost", "fallback"]
        let deadline = ContinuousClock.now + .seconds(10)
        var n = 0
        while ContinuousClock.now < deadline, !seen.withLock({ $0.isSuperset(of: wanted) }) {
            n += 1
            // New work for mail and hook; a notice of "lost" that fails and falls back to "fallback".
            _ = try await a.enqueue([EnqueueRequest(event: event("n\(n)"), channels: ["mail", "hook"]),
                                     EnqueueRequest(event: event("lost\(n)"), channels: ["lost"])], now: t0)
            let lost = try await a.claim(channel: "lost", limit: 1, now: t0, owner: "a", leaseUntil: t0.addingTimeInterval(60))
            try await a.record([AttemptRecord(deliveryId: lost[0].delivery.id, lease: lost[0].lease, startedAt: t0, duration: .zero,
                                              outcome: .failed(reason: "gone"), fallback: [Target(channel: "fallback")])], now: t0)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(seen.withLock { $0 } == wanted)
        // Cancelling the consumer ends the stream.
        listener.cancel()
        await listener.value
    }

    /// A notice a silence holds wakes no node; when the silence is let go on one node, the others
    /// hear of its channel (their dispatchers claim it at once, not at their next sweep).
    @Test func releasedSilencesWakeOtherNodes() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        try await a.addSilence(Silence(id: "sil_quiet", matchers: [try SilenceMatcher(parsing: "severity=critical")],
                                       channels: ["quiet"], startsAt: t0, endsAt: t0.addingTimeInterval(600),
                                       createdBy: "ops", comment: "maintenance", createdAt: t0))
        let signals = b.workSignals()
        let seen = Mutex<[String]>([])
        let listener = Task {
            for await channel in signals { seen.withLock { $0.append(channel) } }
        }
        // The listener needs a moment to LISTEN: enqueue until the unsilenced channel is heard.
        let deadline = ContinuousClock.now + .seconds(10)
        var n = 0
        while ContinuousClock.now < deadline, !seen.withLock({ $0.contains("loud") }) {
            n += 1
            let r = try await a.enqueue([EnqueueRequest(event: event("q\(n)"), channels: ["quiet", "loud"])], now: t0)
            #expect(r.first.flatMap { if case .accepted(let x) = $0 { x.channels } else { nil } } == ["loud"])
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(seen.withLock { $0.contains("loud") && !$0.contains("quiet") })
        _ = try await a.expireSilence(id: "sil_quiet", now: t0.addingTimeInterval(10))
        let released = try await a.releaseSilences(now: t0.addingTimeInterval(10))
        #expect(released == SilenceRelease(channels: ["quiet"], nextEnd: nil))
        let heard = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < heard, !seen.withLock({ $0.contains("quiet") }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(seen.withLock { $0.contains("quiet") })
        // Every held notice is due now, once: b finds them all, and nothing more is released.
        let due = try await b.claim(channel: "quiet", limit: 100, now: t0.addingTimeInterval(11), owner: "b",
                                    leaseUntil: t0.addingTimeInterval(60))
        #expect(due.count == n && due.allSatisfy { $0.delivery.kind == .notice && $0.delivery.silencedBy == "sil_quiet" })
        #expect(try await b.releaseSilences(now: t0.addingTimeInterval(12)).channels == [])
        listener.cancel()
        await listener.value
    }

    /// The shared rate limiter: whatever two nodes ask for together, no more than the burst plus
    /// what the rate refilled is granted; with none left, it says when the next token comes.
    @Test func sharedRateTokensNeverExceedBurstPlusRefill() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        let rate = 5.0, burst = 10.0
        let steps = 40
        let granted = try await withThrowingTaskGroup(of: Int.self) { group in
            for store in [a, b, a, b] {
                group.addTask {
                    var got = 0
                    for i in 0..<steps {
                        // Simulated time: each step is 0.05 s after the first.
                        let now = t0.addingTimeInterval(Double(i) * 0.05)
                        let answer = try await store.takeRateTokens(channel: "ch", want: 3, rate: rate, burst: burst, now: now)
                        let (n, next) = try #require(answer)
                        got += n
                        if n == 0 { #expect(next != nil && next! > now, "step \(i): next \(String(describing: next?.timeIntervalSince1970)) now \(now.timeIntervalSince1970)") }
                    }
                    return got
                }
            }
            var total = 0
            for try await n in group { total += n }
            return total
        }
        let elapsed = Double(steps - 1) * 0.05
        #expect(granted <= Int(burst + rate * elapsed), "granted \(granted)")
        #expect(granted >= Int(burst), "the burst is available at once: \(granted)")
        // Empty now: none granted, and the next whole token is 1/rate away at most.
        let later = t0.addingTimeInterval(elapsed)
        let drained = try #require(try await a.takeRateTokens(channel: "ch", want: 100, rate: rate, burst: burst, now: later))
        let empty = try #require(try await b.takeRateTokens(channel: "ch", want: 1, rate: rate, burst: burst, now: later))
        // No token is lost or made twice. The bucket never refilled past the burst (each taker
        // asks for 3 a step, the rate refills 0.25 a step), so what the takers got plus what the
        // drain got is every whole token there was: floor(burst + rate × elapsed) = floor(19.75).
        #expect(granted + drained.granted == Int(burst + rate * elapsed), "granted \(granted), drained \(drained.granted)")
        #expect(empty.granted == 0)
        let wait = try #require(empty.nextAt).timeIntervalSince(later)
        #expect(wait > 0 && wait <= 1 / rate + 1e-9)
        // Another channel has its own bucket.
        #expect(try await a.takeRateTokens(channel: "other", want: 3, rate: rate, burst: burst, now: later)?.granted == 3)
    }

    @Test func anUnmigratedDatabaseIsRefusedWithoutMigrate() async throws {
        let url = try await TestPostgres.freshDatabase()
        do {
            _ = try await PostgresStore.open(url: url, migrate: false)
            Issue.record("opened a database without a schema")
        } catch let error as StoreError {
            #expect(error.isNotMigrated)
            #expect(error.description.contains("herald migrate --store URL"))
        }
        #expect(try await PostgresStore.migrate(url: url) == (from: 0, to: PostgresStore.schemaVersion))
        #expect(try await PostgresStore.migrate(url: url) == (from: PostgresStore.schemaVersion, to: PostgresStore.schemaVersion))
        let store = try await PostgresStore.open(url: url, migrate: false)
        await store.close()
    }

    /// A resolve planned on one node and outcomes recorded on another, for the same incidents at
    /// the same moment, take the deliveries' row locks in one order: they queue behind each other
    /// and never deadlock (a deadlock costs the server's deadlock_timeout, 1 s, before one of them
    /// is aborted and tried again — seen as 1 s resolves in a three-node cluster). The server counts
    /// deadlocks in pg_stat_database, flushed when the nodes' connections end.
    @Test func resolvesAndOutcomesOnTwoNodesNeverDeadlock() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        let channels = (0..<6).map { "ch\($0)" }
        let incidents = (0..<60).map { "inc\($0)" }
        var rng = SystemRandomNumberGenerator()
        for round in 0..<4 {
            let now = t0.addingTimeInterval(Double(round) * 10)
            _ = try await a.enqueue(incidents.map { EnqueueRequest(event: event($0), channels: channels) }, now: now)
            var claimed: [ClaimedDelivery] = []
            for channel in channels {
                claimed += try await a.claim(channel: channel, limit: 1000, now: now.addingTimeInterval(1), owner: "a",
                                             leaseUntil: now.addingTimeInterval(60))
            }
            #expect(claimed.count >= incidents.count * channels.count, "every notice (and the last round's all-clears)")
            let records = claimed.shuffled(using: &rng).map {
                AttemptRecord(deliveryId: $0.delivery.id, lease: $0.lease, startedAt: now.addingTimeInterval(1), duration: .milliseconds(5),
                              outcome: .delivered(reference: nil), status: 200)
            }
            let resolves = incidents.shuffled(using: &rng).map { EnqueueRequest(event: event($0, .resolved), channels: channels) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for part in stride(from: 0, to: records.count, by: 24).map({ Array(records[$0..<min($0 + 24, records.count)]) }) {
                    group.addTask { try await a.record(part, now: now.addingTimeInterval(2)) }
                }
                for part in stride(from: 0, to: resolves.count, by: 6).map({ Array(resolves[$0..<min($0 + 6, resolves.count)]) }) {
                    group.addTask { _ = try await b.enqueue(part, now: now.addingTimeInterval(2)) }
                }
                try await group.waitForAll()
            }
        }
        await a.close()
        await b.close()
        // The nodes' backends report their deadlocks as they exit.
        let database = try #require(URLComponents(string: url)?.path.dropFirst())
        for _ in 0..<200 {
            if try await PostgresStore.integer(url: url, """
                SELECT count(*) FROM pg_stat_activity WHERE datname = '\(database)' AND pid <> pg_backend_pid()
                """) == 0 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let deadlocks = try await PostgresStore.integer(url: url, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        #expect(deadlocks == 0, "the server broke \(deadlocks) deadlocks between resolves and outcomes")
    }

    /// An operation whose connection the server ends fails then, with a connection error, even
    /// when no answer to its query ever comes — as a query did across a database restart under load,
    /// until the operation's 30 s clock. Here the body waits for an answer that never comes (a
    /// sleep) while the server ends its connection.
    @Test func anOperationWhoseConnectionEndsFailsThen() async throws {
        let url = try await TestPostgres.freshDatabase()
        let store = try await PostgresStore.open(url: url, migrate: true)
        let pid = Mutex<Int32?>(nil)
        let operation = Task {
            try await store.withConnection { connection in
                let rows = try await connection.query("SELECT pg_backend_pid()", logger: store.logger)
                for try await (backend) in rows.decode(Int32.self) { pid.withLock { $0 = backend } }
                try await Task.sleep(for: .seconds(120))
            }
        }
        var backend: Int32?
        for _ in 0..<500 where backend == nil {
            backend = pid.withLock { $0 }
            if backend == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let victim = try #require(backend, "the operation never ran")
        try await PostgresStore.execute(url: url, "SELECT pg_terminate_backend(\(victim))")
        do {
            try await operation.value
            Issue.record("the operation succeeded on a connection the server ended")
        } catch {
            #expect("\(error)".contains("database connection lost"), "\(error)")
        }
        // The pool replaces the connection: the next operation works.
        let one = try await store.withConnection { connection in
            let rows = try await connection.query("SELECT 1", logger: store.logger)
            var got = 0
            for try await (v) in rows.decode(Int.self) { got = v }
            return got
        }
        #expect(one == 1)
        await store.close()
    }

    @Test func aNewerSchemaIsRefused() async throws {
        let url = try await TestPostgres.freshDatabase()
        _ = try await PostgresStore.migrate(url: url)
        try await PostgresStore.execute(url: url, "UPDATE herald_schema SET version = \(PostgresStore.schemaVersion + 1)")
        for migrate in [false, true] {
            do {
                _ = try await PostgresStore.open(url: url, migrate: migrate)
                Issue.record("opened a schema newer than this herald (migrate: \(migrate))")
            } catch let error as StoreError {
                #expect(error.isSchemaTooNew, "\(error)")
            }
        }
    }
}

/// What needs no server: URL handling, and failing fast (without the password) on a closed port.
@Suite struct PostgresOfflineTests {
    /// Nothing listens on the port: refused with the server's reason — the refusal itself, not
    /// the connect deadline running out — and the error names the server but never the password.
    /// (It asserted the whole open took under 6 s, the deadline; the suite's own load made it
    /// 7.1 s once, while the refusal was immediate.)
    @Test func anUnreachableServerFailsFastWithoutThePassword() async throws {
        let port = try freePort()
        let secret = "s3cr3t-Pa55"
        let started = ContinuousClock.now
        do {
            _ = try await PostgresStore.open(url: "postgres://herald:\(secret)@127.0.0.1:\(port)/herald?sslmode=disable",
                                             migrate: true)
            Issue.record("opened a store on a closed port")
        } catch let error as StoreError {
            #expect(error.isCannotOpen, "\(error)")
            #expect(!error.description.contains(secret))
            #expect(!String(reflecting: error).contains(secret))
            #expect(error.description.contains("127.0.0.1:\(port)"))
            #expect(error.description.localizedCaseInsensitiveContains("refused"), "\(error)")
            #expect(!error.description.contains("no answer within"), "\(error)")
        }
        print("a refused connection failed the open after \(ContinuousClock.now - started)")
        // A malformed URL does not echo the password either.
        do {
            _ = try await PostgresStore.open(url: "mysql://herald:\(secret)@127.0.0.1/x", migrate: false)
            Issue.record("accepted another scheme")
        } catch let error as StoreError {
            #expect(!error.description.contains(secret), "\(error)")
        }
    }

    @Test func urlParsingAndRedaction() throws {
        let u = try PostgresURL("postgres://app%40x:p%2Fss@db.example:6543/herald?sslmode=require&connect_timeout=2")
        #expect(u.user == "app@x" && u.password == "p/ss" && u.host == "db.example" && u.port == 6543 && u.database == "herald")
        #expect(u.sslMode == .require && u.connectTimeout == .seconds(2))
        #expect(u.redacted == "postgres://app@x:***@db.example:6543/herald")
        #expect(u.redact("auth failed for p/ss and p%2Fss") == "auth failed for *** and ***")
        let d = try PostgresURL("postgresql://herald@127.0.0.1/")
        #expect(d.port == 5432 && d.database == "herald" && d.password == nil && d.sslMode == .prefer)
        let s = try PostgresURL("postgres://herald@/db?host=/tmp/pg")
        #expect(s.socketDirectory == "/tmp/pg")
        #expect(throws: StoreError.self) { try PostgresURL("postgres://h@x/db?bogus=1") }
    }

    private func freePort() throws -> Int {
        // Bind port 0, read the port, close: nothing listens there afterwards.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// Two nodes enqueueing the same incidents at once: incident rows are locked in one order, so
/// batches wait for each other instead of deadlocking, and each cycle moves exactly once.
@Suite(.enabled(if: TestPostgres.isConfigured, TestPostgres.disabledReason))
struct PostgresConcurrentEnqueueTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ incident: String, _ status: EventStatus) -> Event {
        Event(id: Identifier.make(prefix: "evt", at: t0), incident: incident, status: status, severity: .critical,
              title: "down", occurredAt: t0, receivedAt: t0)
    }

    @Test func overlappingBatchesFromTwoNodes() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        let keys = (0..<12).map { "k\($0)" }
        let batches = 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<batches {
                let store = n % 2 == 0 ? a : b
                // Each batch names the keys in another order.
                let order = n % 2 == 0 ? keys : keys.reversed()
                group.addTask {
                    let results = try await store.enqueue(order.map { EnqueueRequest(event: self.event($0, .triggered), channels: ["ch"]) },
                                                          now: self.t0)
                    #expect(results.count == keys.count)
                }
            }
            try await group.waitForAll()
        }
        for key in keys {
            let detail = try #require(try await a.incident(key: key))
            #expect(detail.incident.cycle == 1 && detail.incident.status == .open)
            #expect(detail.events.count == batches)
            // The first trigger pages; every repeat, from either node, is counted and pages nobody.
            #expect(detail.deliveries.count == 1)
            #expect(detail.incident.triggers == batches)
        }
    }

    @Test func concurrentResolvesMakeOneAllClear() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresStore.open(url: url, migrate: true)
        let b = try await PostgresStore.open(url: url, migrate: false)
        defer { Task { await a.close(); await b.close() } }
        _ = try await a.enqueue([EnqueueRequest(event: event("dns", .triggered), channels: ["ch"])], now: t0)
        let notice = try await a.claim(channel: "ch", limit: 1, now: t0, owner: "a", leaseUntil: t0.addingTimeInterval(60))
        try await a.record([AttemptRecord(deliveryId: notice[0].delivery.id, lease: notice[0].lease, startedAt: t0, duration: .zero,
                                          outcome: .delivered(reference: "m1"))], now: t0)
        let results = try await withThrowingTaskGroup(of: [EnqueueResult].self) { group in
            for n in 0..<6 {
                let store = n % 2 == 0 ? a : b
                group.addTask { try await store.enqueue([EnqueueRequest(event: self.event("dns", .resolved), channels: ["ch"])], now: self.t0) }
            }
            var all: [EnqueueResult] = []
            for try await r in group { all += r }
            return all
        }
        let created = results.map { if case .accepted(let a) = $0 { return a.deliveries } else { return -1 } }
        #expect(created.sorted() == [0, 0, 0, 0, 0, 1])
        let clears = try await a.deliveries(DeliveryFilter(incident: "dns")).filter { $0.kind == .allClear }
        #expect(clears.count == 1)
    }
}

/// PostgreSQL over TLS with a private CA (scripts/test starts the test server with `PG_TLS=1`):
/// `verify-full` against the right CA connects, against another CA is refused before any query,
/// and a role that authenticates by certificate logs in with `sslcert`/`sslkey`.
@Suite(.enabled(if: TestPostgres.isConfigured && TestPostgres.tls != nil, "set HERALD_TEST_POSTGRES_TLS (scripts/test does)"))
struct PostgresTLSTests {
    static func url(_ base: String, user: String? = nil, _ query: String) -> String {
        var parts = URLComponents(string: base)!
        if let user { parts.user = user }
        return parts.string! + "?" + query
    }

    @Test func verifyFullWithThePrivateCAConnects() async throws {
        let tls = try #require(TestPostgres.tls)
        let store = try await PostgresStore.open(url: Self.url(try await TestPostgres.freshDatabase(),
                                                               "sslmode=verify-full&sslrootcert=\(tls)/ca.crt"), migrate: true)
        #expect(try await store.incidents(limit: 1).isEmpty)
        await store.close()
    }

    @Test func verifyFullWithAnotherCAIsRefused() async throws {
        let tls = try #require(TestPostgres.tls)
        do {
            let store = try await PostgresStore.open(url: Self.url(try await TestPostgres.freshDatabase(),
                                                                   "sslmode=verify-full&sslrootcert=\(tls)/other-ca.crt"), migrate: true)
            await store.close()
            Issue.record("a server whose certificate another CA signed was accepted")
        } catch let error as StoreError {
            #expect(error.isCannotOpen, "\(error)")
            #expect(error.description.lowercased().contains("certificate"), "\(error)")
        }
    }

    @Test func aClientCertificateLogsIn() async throws {
        let tls = try #require(TestPostgres.tls)
        let base = try await TestPostgres.freshDatabase()
        let store = try await PostgresStore.open(
            url: Self.url(base, user: "herald_cert", "sslmode=verify-full&sslrootcert=\(tls)/ca.crt&sslcert=\(tls)/client.crt&sslkey=\(tls)/client.key"),
            migrate: true)
        #expect(try await store.incidents(limit: 1).isEmpty)
        await store.close()
        // The same role without its certificate is refused.
        await #expect(throws: StoreError.self) {
            try await PostgresStore.open(url: Self.url(base, user: "herald_cert", "sslmode=verify-full&sslrootcert=\(tls)/ca.crt"), migrate: false)
        }
    }

    @Test func tlsParametersAreCheckedBeforeConnecting() async throws {
        let base = try #require(TestPostgres.url)
        for (query, says) in [("sslcert=/etc/hostname", "give both sslcert and sslkey"),
                              ("sslrootcert=/nonexistent/ca.crt", "sslrootcert: cannot read /nonexistent/ca.crt"),
                              ("connect_timeout=inf", "connect_timeout must be a number of seconds from 0 to 3600")] {
            do {
                _ = try await PostgresStore.open(url: Self.url(base, query), migrate: false)
                Issue.record("\(query) was accepted")
            } catch let error as StoreError {
                #expect(error.description.contains(says), "\(error)")
            }
        }
    }
}
