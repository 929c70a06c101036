import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// Silences over the admin API: `GET /v1/silences` (in force and pending; `?all=true` with the
/// expired), `POST /v1/silences`, `GET /v1/silences/:id`, `DELETE /v1/silences/:id` (expires it now;
/// what it held goes out if its incident is still open).
extension HeraldApplication {
    /// The longest silence: a year. Longer is a mistake (or belongs in the config).
    static let longestSilence: TimeInterval = 366 * 86_400

    func addSilenceRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/v1/silences") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let q = request.uri.queryParameters
            let all = try Self.flag(q["all"].map(String.init), field: "all")
            let limit = try Self.limit(q["limit"].map(String.init))
            let now = Date()
            let silences = try await self.store.silences(includeExpired: all, now: now, limit: limit)
            return JSONBody.response(.ok, ["silences": silences.map { SilenceBody($0, now: now) }])
        }

        router.post("/v1/silences") { request, context in
            let principal = try self.auth.require(.admin, request, context)
            let fields = try await self.readJSONObject(request)
            let now = Date()
            let silence = try self.parseSilence(fields, author: principal.name, now: now)
            try await self.add(silence)
            return JSONBody.response(.created, SilenceBody(silence, now: now))
        }

        router.get("/v1/silences/:id") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let id = try Self.pathParameter(context, "id")
            guard let silence = try await self.store.silence(id: id) else { throw APIError.notFound("no silence \(id)") }
            return JSONBody.response(.ok, SilenceBody(silence, now: Date()))
        }

        router.delete("/v1/silences/:id") { request, context in
            let principal = try self.auth.require(.admin, request, context)
            let now = Date()
            let silence = try await self.expire(silence: try Self.pathParameter(context, "id"), by: principal.name, now: now)
            return JSONBody.response(.ok, SilenceBody(silence, now: now))
        }
    }

    /// Stores a new silence and lets the dispatcher hold what it matches from now on.
    func add(_ silence: Silence) async throws {
        try await store.addSilence(silence)
        dispatcher.silencesChanged()
        logger.info("silence added", metadata: ["silence": "\(silence.id)", "by": "\(silence.createdBy)",
                                                "until": "\(RFC3339.format(silence.endsAt))"])
    }

    /// Ends a silence now (404 when there is none); what it held goes out if its incident is open.
    func expire(silence id: String, by author: String, now: Date) async throws -> Silence {
        guard let silence = try await store.expireSilence(id: id, now: now) else { throw APIError.notFound("no silence \(id)") }
        dispatcher.silencesChanged()
        if silence.isMaintenance {
            // Expiring a maintenance window is cancelling it: its last step is posted now.
            maintenance.changed()
            statusCache.invalidate()
        }
        logger.info("silence expired", metadata: ["silence": "\(id)", "by": "\(author)"])
        return silence
    }

    /// The body as a JSON object (an empty body is an empty object).
    func readJSONObject(_ request: Request) async throws -> [String: Any] {
        let body = try await readJSONBody(request)
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) else {
            throw APIError.badRequest("body is not valid JSON")
        }
        guard let dict = object as? [String: Any] else { throw APIError.badRequest("body must be a JSON object") }
        return dict
    }

    /// A new silence from `POST /v1/silences`: `matchers` (strings such as `service=web`,
    /// `severity=~"major|critical"`), `channels` (configured channel names; none: every channel),
    /// `starts_at` (RFC 3339; default now), `ends_at` (RFC 3339) or `duration` (`2h`), `comment`
    /// (required), `created_by` (default: the token's name). At least one matcher or channel.
    func parseSilence(_ object: [String: Any], author: String, now: Date) throws -> Silence {
        let fields = try JSONFields(object, known: ["matchers", "channels", "starts_at", "ends_at", "duration", "comment", "created_by"])
        let matchers = try fields.strings("matchers").enumerated().map { i, text in
            do { return try SilenceMatcher(parsing: text) } catch let error as SilenceError {
                throw APIError.badRequest(error.description, field: "matchers[\(i)]")
            }
        }
        let channels = try fields.channels("channels", configured: live.withLock { $0.channels })
        guard !matchers.isEmpty || !channels.isEmpty else {
            throw APIError.badRequest("a silence needs at least one matcher or channel (it would silence everything)",
                                      field: "matchers")
        }
        let startsAt = try fields.time("starts_at") ?? now
        let endsAt = try fields.end(from: max(startsAt, now))
        try Self.checkSpan(startsAt, endsAt, now: now)
        guard let comment = try fields.string("comment"), !comment.trimmingWhitespace().isEmpty else {
            throw APIError.badRequest("required: why the silence is there", field: "comment")
        }
        guard comment.utf8.count <= 4096 else { throw APIError.badRequest("at most 4096 bytes", field: "comment") }
        let by = try fields.string("created_by") ?? author
        guard !by.isEmpty, by.utf8.count <= 256 else { throw APIError.badRequest("must be 1 to 256 bytes", field: "created_by") }
        return Silence(id: Identifier.make(prefix: "sil", at: now), matchers: matchers, channels: channels, startsAt: startsAt,
                       endsAt: endsAt, createdBy: by, comment: comment, createdAt: now)
    }

    /// A silence's or maintenance window's span: ends after it starts, in the future, within a year.
    static func checkSpan(_ startsAt: Date, _ endsAt: Date, now: Date) throws {
        guard endsAt > startsAt else { throw APIError.badRequest("must be after starts_at", field: "ends_at") }
        guard endsAt > now else { throw APIError.badRequest("must be in the future", field: "ends_at") }
        guard endsAt.timeIntervalSince(max(startsAt, now)) <= Self.longestSilence else {
            throw APIError.badRequest("lasts at most 366 days", field: "ends_at")
        }
    }
}

/// A silence as the API shows it: its fields and its `state` now (pending, active, expired).
struct SilenceBody: Encodable {
    let silence: Silence
    let state: String
    init(_ silence: Silence, now: Date) {
        self.silence = silence
        self.state = silence.state(at: now)
    }
    enum K: String, CodingKey { case state }
    func encode(to encoder: any Encoder) throws {
        try silence.encode(to: encoder)
        var c = encoder.container(keyedBy: K.self)
        try c.encode(state, forKey: .state)
    }
}
