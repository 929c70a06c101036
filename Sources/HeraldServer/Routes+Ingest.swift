import Foundation
import HeraldCore
import HeraldStore
import Hummingbird
import Metrics

extension HeraldApplication {
    func addIngestRoutes(to router: Router<HeraldRequestContext>) {
        router.post("/v1/events") { request, context in
            let principal = try self.auth.require(.ingest, request, context)
            let body = try await self.readJSONBody(request)
            let receivedAt = Date()
            var event: Event
            do {
                event = try EventInput.parse(json: body, id: Identifier.make(prefix: "evt", at: receivedAt), receivedAt: receivedAt)
            } catch let error as InputError {
                Counter(label: "herald_events_rejected_total", dimensions: [("reason", "invalid")]).increment()
                throw APIError.badRequest(error.message, field: error.field)
            }
            // `herald send` names itself; everything else posting here is an API client.
            event.source = request.headers[.userAgent]?.hasPrefix("herald/cli") == true ? "cli" : "api"
            if event.actor == nil { event.actor = principal.name }
            let idempotency = try Self.idempotency(request, scope: principal.name, body: body)
            return try await self.accept(event, idempotency: idempotency)
        }
    }

    /// Commits the event and its fan-out (one group commit shared with concurrent senders), wakes
    /// the dispatcher, and only then answers 202.
    func accept(_ event: Event, idempotency: EnqueueRequest.Idempotency?) async throws -> Response {
        JSONBody.response(.accepted, AcceptedBody(try await commit([event], idempotency: idempotency)[0]))
    }

    /// Commits events in one transaction, each through the lifecycle planner, and wakes the lanes
    /// that got work; answers what was committed (or the first answer for a repeated idempotency
    /// key). Throws 409 for a reused key, 400 for data the store refused, 503 when the store fails.
    func commit(_ events: [Event], idempotency: EnqueueRequest.Idempotency? = nil) async throws -> [EnqueueResult.Accepted] {
        let requests = events.enumerated().map { i, event in
            EnqueueRequest(event: event, routing: routing, idempotency: i == 0 ? idempotency : nil)
        }
        let results: [EnqueueResult]
        do {
            results = try await ingest.submit(requests)
        } catch let error as StoreError where error.isRejected {
            logger.warning("store refused an event", metadata: ["error": "\(redactor.redact("\(error)"))"])
            Counter(label: "herald_events_rejected_total", dimensions: [("reason", "store")]).increment()
            throw APIError.badRequest("the store refused this event: \(redactor.redact(error.description))", field: nil)
        } catch {
            logger.error("cannot commit event", metadata: ["error": "\(redactor.redact("\(error)"))"])
            throw APIError(.serviceUnavailable, "store unavailable; retry later", headers: [.retryAfter: "5"])
        }
        var accepted: [EnqueueResult.Accepted] = []
        for (event, result) in zip(events, results) {
            switch result {
            case .accepted(let a):
                dispatcher.wake(channels: a.channels)
                if a.fansOut == true { fanOut.signal() }
                Counter(label: "herald_events_received_total", dimensions: [("status", event.status.rawValue)]).increment()
                accepted.append(a)
            case .repeated(let first):
                accepted.append(first)
            case .conflict:
                throw APIError(.conflict, "Idempotency-Key was already used with a different body", field: "Idempotency-Key")
            }
        }
        return accepted
    }

    struct AcceptedBody: Encodable {
        var event_id: String
        var incident: String
        var deliveries: Int
        /// What the event did: `opened`, `repeated`, `updated`, `acknowledged`, `resolved`,
        /// `already_resolved`, `recorded`.
        var effect: String?
        init(_ a: EnqueueResult.Accepted) {
            event_id = a.eventId
            incident = a.incident
            deliveries = a.deliveries
            effect = a.transition
        }
    }

    static func idempotency(_ request: Request, scope: String, body: [UInt8]) throws -> EnqueueRequest.Idempotency? {
        guard let key = request.headers[.init("Idempotency-Key")!] else { return nil }
        guard !key.isEmpty, key.count <= 255 else {
            throw APIError.badRequest("must be 1 to 255 characters", field: "Idempotency-Key")
        }
        return .init(scope: scope, key: key, bodyHash: Digest.hex(body))
    }

    /// The body, if it is JSON and within `server.max_body_bytes` (415 and 413 otherwise).
    func readJSONBody(_ request: Request) async throws -> [UInt8] {
        if let type = request.headers[.contentType] {
            let media = type.split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() } ?? ""
            guard media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json")) else {
                throw APIError(.unsupportedMediaType, "Content-Type must be application/json", field: "Content-Type")
            }
        }
        let limit = config.server.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, "body is larger than \(limit) bytes")
        }
        var bytes: [UInt8] = []
        for try await chunk in request.body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw APIError(.contentTooLarge, "body is larger than \(limit) bytes")
            }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }
}
