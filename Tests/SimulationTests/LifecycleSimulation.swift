import Foundation
@testable import HeraldCore
@testable import HeraldPostgres
@testable import HeraldSQLite
@testable import HeraldStore

/// SplitMix64: a small seeded generator, so a run replays exactly from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A deterministic simulation of Herald's lifecycle against a real store: a seeded script of
/// events (trigger, repeat, escalate, update, acknowledge, resolve, re-trigger, stray events),
/// channels that succeed, fail for now or for good, hang past their lease or answer after it,
/// replays, lease sweeps, restarts (every in-memory thing dropped and the store reopened) and, on
/// PostgreSQL, a second node — all on an injected clock, one step at a time. The receivers keep
/// what reached them; after a final drain the run checks, per target and incident cycle: one
/// notice at most, then updates, then one all-clear threaded onto it, or at most one summary;
/// nothing after the all-clear or summary; an all-clear for every target told, a summary for every
/// target routed but never reached, nothing for the never-routed; nothing lost.
final class LifecycleSimulation {
    enum Backend: Sendable {
        case sqlite
        case postgres(url: String)
    }

    /// What one attempt does, decided when it is claimed.
    enum Behaviour: CaseIterable {
        /// Reaches the receiver; answered in time.
        case succeed
        /// Does not reach the receiver; a 503 comes back.
        case transient
        /// Does not reach the receiver; a 404 comes back.
        case permanent
        /// Does not reach the receiver; no answer ever comes (the lease expires).
        case hang
        /// Reaches the receiver; the answer comes after the lease expired.
        case late
    }

    struct Pending {
        var node: Int
        var item: ClaimedDelivery
        var behaviour: Behaviour
    }

    /// One message as a receiver got it.
    struct Arrival {
        var order: Int
        var deliveryId: String
        var kind: DeliveryKind
        var incident: String
        var cycle: Int
        var thread: String?
        /// When it was sent (the claim's time), and the event it carried.
        var at: Date
        var event: Event
    }

    let seed: UInt64
    let backend: Backend
    let steps: Int
    var rng: SeededRandom
    var now = Date(timeIntervalSince1970: 1_900_000_000)
    var nodes: [(any Store)?] = []
    var sqlitePath = ""
    var pending: [Pending] = []
    var arrivals: [Target: [Arrival]] = [:]
    var order = 0
    var trace: [String] = []
    /// How many steps a failure shows (HERALD_SIM_TRACE sets it).
    let traceLimit = ProcessInfo.processInfo.environment["HERALD_SIM_TRACE"].flatMap(Int.init) ?? 60
    var enqueued = 0
    /// Every silence the operator added, as it now stands (an expiry moves its end).
    var silences: [String: Silence] = [:]

    let keys = ["db", "api", "dns"]
    let channels = ["oncall", "pager", "public", "mail", "sms", "subs"]
    /// Critical incidents are public (`public` is the status page): the subscribers of `subs` hear
    /// of those that name their components, planned page by page (`fanOut`) between the other steps.
    let routing = Routing(routes: [
        Route(channels: ["oncall"]),
        Route(match: .init(severity: [.critical]), channels: ["pager", "public"]),
        Route(match: .init(components: ["db"]), channels: ["mail"]),
    ], recipients: ["mail": ["a@example.com", "b@example.com"]], subscriberChannel: "subs", statusChannels: ["public"])
    /// Subscribers who unsubscribed: they hear nothing more, so the end-of-cycle rules skip them.
    var unsubscribed: Set<String> = []
    var subscriberCount = 0
    /// pager falls back to sms when a notice fails for good.
    let fallback: [String: [Target]] = ["pager": [Target(channel: "sms")]]
    let policy = RetryPolicy(initial: .seconds(1), max: .seconds(20), maxAttempts: 4, maxAge: .seconds(3600))
    let lease: TimeInterval = 30
    /// How likely each behaviour is, per channel (succeed, transient, permanent, hang, late).
    let weights: [String: [Int]] = [
        "oncall": [80, 10, 2, 4, 4], "pager": [50, 20, 15, 8, 7], "public": [85, 10, 1, 2, 2],
        "mail": [60, 20, 8, 6, 6], "sms": [85, 10, 1, 2, 2], "subs": [70, 15, 5, 5, 5],
    ]

