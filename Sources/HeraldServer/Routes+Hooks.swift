import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// Monitoring tools' native payloads: Alertmanager and Grafana webhooks (bearer token of scope
/// `ingest`, as their `http_config.authorization` / contact point settings send it) and a
/// PagerDuty Events API v2-compatible endpoint (the `routing_key` is the ingest token).
extension HeraldApplication {
    func addHookRoutes(to router: Router<HeraldRequestContext>) {
        router.post("/v1/hooks/alertmanager") { request, context in
            try await self.acceptAlerts(request, context, source: "alertmanager")
        }
        router.post("/v1/hooks/grafana") { request, context in
            try await self.acceptAlerts(request, context, source: "grafana")
        }
        router.post("/v2/enqueue") { request, context in
            try await self.acceptPagerDuty(request, context)
        }
    }

    struct AlertsAccepted: Encodable {
        var events: Int
        var deliveries: Int
        var incidents: [String]
    }

    func acceptAlerts(_ request: Request, _ context: HeraldRequestContext, source: String) async throws -> Response {
        let principal = try auth.require(.ingest, request, context)
        let body = try await readJSONBody(request)
        let now = Date()
        // `?key_labels=alertname,instance` keys incidents on those labels instead of the fingerprint.
        let keyLabels = request.uri.queryParameters["key_labels"].map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let events: [Event]
        do {
            events = try MonitoringPayloads.alertmanager(json: body, source: source, keyLabels: keyLabels,
                                                         idFor: { Identifier.make(prefix: "evt", at: now) }, receivedAt: now)
                .map { var e = $0; e.actor = principal.name; return e }
        } catch let error as InputError {
            throw APIError.badRequest(error.message, field: error.field)
        }
        // All alerts of the call commit in one transaction before the answer: Alertmanager retries
        // the whole group on any failure, and then finds none of it half-stored. A repeat of a
        // firing alert pages nobody; of an already-resolved one, creates nothing.
        let accepted = try await commit(events)
        return JSONBody.response(.accepted, AlertsAccepted(events: events.count, deliveries: accepted.reduce(0) { $0 + $1.deliveries },
                                                           incidents: events.map(\.incident).uniqued()))
    }

    func acceptPagerDuty(_ request: Request, _ context: HeraldRequestContext) async throws -> Response {
        let body = try await readJSONBody(request)
        let now = Date()
        let parsed: MonitoringPayloads.PagerDutyEvent
        do {
            parsed = try MonitoringPayloads.pagerDuty(json: body, id: Identifier.make(prefix: "evt", at: now), receivedAt: now,
                                                      newKey: { Identifier.make(prefix: "dedup", at: now) })
        } catch let error as InputError {
            return JSONBody.response(.badRequest, PagerDutyError(status: "invalid event", message: "Event object is invalid",
                                                                 errors: [error.description]))
        }
        guard let principal = try auth.principal(forToken: parsed.routingKey, from: context.client),
              principal.scopes.contains(.ingest) else {
            return JSONBody.response(.unauthorized, PagerDutyError(status: "invalid event", message: "Invalid routing key",
                                                                   errors: ["routing_key: not an ingest token"]))
        }
        var event = parsed.event
        event.actor = principal.name
        _ = try await commit([event])
        return JSONBody.response(.accepted, ["status": "success", "message": "Event processed", "dedup_key": parsed.dedupKey])
    }

    struct PagerDutyError: Encodable {
        var status: String
        var message: String
        var errors: [String]
    }
}
