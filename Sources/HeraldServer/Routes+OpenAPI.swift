import Hummingbird

/// GET /openapi.json: the OpenAPI 3.1 document of this API (openapi.json at the repo root).
extension HeraldApplication {
    func addOpenAPIRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
    }
}

extension HeraldApplication {
    /// Every route's path pattern (`:name` matches one segment) and methods, for 405 answers.
    static let routeMethods: [(pattern: [Substring], methods: [String])] = [
        ("/v1/events", ["POST"]), ("/v1/hooks/alertmanager", ["POST"]), ("/v1/hooks/grafana", ["POST"]),
        ("/v2/enqueue", ["POST"]), ("/v1/deliveries", ["GET"]), ("/v1/deliveries/:id", ["GET"]),
        ("/v1/deliveries/:id/replay", ["POST"]), ("/v1/replay", ["POST"]), ("/v1/incidents", ["GET"]),
        ("/v1/incidents/:key", ["GET"]), ("/healthz", ["GET"]), ("/readyz", ["GET"]), ("/metrics", ["GET"]),
        ("/status", ["GET", "HEAD"]), ("/status/feed.atom", ["GET", "HEAD"]), ("/status.json", ["GET", "HEAD"]), ("/status/logo", ["GET", "HEAD"]),
        ("/openapi.json", ["GET"]),
        ("/v1/backup", ["GET"]), ("/v1/reload", ["POST"]), ("/v1/channels", ["GET"]),
        ("/v1/silences", ["GET", "POST"]), ("/v1/silences/:id", ["GET", "DELETE"]),
        ("/v1/maintenance", ["GET", "POST"]), ("/v1/maintenance/:id", ["GET", "DELETE"]),
        ("/v1/subscribers", ["GET"]), ("/v1/subscribers/count", ["GET"]), ("/v1/subscribers/:id", ["DELETE"]),
        ("/status/subscribe", ["GET", "POST"]), ("/status/confirm", ["GET", "POST"]), ("/status/manage", ["GET", "POST"]),
        ("/status/unsubscribe", ["GET", "POST"]),
    ].map { (path: String, methods: [String]) in (path.split(separator: "/"), methods) }

    /// What `server.public_listen` serves: the status documents, the subscription pages, `/healthz`.
    static let publicRouteMethods = routeMethods.filter { route in
        route.pattern.first == "status" || route.pattern.first == "status.json" || route.pattern == ["healthz"]
    }

    /// The methods a known path allows, or nil for an unknown path.
    static func allowedMethods(path: String, among routes: [(pattern: [Substring], methods: [String])] = routeMethods) -> [String]? {
        let segments = path.split(separator: "/")
        let methods = routes.filter { route in
            route.pattern.count == segments.count
                && zip(route.pattern, segments).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }.flatMap(\.methods)
        return methods.isEmpty ? nil : methods
    }
}
