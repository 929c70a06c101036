import Foundation
import HeraldCore
import HeraldStore
import HTTPTypes
import Hummingbird

/// Signing in to the console and the guards every console route goes through.
///
/// An operator signs in with an admin token once; the browser then holds a random secret in an
/// `HttpOnly; SameSite=Strict` cookie scoped to `/console` (`Secure` under TLS). The store keeps
/// only its SHA-256, so sessions survive a restart and sign-out revokes one for good. A session
/// lasts `ConsoleSession.lifetime` and ends early when its token loses the admin scope (removed
/// from the configuration and reloaded). Every state-changing form carries the session's CSRF
/// token; the sign-in form, before there is a session, a double-submit cookie.
extension HeraldApplication {
    static let sessionCookie = "herald_session"
    static let signInCookie = "herald_console_csrf"

    /// The signed-in operator of this request, if any.
    func consoleSession(_ request: Request) async throws -> ConsoleSession? {
        guard let secret = request.cookies[Self.sessionCookie]?.value, !secret.isEmpty, secret.utf8.count <= 128 else { return nil }
        guard let session = try await store.consoleSession(idHash: Digest.hex(Array(secret.utf8)), now: Date()) else { return nil }
        return auth.grants(.admin, toTokenNamed: session.principal) ? session : nil
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(listenerTLS == nil ? "" : "; Secure")"
    }

    /// A page: without a session, a redirect to the sign-in form that comes back here.
    func consolePage(_ request: Request, _ body: @escaping (ConsoleSession) async throws -> Response) async throws -> Response {
        guard let session = try await consoleSession(request) else {
            let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            return ConsoleLayout.redirect("/console/signin?next=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        }
        return try await rendered(session) { try await body(session) }
    }

    /// A form POST: 401 without a session, 403 without the session's CSRF token; nothing changes
    /// in either case.
    func consoleAction(_ request: Request,
                       _ body: @escaping (ConsoleSession, [(String, String)]) async throws -> Response) async throws -> Response {
        guard let session = try await consoleSession(request) else {
            return ConsoleLayout.response(.unauthorized, ConsoleLayout.page("Signed out", user: nil, csrf: nil, body: """
                <p class="error" role="alert">You are not signed in (or your session ended). Nothing was changed.</p>
                <p><a href="/console/signin">Sign in</a></p>
                """))
        }
        let fields = try await Self.form(request)
        let sent = fields.first { $0.0 == "csrf" }?.1 ?? ""
        guard Self.sameSecret(sent, session.csrf) else {
            return ConsoleLayout.response(.forbidden, ConsoleLayout.page("Form refused", user: session.principal, csrf: session.csrf, body: """
                <p class="error" role="alert">This form did not carry this session's token, so nothing was changed. \
                Go back, reload the page and try again.</p>
                """))
        }
        return try await rendered(session) { try await body(session, fields) }
    }

    /// An API error thrown by a console handler, as a page with the same status.
    private func rendered(_ session: ConsoleSession, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            let field = error.field.map { "\($0): " } ?? ""
            return ConsoleLayout.response(error.status, ConsoleLayout.page("Not done", user: session.principal, csrf: session.csrf, body: """
                <p class="error" role="alert">\(ConsoleLayout.escape(field + error.message))</p>
                <p><a href="/console/incidents">Back to the console</a></p>
                """))
        }
    }

    static func sameSecret(_ a: String, _ b: String) -> Bool {
        !a.isEmpty && a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
    }

    /// Where to go after signing in: a console path, never another site.
    static func consoleNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/console/"), !next.hasPrefix("/console//"), !next.contains("\\"),
              !next.contains("\r"), !next.contains("\n") else { return "/console/incidents" }
        return next
    }

    func signInPage(next: String?, status: HTTPResponse.Status = .ok, message: String? = nil, error: String? = nil) -> Response {
        let csrf = Self.secret()
        var body = ""
        if let message { body += "<p class=\"notice\" role=\"status\">\(ConsoleLayout.escape(message))</p>" }
        if let error { body += "<p class=\"error\" role=\"alert\">\(ConsoleLayout.escape(error))</p>" }
        body += """
            <form class="stack" method="post" action="/console/signin">
            <input type="hidden" name="csrf" value="\(csrf)">
            <input type="hidden" name="next" value="\(ConsoleLayout.escape(Self.consoleNext(next)))">
            <p><label for="token">Admin token</label><br>
            <input type="password" id="token" name="token" required autocomplete="current-password" autofocus></p>
            <p><button type="submit">Sign in</button></p>
            </form>
            <p class="meta">A token with the <code>admin</code> scope from the configuration's <code>server.tokens</code>. \
            The session lasts \(Int(ConsoleSession.lifetime / 3600)) hours or until you sign out.</p>
            """
        return ConsoleLayout.response(status, ConsoleLayout.page("Sign in", user: nil, csrf: nil, body: body),
                                      extra: [.setCookie: cookie(Self.signInCookie, csrf, maxAge: 3600)])
    }

    func signIn(_ request: Request, client: String) async throws -> Response {
        let fields = try await Self.form(request)
        func field(_ name: String) -> String { fields.first { $0.0 == name }?.1 ?? "" }
        let next = field("next")
        guard Self.sameSecret(field("csrf"), request.cookies[Self.signInCookie]?.value ?? "") else {
            return signInPage(next: next, status: .forbidden, error: "This form has expired. Please sign in again.")
        }
        let token = field("token").trimmingWhitespace()
        guard !token.isEmpty else { return signInPage(next: next, status: .badRequest, error: "token: enter an admin token.") }
        let principal: Authenticator.Principal?
        do {
            principal = try auth.principal(forToken: token, from: client)
        } catch let error as APIError {
            return signInPage(next: next, status: error.status, error: error.message)
        }
        guard let principal else { return signInPage(next: next, status: .unauthorized, error: "token: not a valid token.") }
        guard principal.scopes.contains(.admin) else {
            return signInPage(next: next, status: .forbidden, error: "token: \"\(principal.name)\" lacks the admin scope.")
        }
        let secret = Self.secret()
        let now = Date()
        let session = ConsoleSession(idHash: Digest.hex(Array(secret.utf8)), principal: principal.name, csrf: Self.secret(),
                                     createdAt: now, expiresAt: now.addingTimeInterval(ConsoleSession.lifetime))
        try await store.addConsoleSession(session)
        logger.info("console sign-in", metadata: ["by": "\(principal.name)", "client": "\(client)"])
        var headers = HTTPFields()
        headers.append(HTTPField(name: .setCookie, value: cookie(Self.sessionCookie, secret, maxAge: Int(ConsoleSession.lifetime))))
        headers.append(HTTPField(name: .setCookie, value: cookie(Self.signInCookie, "", maxAge: 0)))
        return ConsoleLayout.redirect(Self.consoleNext(next), extra: headers)
    }

    func signOut(_ session: ConsoleSession) async throws -> Response {
        _ = try await store.removeConsoleSession(idHash: session.idHash)
        logger.info("console sign-out", metadata: ["by": "\(session.principal)"])
        return ConsoleLayout.redirect("/console/signin?signed_out=1",
                                      extra: [.setCookie: cookie(Self.sessionCookie, "", maxAge: 0)])
    }
}
