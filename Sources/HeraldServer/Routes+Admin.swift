import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension HeraldApplication {
    func addAdminRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/v1/deliveries") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let q = request.uri.queryParameters
            var filter = try Self.filter(state: q["state"].map(String.init), channel: q["channel"].map(String.init),
                                         incident: q["incident"].map(String.init), since: q["since"].map(String.init))
            filter.limit = try Self.limit(q["limit"].map(String.init))
            let deliveries = try await self.store.deliveries(filter)
            return JSONBody.response(.ok, ["deliveries": deliveries])
        }

        router.get("/v1/deliveries/:id") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let id = try Self.pathParameter(context, "id")
            guard let detail = try await self.store.delivery(id: id) else {
                throw APIError.notFound("no delivery \(id)")
            }
            return JSONBody.response(.ok, DeliveryDetailBody(detail))
        }

        router.post("/v1/deliveries/:id/replay") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let result = try await self.replayFailed(try Self.pathParameter(context, "id"))
            return JSONBody.response(.accepted, ReplayBody(result, dryRun: false))
        }

        router.post("/v1/replay") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let fields = try await self.readJSONObject(request)
            let known: Set<String> = ["state", "channel", "incident", "since", "dry_run", "to"]
            if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
                throw APIError.badRequest("unknown field (expected one of: \(known.sorted().joined(separator: ", ")))", field: unknown)
            }
            func string(_ key: String) throws -> String? {
                guard let v = fields[key], !(v is NSNull) else { return nil }
                guard let s = v as? String, !(v is NSNumber) else { throw APIError.badRequest("must be a string", field: key) }
                return s
            }
            var dryRun = false
            if let v = fields["dry_run"], !(v is NSNull) {
                guard let n = v as? NSNumber, isJSONBool(n) else { throw APIError.badRequest("must be true or false", field: "dry_run") }
                dryRun = n.boolValue
            }
            if let to = try string("to") {
                let result = try await self.redirect(from: try string("channel"), to: to, fields: fields, dryRun: dryRun)
                return JSONBody.response(.ok, ReplayBody(result, dryRun: dryRun))
            }
            let state = try string("state")
            if let state, state != DeliveryState.failed.rawValue {
                throw APIError.badRequest("only failed deliveries can be replayed", field: "state")
            }
            let filter = try Self.filter(state: state, channel: try string("channel"), incident: try string("incident"),
                                         since: try string("since"))
            let result = try await self.store.replay(ids: nil, filter: filter, dryRun: dryRun, now: Date())
            if !dryRun { self.dispatcher.wake(channels: result.channels) }
            return JSONBody.response(.ok, ReplayBody(result, dryRun: dryRun))
        }

        // Re-reads the configuration file (as SIGHUP does); a file with a problem changes nothing
        // and the answer says what, as `herald check` prints it.
        router.post("/v1/reload") { request, context in
            _ = try self.auth.require(.admin, request, context)
            do {
                return JSONBody.response(.ok, try await self.reload())
            } catch let errors as ConfigErrors {
                throw APIError.badRequest("configuration not reloaded; the running one is unchanged:\n\(errors.description)")
            } catch let busy as ReloadBusy {
                throw APIError(.conflict, busy.description)
            } catch let error as MessageRenderer.TemplateError {
                throw APIError.badRequest("configuration not reloaded; the running one is unchanged: templates: \(error)")
            }
        }

        router.get("/v1/incidents") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let limit = try Self.limit(request.uri.queryParameters["limit"].map(String.init))
            return JSONBody.response(.ok, ["incidents": try await self.store.incidents(limit: limit)])
        }

        router.get("/v1/incidents/:key") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let key = try Self.pathParameter(context, "key")
            // A public incident's subscribers may be a hundred thousand recipients: summed up, not listed.
            let subscribers = self.routing.subscriberChannel
            guard let detail = try await self.store.incident(key: key, deliveries: true, excluding: subscribers) else {
                throw APIError.notFound("no incident \(key)")
            }
            var counts: [String: Int] = [:]
            if let subscribers {
                counts = try await self.store.deliveryCounts(incident: key, cycle: detail.incident.cycle, channel: subscribers)
            }
            let silenceEnds = try await self.silenceEnds(detail.deliveries)
            return JSONBody.response(.ok, IncidentDetailBody(incident: detail.incident, events: detail.events,
                                                             deliveries: detail.deliveries, silenceEnds: silenceEnds,
                                                             subscribers: counts.isEmpty ? nil : SubscriberCounts(channel: subscribers ?? "",
                                                                                                                  deliveries: counts)))
        }
    }

    /// Re-queues one failed delivery and wakes its lane: 404 when there is none, 409 when it is
    /// not failed or is a follow-up of a cycle that is over (its recipient got the summary).
    func replayFailed(_ id: String) async throws -> ReplayResult {
        guard let detail = try await store.delivery(id: id) else {
            throw APIError.notFound("no delivery \(id)")
        }
        guard detail.delivery.state == .failed else {
            throw APIError(.conflict, "delivery \(id) is \(detail.delivery.state.rawValue); only failed deliveries can be replayed")
        }
        let result = try await store.replay(ids: [id], filter: DeliveryFilter(), dryRun: false, now: Date())
        if result.skipped.contains(id) {
            throw APIError(.conflict, "delivery \(id) is a \(detail.delivery.kind.rawValue) of an incident cycle that is over; "
                           + "its recipient gets the summary instead, so it is not sent again")
        }
        dispatcher.wake(channels: result.channels)
        return result
    }

    /// When the silences that hold (or held) these deliveries end, by id, for the incident report.
    func silenceEnds(_ deliveries: [Delivery]) async throws -> [String: Date] {
        var ends: [String: Date] = [:]
        for id in deliveries.compactMap(\.silencedBy).uniqued() {
            ends[id] = try await store.silence(id: id)?.endsAt
        }
        return ends
    }

    static func filter(state: String?, channel: String?, incident: String?, since: String?) throws -> DeliveryFilter {
        var filter = DeliveryFilter()
        if let state {
            guard let s = DeliveryState(rawValue: state) else {
                throw APIError.badRequest("unknown state \"\(state)\" (expected one of: \(DeliveryState.allCases.map(\.rawValue).joined(separator: ", ")))", field: "state")
            }
            filter.state = s
        }
        filter.channel = channel.flatMap { $0.isEmpty ? nil : $0 }
        filter.incident = incident.flatMap { $0.isEmpty ? nil : $0 }
        if let since, !since.isEmpty {
            if let date = RFC3339.parse(since) {
                filter.since = date
            } else if let ago = Duration(parsing: since) {
                filter.since = Date().addingTimeInterval(-ago.seconds)
            } else {
                throw APIError.badRequest("must be an RFC 3339 time or a duration like 2h, at most 36500d (100 years)", field: "since")
            }
        }
        return filter
    }

    /// A path parameter, percent-decoded: the router hands it over as sent, and clients (the CLI
    /// among them) encode keys such as `alertmanager:abc` or `host/service`.
    static func pathParameter(_ context: HeraldRequestContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }

    /// A query flag: absent or `false`, or `true`; anything else is a 400 naming it.
    static func flag(_ text: String?, field: String) throws -> Bool {
        switch text {
        case nil, "false": return false
        case "true": return true
        default: throw APIError.badRequest("must be true or false", field: field)
        }
    }

    static func limit(_ text: String?) throws -> Int {
        guard let text else { return 100 }
        guard let n = Int(text), (1...1000).contains(n) else {
            throw APIError.badRequest("must be an integer from 1 to 1000", field: "limit")
        }
        return n
    }
}

