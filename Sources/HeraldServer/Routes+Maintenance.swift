import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// Scheduled maintenance over the admin API: `GET /v1/maintenance` (scheduled and in progress;
/// `?all=true` with the completed and cancelled), `POST /v1/maintenance`, `GET /v1/maintenance/:id`,
/// `DELETE /v1/maintenance/:id` (cancels it: before its start nothing runs and "cancelled" is
/// posted to whoever was told; during it, it ends now and "completed" is posted).
extension HeraldApplication {
    /// How long a completed or cancelled window stays listed with `?all=true` and on the status page.
    static let maintenanceShown: TimeInterval = 7 * 86_400

    func addMaintenanceRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/v1/maintenance") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let q = request.uri.queryParameters
            let all = try Self.flag(q["all"].map(String.init), field: "all")
            let limit = try Self.limit(q["limit"].map(String.init))
            let now = Date()
            let windows = try await self.store.maintenanceWindows(
                endingAfter: all ? now.addingTimeInterval(-Self.maintenanceShown) : now, limit: limit)
            return JSONBody.response(.ok, ["maintenance": windows.map { MaintenanceBody($0, now: now) }])
        }

        router.post("/v1/maintenance") { request, context in
            let principal = try self.auth.require(.admin, request, context)
            let fields = try await self.readJSONObject(request)
            let now = Date()
            let window = try self.parseMaintenance(fields, author: principal.name, now: now)
            try await self.store.addSilence(window)
            self.dispatcher.silencesChanged()
            self.maintenance.changed()
            self.statusCache.invalidate()
            self.logger.info("maintenance scheduled", metadata: ["maintenance": "\(window.id)", "by": "\(window.createdBy)",
                                                                 "from": "\(RFC3339.format(window.startsAt))",
                                                                 "until": "\(RFC3339.format(window.endsAt))"])
            return JSONBody.response(.created, MaintenanceBody(window, now: now))
        }

        router.get("/v1/maintenance/:id") { request, context in
            _ = try self.auth.require(.admin, request, context)
            let id = try Self.pathParameter(context, "id")
            guard let window = try await self.store.silence(id: id), window.isMaintenance else {
                throw APIError.notFound("no maintenance \(id)")
            }
            return JSONBody.response(.ok, MaintenanceBody(window, now: Date()))
        }

        router.delete("/v1/maintenance/:id") { request, context in
            let principal = try self.auth.require(.admin, request, context)
            let id = try Self.pathParameter(context, "id")
            let now = Date()
            guard id.hasPrefix(Maintenance.idPrefix), let stored = try await self.store.silence(id: id), stored.isMaintenance else {
                throw APIError.notFound("no maintenance \(id)")
            }
            guard stored.endsAt > now else {
                throw APIError(.conflict, "maintenance \(id) is already \(stored.maintenanceStatus(at: now))", field: nil)
            }
            guard let window = try await self.store.expireSilence(id: id, now: now) else { throw APIError.notFound("no maintenance \(id)") }
            self.dispatcher.silencesChanged()
            self.maintenance.changed()
            self.statusCache.invalidate()
            self.logger.info("maintenance cancelled", metadata: ["maintenance": "\(id)", "by": "\(principal.name)"])
            return JSONBody.response(.ok, MaintenanceBody(window, now: now))
        }
    }

    /// A new window from `POST /v1/maintenance`: `title`, `components`, `starts_at`, `ends_at` or
    /// `duration`, and optionally `message`, `reminder` (default 1h; `0s`: none), `silence`
    /// (configured channels quieted during it) and `created_by`.
    func parseMaintenance(_ object: [String: Any], author: String, now: Date) throws -> Silence {
        let fields = try JSONFields(object, known: ["title", "message", "components", "starts_at", "ends_at", "duration",
                                                    "reminder", "silence", "created_by"])
        guard let title = try fields.string("title"), !title.trimmingWhitespace().isEmpty else {
            throw APIError.badRequest("required: what the maintenance is", field: "title")
        }
        guard title.utf8.count <= 200 else { throw APIError.badRequest("at most 200 bytes", field: "title") }
        let message = try fields.string("message").map { $0.trimmingWhitespace() }.flatMap { $0.isEmpty ? nil : $0 }
        if let message, message.utf8.count > 4096 { throw APIError.badRequest("at most 4096 bytes", field: "message") }
        let named = try fields.strings("components")
        if let i = named.firstIndex(where: { $0.trimmingWhitespace().isEmpty || $0.utf8.count > 200 }) {
            throw APIError.badRequest("a component is 1 to 200 bytes, not blank", field: "components[\(i)]")
        }
        let components = named.map { $0.trimmingWhitespace() }.uniqued()
        guard !components.isEmpty else { throw APIError.badRequest("required: the components it touches", field: "components") }
        guard components.joined(separator: "|").utf8.count <= 900 else {
            throw APIError.badRequest("at most 900 bytes of component names in all", field: "components")
        }
        let channels = try fields.channels("silence", configured: live.withLock { $0.channels })
        guard let asked = try fields.time("starts_at") else {
            throw APIError.badRequest("required: when it begins (RFC 3339)", field: "starts_at")
        }
        guard asked.timeIntervalSince(now) <= Self.longestSilence else {
            throw APIError.badRequest("at most 366 days ahead", field: "starts_at")
        }
        // A start already past is now: the window begins when it is scheduled.
        let startsAt = max(asked, now)
        let endsAt = try fields.end(from: startsAt)
        try Self.checkSpan(startsAt, endsAt, now: now)
        let reminder = try fields.duration("reminder", zero: true) ?? Maintenance.defaultReminder
        guard reminder <= Self.longestSilence else { throw APIError.badRequest("at most 366 days", field: "reminder") }
        let by = try fields.string("created_by") ?? author
        guard !by.isEmpty, by.utf8.count <= 256 else { throw APIError.badRequest("must be 1 to 256 bytes", field: "created_by") }
        let info = Maintenance(title: title, message: message, components: components, reminder: reminder)
        do {
            return try Silence.maintenance(info, id: Identifier.make(prefix: "mnt", at: now), channels: channels, startsAt: startsAt,
                                           endsAt: endsAt, createdBy: by, createdAt: now)
        } catch {
            throw APIError.badRequest(error.description, field: "components")
        }
    }
}

/// A maintenance window as the API shows it.
struct MaintenanceBody: Encodable {
    let id: String
    let title: String
    let message: String?
    let components: [String]
    let starts_at: String
    let ends_at: String
    let reminder_seconds: Int
    let silence: [String]
    let created_by: String
    let created_at: String
    let status: String
    let steps: [String: String]

    init(_ window: Silence, now: Date) {
        let m = window.maintenance ?? Maintenance(title: "", components: [])
        id = window.id
        title = m.title
        message = m.message
        components = m.components
        starts_at = RFC3339.format(window.shownWindow.start)
        ends_at = RFC3339.format(window.shownWindow.end)
        reminder_seconds = Int(m.reminder)
        silence = window.channels
        created_by = window.createdBy
        created_at = RFC3339.format(window.createdAt)
        status = window.maintenanceStatus(at: now)
        steps = m.steps.mapValues(RFC3339.format)
    }
}