    init(seed: UInt64, backend: Backend, steps: Int) {
        self.seed = seed
        self.backend = backend
        self.steps = steps
        rng = SeededRandom(seed: seed)
    }

    // MARK: Running

    func run() async throws -> [String] {
        try await open()
        for components in [[], ["db"], ["web"], ["db", "web"]] { try await subscribe(components) }
        for _ in 0..<steps {
            try await step()
        }
        try await drain()
        let problems = try await check()
        for node in nodes { await node?.close() }
        return problems
    }

    var nodeCount: Int {
        if case .postgres = backend { return 2 }
        return 1
    }

    func open() async throws {
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-sim-\(seed)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            sqlitePath = dir.appendingPathComponent("sim.sqlite").path
            nodes = [try SQLiteStore(path: sqlitePath)]
        case .postgres(let url):
            nodes = [try await PostgresStore.open(url: url, migrate: true)]
            nodes.append(try await PostgresStore.open(url: url, migrate: false))
        }
    }

    func store(_ n: Int) -> any Store { nodes[n]! }

    func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }
    func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

    func step() async throws {
        let roll = Int.random(in: 0..<100, using: &rng)
        switch roll {
        case 0..<14: try await sendEvents()
        case 14..<50: try await claim(node: Int.random(in: 0..<nodeCount, using: &rng), channel: pick(channels))
        case 50..<78: try await answer()
        case 78..<85: advance(by: Double.random(in: 0.2...45, using: &rng))
        case 85: try await addSilence()
        case 86: try await expireSilence()
        case 87..<89: try await sweep()
        case 89..<91: try await fanOut(limit: 2)
        case 91: try await (chance(50) ? subscribe(chance(50) ? [] : [pick(["db", "web"])]) : unsubscribe())
        case 92..<95: try await replay()
        case 95..<98: try await restart(node: Int.random(in: 0..<nodeCount, using: &rng))
        default: try await drainNode(Int.random(in: 0..<nodeCount, using: &rng))
        }
    }

    func note(_ s: String) {
        trace.append("t+\(Int(now.timeIntervalSince1970 - 1_900_000_000)) \(s)")
        if trace.count > traceLimit { trace.removeFirst() }
    }

    func advance(by seconds: TimeInterval) {
        now = now.addingTimeInterval(seconds)
    }

    /// An operator silences some incidents (or everything on some channels) for a while, from
    /// now or a little later.
    func addSilence() async throws {
        let matchers = ["component=db", "severity=critical", "incident=~\"db|api\"", "incident=dns", "component!=web"]
        var chosen = try (0..<Int.random(in: 0...2, using: &rng)).map { _ in try SilenceMatcher(parsing: pick(matchers)) }
        var silenced = chance(50) ? [] : Array(Set((0..<Int.random(in: 1...2, using: &rng)).map { _ in pick(channels) })).sorted()
        if chosen.isEmpty && silenced.isEmpty { chosen = [try SilenceMatcher(parsing: pick(matchers))] }
        if chance(20) { silenced = [] }
        let start = now.addingTimeInterval(chance(70) ? 0 : Double.random(in: 1...20, using: &rng))
        let silence = Silence(id: Identifier.make(prefix: "sil", at: now), matchers: chosen, channels: silenced, startsAt: start,
                              endsAt: start.addingTimeInterval(Double.random(in: 10...200, using: &rng)), createdBy: "sim",
                              comment: "sim", createdAt: now)
        try await store(Int.random(in: 0..<nodeCount, using: &rng)).addSilence(silence)
        silences[silence.id] = silence
        note("silence \(silence.id.suffix(6)) \(chosen.map(\.description)) on \(silenced) until t+\(Int(silence.endsAt.timeIntervalSince1970 - 1_900_000_000))")
    }

    func expireSilence() async throws {
        guard let id = silences.values.filter({ $0.endsAt > now }).map(\.id).sorted().randomElement(using: &rng) else { return }
        let expired = try await store(Int.random(in: 0..<nodeCount, using: &rng)).expireSilence(id: id, now: now)
        silences[id] = expired
        note("silence \(id.suffix(6)) expired")
        try await releaseSilences()
    }

    /// What the dispatcher does at a silence's end and on each sweep.
    func releaseSilences() async throws {
        let released = try await store(Int.random(in: 0..<nodeCount, using: &rng)).releaseSilences(now: now)
        if !released.channels.isEmpty { note("silences over: \(released.channels) due") }
    }

    /// A sign-up, confirmed at once (a joiner when an incident is open).
    func subscribe(_ components: [String]) async throws {
        subscriberCount += 1
        let id = String(format: "sub_%04d", subscriberCount)
        let s = Subscriber(id: id, address: "\(id)@example.com", components: components, createdAt: now, confirmedAt: nil, token: "tok-\(id)")
        let store = store(Int.random(in: 0..<nodeCount, using: &rng))
        _ = try await store.addSubscriber(s, confirmHash: "hash-\(id)", now: now)
        _ = try await store.confirmSubscriber(confirmHash: "hash-\(id)", now: now)
        note("subscribe \(id) \(components)")
    }

    func unsubscribe() async throws {
        let ids = (1...max(1, subscriberCount)).map { String(format: "sub_%04d", $0) }.filter { !unsubscribed.contains($0) }
        guard let id = ids.randomElement(using: &rng) else { return }
        _ = try await store(Int.random(in: 0..<nodeCount, using: &rng)).removeSubscriber(id: id, now: now)
        unsubscribed.insert(id)
        note("unsubscribe \(id)")
    }

    /// One page of the subscribers' fan-out, or all of it.
    func fanOut(limit: Int, all: Bool = false) async throws {
        repeat {
            let step = try await store(Int.random(in: 0..<nodeCount, using: &rng)).fanOut(channel: "subs", limit: limit, now: now)
            if step.created > 0 { note("fan-out +\(step.created)\(step.more ? ", more" : "")") }
            if !step.more { return }
        } while all
    }

    /// One to three events in one enqueue (a monitoring call's alerts commit together).
    func sendEvents() async throws {
        var batch: [EnqueueRequest] = []
        for _ in 0..<(chance(75) ? 1 : Int.random(in: 2...3, using: &rng)) {
            let key = pick(keys)
            let status: EventStatus
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<45: status = .triggered
            case 45..<63: status = .updated
            case 63..<73: status = .acknowledged
            default: status = .resolved
            }
            var omitted: Set<Event.Field> = []
            let severity: Severity = chance(35) ? .critical : .major
            if status != .triggered || chance(20) { if chance(60) { omitted.insert(.severity) } }
            var components: [String] = []
            if chance(40) { components.append("db") }
            if chance(30) { components.append("web") }
            if components.isEmpty && chance(50) { omitted.insert(.components) }
            let event = Event(id: Identifier.make(prefix: "evt", at: now), incident: key, status: status, severity: severity,
                              title: "\(key) \(status.rawValue)", components: components, occurredAt: now, receivedAt: now,
                              actor: status == .acknowledged ? "alice" : nil, omitted: omitted)
            batch.append(EnqueueRequest(event: event, routing: routing))
        }
        let results = try await store(Int.random(in: 0..<nodeCount, using: &rng)).enqueue(batch, now: now)
        enqueued += batch.count
        for (request, result) in zip(batch, results) {
            guard case .accepted(let a) = result else { throw SimulationError("event not accepted: \(result)") }
            note("\(request.event.incident) \(request.event.status.rawValue) sev=\(request.event.severity.rawValue) "
                 + "omit=\(request.event.omitted.map(\.rawValue).sorted()) comps=\(request.event.components) → \(a.transition ?? "?") +\(a.deliveries)")
        }
        advance(by: 0.05)
    }

    func behaviour(for channel: String) -> Behaviour {
        let w = weights[channel] ?? [100, 0, 0, 0, 0]
        var r = Int.random(in: 0..<w.reduce(0, +), using: &rng)
        for (i, weight) in w.enumerated() {
            if r < weight { return Behaviour.allCases[i] }
            r -= weight
        }
        return .succeed
    }

    func claim(node: Int, channel: String, behaviour fixed: Behaviour? = nil, limit: Int? = nil) async throws {
        let claimed = try await store(node).claim(channel: channel, limit: limit ?? Int.random(in: 1...3, using: &rng), now: now,
                                                  owner: "node\(node)", leaseUntil: now.addingTimeInterval(lease))
        for item in claimed {
            let b = fixed ?? behaviour(for: channel)
            let d = item.delivery
            let target = Target(channel: d.channel, recipient: d.recipient)
            if b == .succeed || b == .late {
                order += 1
                arrivals[target, default: []].append(Arrival(order: order, deliveryId: d.id, kind: d.kind, incident: d.incident,
                                                             cycle: d.cycle, thread: item.thread, at: now, event: item.event))
            }
            note("node\(node) claims \(d.kind.rawValue) \(d.incident)#\(d.cycle) → \(target) [\(b)] \(d.id.suffix(6))")
            pending.append(Pending(node: node, item: item, behaviour: b))
        }
    }

    /// The answer of one attempt in flight (a hung one never answers; a late one only after its lease).
    func answer(_ index: Int? = nil) async throws {
        let candidates = pending.indices.filter { pending[$0].behaviour != .hang }
        guard let i = index ?? candidates.randomElement(using: &rng) else { return }
        let p = pending.remove(at: i)
        if p.behaviour == .late {
            // Its lease runs out first, and the sweep hands the delivery back.
            advance(by: lease + 1)
            try await sweep()
        }
        let d = p.item.delivery
        let outcome: DeliveryOutcome
        switch p.behaviour {
        case .succeed, .late:
            outcome = .delivered(reference: "r:\(d.id)")
        case .transient:
            outcome = DeliveryLifecycle.judge(.transient(.serverError, status: 503, "HTTP 503"), attempts: p.item.budgetAttempts + 1,
                                              since: p.item.budgetSince, now: now, policy: policy,
                                              random: Double.random(in: 0...1, using: &rng))
        case .permanent:
            outcome = .failed(reason: "clientError 404")
        case .hang:
            return
        }
        let fallbackTargets = d.kind == .notice ? fallback[d.channel] ?? [] : []
        try await store(p.node).record([AttemptRecord(deliveryId: d.id, lease: p.item.lease, startedAt: now, duration: .milliseconds(5),
                                                      outcome: outcome, fallback: fallbackTargets)], now: now)
        note("answer \(d.kind.rawValue) \(d.id.suffix(6)): \(outcome)")
        advance(by: 0.01)
    }

    func sweep() async throws {
        let back = try await store(0).releaseLeases(expiredBefore: now, owner: nil)
        if !back.isEmpty { note("sweep: \(back)") }
        try await releaseSilences()
        // Whatever was in flight under an expired lease is the sweeper's now: its old answers are late.
    }

    func replay() async throws {
        let r = try await store(Int.random(in: 0..<nodeCount, using: &rng)).replay(ids: nil, filter: DeliveryFilter(), dryRun: false, now: now)
        if r.count > 0 || !r.skipped.isEmpty { note("replay \(r.count), skipped \(r.skipped.count)") }
    }

    /// A crash and restart: the node's attempts in flight are gone (those that reached a receiver
    /// stay received), its store is closed and opened again. One process owns a SQLite file, so it
    /// takes back everything in flight at start; a PostgreSQL node waits for the leases to expire.
    func restart(node: Int) async throws {
        pending.removeAll { $0.node == node }
        await nodes[node]?.close()
        nodes[node] = nil
        switch backend {
        case .sqlite:
            // A crashed process's file lock goes with the process; here it goes with the old
            // instance's last reference, which a task still finishing may hold a moment longer.
            let deadline = ContinuousClock.now + .seconds(30)
            while nodes[node] == nil {
                do {
                    nodes[node] = try SQLiteStore(path: sqlitePath)
                } catch let error as StoreError where ContinuousClock.now < deadline {
                    guard error.isLocked else { throw error }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            _ = try await store(node).releaseLeases(expiredBefore: nil, owner: nil)
        case .postgres(let url):
            nodes[node] = try await PostgresStore.open(url: url, migrate: false)
        }
        note("node\(node) restarted")
    }

    /// A graceful stop: the node's attempts still running are abandoned and released at once.
    func drainNode(_ node: Int) async throws {
        pending.removeAll { $0.node == node }
        _ = try await store(node).releaseLeases(expiredBefore: nil, owner: "node\(node)")
        note("node\(node) drained")
    }

    /// No new events: every pending answer comes in, failures are replayed, and every channel is
    /// drained with receivers that accept everything, until nothing is waiting.
    func drain() async throws {
        note("— drain —")
        while let i = pending.indices.first(where: { pending[$0].behaviour != .hang }) {
            try await answer(i)
        }
        pending.removeAll()
        // Every silence is over before the drain: what they held must go out (or be superseded).
        if let last = silences.values.map(\.endsAt).max(), last > now { now = last.addingTimeInterval(1) }
        for _ in 0..<100 {
            advance(by: policy.max.seconds + lease + 1)
            try await fanOut(limit: 100, all: true)
            try await sweep()
            try await replay()
            for channel in channels {
                try await claim(node: 0, channel: channel, behaviour: .succeed, limit: 500)
            }
            while !pending.isEmpty { try await answer(0) }
            let counts = try await store(0).countsByState()
            if (counts[.queued] ?? 0) + (counts[.retrying] ?? 0) + (counts[.inFlight] ?? 0) == 0 { return }
        }
        // Waiting deliveries that never become due would show up in the checks below.
    }

    // MARK: Checking

    /// What the run did, for the eye: arrivals by kind, and the deliveries' final states.
    var stats = ""

    func check() async throws -> [String] {
        var problems: [String] = []
        var kinds: [String: Int] = [:]
        for list in arrivals.values { for a in list { kinds[a.kind.rawValue, default: 0] += 1 } }
        let counts = try await store(0).countsByState()
        for state in [DeliveryState.queued, .retrying, .inFlight, .silenced] where (counts[state] ?? 0) > 0 {
            problems.append("\(counts[state]!) deliveries still \(state.rawValue) after the drain (lost work)")
        }
        var all: [Delivery] = []
        for key in keys {
            all += try await store(0).deliveries(DeliveryFilter(incident: key, limit: 100_000))
        }
        let byId = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
        var states: [String: Int] = [:]
        for d in all { states["\(d.kind.rawValue):\(d.state.rawValue)", default: 0] += 1 }
        stats = "events \(enqueued); arrived \(kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); "
            + "deliveries \(states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); "
            + "silences \(silences.count), notices held \(all.filter { $0.silencedBy != nil }.count) "
            + "(sent after \(all.filter { $0.silencedBy != nil && $0.state == .delivered }.count)); "
            + "subscribers \(subscriberCount) (left \(unsubscribed.count)), their deliveries \(all.filter { $0.channel == "subs" }.count)"
        var incidents: [String: Incident] = [:]
        for key in keys { incidents[key] = try await store(0).incident(key: key)?.incident }
        func closed(_ incident: String, _ cycle: Int) -> Bool {
            guard let i = incidents[incident] else { return true }
            return cycle < i.cycle || i.status == .resolved
        }
        struct Cycle: Hashable {
            var incident: String
            var cycle: Int
        }
        // Per target and cycle: what arrived, first arrival of each delivery.
        for (target, list) in arrivals {
            var seen: Set<String> = []
            var byCycle: [Cycle: [Arrival]] = [:]
            for a in list.sorted(by: { $0.order < $1.order }) where seen.insert(a.deliveryId).inserted {
                byCycle[Cycle(incident: a.incident, cycle: a.cycle), default: []].append(a)
            }
            for (c, got) in byCycle {
                let label = "\(target) \(c.incident)#\(c.cycle)"
                let kinds = got.map(\.kind.rawValue)
                let notices = got.filter { $0.kind == .notice }
                if notices.count > 1 { problems.append("\(label): \(notices.count) notices: \(kinds)") }
                let ends = got.filter { $0.kind.isResolution }
                if ends.count > 1 { problems.append("\(label): \(ends.count) all-clears/summaries: \(kinds)") }
                if let end = got.firstIndex(where: { $0.kind.isResolution }), got[(end + 1)...].contains(where: { !$0.kind.isResolution }) {
                    problems.append("\(label): a notice or update after the all-clear: \(kinds)")
                }
                if let firstUpdate = got.firstIndex(where: { $0.kind == .update }),
                   !got[..<firstUpdate].contains(where: { $0.kind == .notice }) {
                    problems.append("\(label): an update before any notice: \(kinds)")
                }
                let acknowledged = notices.first.map { byId[$0.deliveryId]?.state == .delivered } ?? false
                // A silenced notice goes out only once the silence that held it last has ended, or no
                // longer matches the incident as it stands (an escalation lets it go at once).
                for n in notices {
                    if let by = byId[n.deliveryId]?.silencedBy, let s = silences[by], s.silences(n.event, channel: target.channel, at: n.at) {
                        problems.append("\(label): a notice sent at t+\(Int(n.at.timeIntervalSince1970 - 1_900_000_000)) while \(by) held it")
                    }
                }
                for end in ends {
                    if end.kind == .allClear {
                        guard let notice = notices.first, acknowledged else {
                            problems.append("\(label): an all-clear without a notice Herald knows arrived: \(kinds)")
                            continue
                        }
                        if end.thread != "r:\(notice.deliveryId)" {
                            problems.append("\(label): all-clear threaded onto \(end.thread ?? "nothing"), not its notice")
                        }
                    } else if acknowledged {
                        problems.append("\(label): a summary to a target whose notice was delivered: \(kinds)")
                    }
                }
            }
        }
        // Every resolved cycle: an all-clear for each target told, a summary for each routed but
        // never reached (unless a fallback took it over), nothing for a target never routed.
        var routed: [Cycle: [Target: [Delivery]]] = [:]
        for d in all {
            routed[Cycle(incident: d.incident, cycle: d.cycle), default: [:]][Target(channel: d.channel, recipient: d.recipient), default: []].append(d)
        }
        for (c, targets) in routed where closed(c.incident, c.cycle) {
            for (target, list) in targets where !unsubscribed.contains(target.recipient ?? "") {
                let label = "\(target) \(c.incident)#\(c.cycle)"
                let notices = list.filter { $0.kind == .notice }
                let ends = list.filter { $0.kind.isResolution }
                if notices.isEmpty {
                    if !list.isEmpty { problems.append("\(label): deliveries without a notice in the cycle: \(list.map(\.kind.rawValue))") }
                    continue
                }
                let told = notices.contains { $0.state == .delivered }
                let clears = ends.filter { $0.kind == .allClear && $0.state == .delivered }
                let summaries = ends.filter { $0.kind == .summary && $0.state == .delivered }
                if told {
                    if clears.count != 1 || !summaries.isEmpty {
                        problems.append("\(label): told, but \(clears.count) all-clears and \(summaries.count) summaries delivered")
                    }
                } else if isHandedOver(notices, all: all) {
                    // Normally nothing (the fallback's target is followed instead); a summary when its
                    // notice was replayed and in flight at the resolve, then never arrived.
                    if !clears.isEmpty || summaries.count > 1 {
                        problems.append("\(label): handed to a fallback, yet \(clears.count) all-clears and \(summaries.count) summaries")
                    }
                } else if notices.contains(where: { $0.silencedBy != nil }) {
                    // Silenced at the resolve: nothing; released before it and not reached: one summary.
                    if summaries.count > 1 || !clears.isEmpty {
                        problems.append("\(label): silenced, never told, yet \(clears.count) all-clears and \(summaries.count) summaries")
                    }
                } else if summaries.count != 1 || !clears.isEmpty {
                    problems.append("\(label): routed, never reached, but \(summaries.count) summaries and \(clears.count) all-clears delivered")
                }
            }
        }
        return problems
    }

    /// Whether a fallback took this target's failed notice over: pager's fallback (sms) has a
    /// notice of the same cycle, made after it (the store's `fallback_of`, which the admin API does not show).
    func isHandedOver(_ notices: [Delivery], all: [Delivery]) -> Bool {
        for n in notices where n.state == .failed || n.state == .superseded {
            // sms is only ever a fallback; its notice may carry a later event than the failed one
            // (a silence held it, and a held notice carries the incident's latest trigger or update).
            if all.contains(where: { $0.kind == .notice && $0.incident == n.incident && $0.cycle == n.cycle && $0.channel == "sms" && n.channel == "pager"
                && $0.createdAt >= n.createdAt }) {
                return true
            }
        }
        return false
    }
}

struct SimulationError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