/// `NSNumber` from JSON is a Bool only when it came from `true`/`false`.
func isJSONBool(_ n: NSNumber) -> Bool {
    String(cString: n.objCType) == "c"
}

struct DeliveryDetailBody: Encodable {
    let detail: DeliveryDetail
    init(_ detail: DeliveryDetail) { self.detail = detail }
    enum K: String, CodingKey { case attempts }
    func encode(to encoder: any Encoder) throws {
        try detail.delivery.encode(to: encoder)
        var c = encoder.container(keyedBy: K.self)
        try c.encode(detail.attempts, forKey: .attempts)
    }
}

struct IncidentDetailBody: Encodable {
    let incident: Incident
    let events: [Event]
    let deliveries: [Delivery]
    var silenceEnds: [String: Date] = [:]
    /// The subscribers channel's deliveries of the cycle, counted (they are not in `deliveries`).
    var subscribers: SubscriberCounts?
    enum K: String, CodingKey { case events, deliveries, recipients, subscribers }
    func encode(to encoder: any Encoder) throws {
        try incident.encode(to: encoder)
        var c = encoder.container(keyedBy: K.self)
        try c.encode(events, forKey: .events)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(IncidentReport(events: events, deliveries: deliveries, silenceEnds: silenceEnds).rows, forKey: .recipients)
        try c.encodeIfPresent(subscribers, forKey: .subscribers)
    }
}

struct SubscriberCounts: Encodable {
    var channel: String
    /// By `kind:state`.
    var deliveries: [String: Int]
}

extension HeraldApplication {
    /// `POST /v1/replay` with `to`: a channel's waiting and failed notices of open incidents go to
    /// another channel (the first was removed from the configuration, or its endpoint is gone).
    func redirect(from channel: String?, to: String, fields: [String: Any], dryRun: Bool) async throws -> ReplayResult {
        guard let channel, !channel.isEmpty else {
            throw APIError.badRequest("required with \"to\": the channel whose notices go elsewhere", field: "channel")
        }
        if let other = ["state", "incident", "since"].first(where: { fields[$0] != nil && !(fields[$0] is NSNull) }) {
            throw APIError.badRequest("not allowed with \"to\": every waiting or failed notice of the channel moves", field: other)
        }
        let (channels, routing) = live.withLock { ($0.channels, $0.routing) }
        guard channels[to] != nil else { throw APIError.badRequest("unknown channel \"\(to)\"", field: "to") }
        guard to != channel else { throw APIError.badRequest("must be another channel than \"channel\"", field: "to") }
        let targets = routing.recipients[to].map { $0.map { Target(channel: to, recipient: $0) } } ?? [Target(channel: to)]
        let result = try await store.redirect(channel: channel, to: targets, dryRun: dryRun, now: Date())
        if !dryRun {
            dispatcher.wake(channels: result.channels)
            if result.count > 0 {
                logger.notice("notices sent to another channel", metadata: [
                    "from": "\(channel)", "to": "\(to)", "notices": "\(result.count)", "left": "\(result.skipped.count)",
                ])
            }
        }
        return result
    }
}

struct ReplayBody: Encodable {
    var replayed: Int
    var dry_run: Bool
    var ids: [String]
    /// Failed notices and updates of cycles that are over, left alone (their recipients got the summary).
    var skipped: Int
    init(_ r: ReplayResult, dryRun: Bool) {
        replayed = r.count
        dry_run = dryRun
        ids = Array(r.ids.prefix(1000))
        skipped = r.skipped.count
    }
}
