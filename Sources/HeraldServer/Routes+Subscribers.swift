import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// Subscribers over the admin API: `GET /v1/subscribers` (confirmed, in id order, `?after=ID`
/// pages on; `?pending=true` the sign-ups still to confirm), `GET /v1/subscribers/count`,
/// `DELETE /v1/subscribers/:id` (removes them; what still waited for them is not sent). The
/// secret of their links is never shown.
extension HeraldApplication {
    func addSubscriberRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/v1/subscribers") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let q = request.uri.queryParameters
            let pending = try Self.flag(q["pending"].map(String.init), field: "pending")
            let limit = try Self.limit(q["limit"].map(String.init))
            let after = q["after"].map(String.init)
            if let after, after.count > 200 { throw APIError.badRequest("must be a subscriber id", field: "after") }
            let page = try await self.store.subscribers(pending: pending, after: after, limit: limit)
            return JSONBody.response(.ok, SubscriberList(subscribers: page.map(SubscriberBody.init),
                                                         next: page.count == limit ? page.last?.id : nil))
        }
        router.get("/v1/subscribers/count") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let (confirmed, pending) = try await self.store.subscriberCounts()
            return JSONBody.response(.ok, ["confirmed": confirmed, "pending": pending])
        }
        router.delete("/v1/subscribers/:id") { request, context in
            let principal = try self.auth.require(.admin, request, context)
            let id = try Self.pathParameter(context, "id")
            guard try await self.store.removeSubscriber(id: id, now: Date()) else { throw APIError.notFound("no subscriber \(id)") }
            self.logger.info("subscriber removed", metadata: ["subscriber": "\(id)", "by": "\(principal.name)"])
            return JSONBody.response(.ok, ["removed": id])
        }
    }
}

struct SubscriberList: Encodable {
    var subscribers: [SubscriberBody]
    /// The `after` of the next page; absent on the last.
    var next: String?
}

struct SubscriberBody: Encodable {
    var id: String
    var address: String
    /// Empty: every component.
    var components: [String]
    var created_at: String
    var confirmed_at: String?

    init(_ s: Subscriber) {
        id = s.id
        address = s.address
        components = s.components
        created_at = RFC3339.format(s.createdAt)
        confirmed_at = s.confirmedAt.map(RFC3339.format)
    }
}
