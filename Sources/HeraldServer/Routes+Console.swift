import Foundation
import HeraldCore
import Hummingbird

/// The operator console at `/console`: server-rendered pages over the admin API's data (see
/// `ConsoleSessions` for signing in, `ConsoleLayout` for the frame). Every page needs a session;
/// every action is a form POST carrying the session's CSRF token.
extension HeraldApplication {
    func addConsoleRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/console") { _, _ in ConsoleLayout.redirect("/console/incidents") }
        router.get("/console/signin") { request, _ in
            let q = request.uri.queryParameters
            if try await self.consoleSession(request) != nil {
                return ConsoleLayout.redirect(Self.consoleNext(q.get("next")))
            }
            return self.signInPage(next: q.get("next"), message: q.get("signed_out") == nil ? nil : "Signed out.")
        }
        router.post("/console/signin") { request, context in try await self.signIn(request, client: context.client) }
        router.post("/console/signout") { request, _ in
            try await self.consoleAction(request) { session, _ in try await self.signOut(session) }
        }

        router.get("/console/incidents") { request, _ in
            try await self.consolePage(request) { try await self.incidentsPage($0) }
        }
        router.get("/console/incidents/:key") { request, context in
            let key = try Self.pathParameter(context, "key")
            return try await self.consolePage(request) { try await self.incidentPage($0, key: key) }
        }
        router.post("/console/incidents/:key/:action") { request, context in
            let key = try Self.pathParameter(context, "key")
            let action = try Self.pathParameter(context, "action")
            return try await self.consoleAction(request) { session, fields in
                try await self.postOperatorEvent(session, key: key, action: action, fields: fields)
            }
        }

        router.get("/console/deliveries") { request, _ in
            try await self.consolePage(request) { try await self.deliveriesPage($0, query: request.uri.queryParameters) }
        }
        router.get("/console/deliveries/:id") { request, context in
            let id = try Self.pathParameter(context, "id")
            return try await self.consolePage(request) { try await self.deliveryPage($0, id: id) }
        }
        router.post("/console/deliveries/:id/replay") { request, context in
            let id = try Self.pathParameter(context, "id")
            return try await self.consoleAction(request) { _, _ in try await self.replayOne(id) }
        }
        router.post("/console/replay") { request, _ in
            try await self.consoleAction(request) { session, fields in try await self.replayFiltered(session, fields) }
        }

        router.get("/console/channels") { request, _ in
            try await self.consolePage(request) { try await self.channelsPage($0) }
        }
        router.post("/console/channels/:name/test") { request, context in
            let name = try Self.pathParameter(context, "name")
            return try await self.consoleAction(request) { session, _ in try await self.testChannel(session, name: name) }
        }

        router.get("/console/silences") { request, _ in
            try await self.consolePage(request) { try await self.silencesPage($0) }
        }
        router.post("/console/silences") { request, _ in
            try await self.consoleAction(request) { session, fields in try await self.createSilence(session, fields) }
        }
        router.post("/console/silences/:id/expire") { request, context in
            let id = try Self.pathParameter(context, "id")
            return try await self.consoleAction(request) { session, _ in try await self.expireSilence(session, id: id) }
        }
    }
}
