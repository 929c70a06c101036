import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import HTTPTypes
import Hummingbird
import NIOCore

/// The public side of subscriptions (see `SubscribePages`): no token; 404 unless a `subscribers`
/// channel is configured. The sign-up form carries a CSRF token (a random value in a strict
/// cookie and in the form, which must match); the other forms carry the secret of a mailed link,
/// which is their proof. The answer to a sign-up is the same whatever the address's state, and no
/// address is ever logged.
extension HeraldApplication {
    static let csrfCookie = "herald_csrf"

    func addSubscribeRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/status/subscribe") { _, _ in try self.signUpForm() }
        router.post("/status/subscribe") { request, context in try await self.signUp(request, client: context.client) }
        router.get("/status/confirm") { request, _ in
            let (_, title) = try self.subscribersChannel()
            let token = request.uri.queryParameters.get("token") ?? ""
            return Self.page(.ok, SubscribePages.button(
                title: title, heading: "Confirm your subscription", text: "One more step: confirm that you want these updates.",
                action: "/status/confirm", token: token, label: "Confirm subscription"))
        }
        router.post("/status/confirm") { request, _ in try await self.confirm(request) }
        router.get("/status/manage") { request, _ in
            try await self.manage(token: request.uri.queryParameters.get("token") ?? "", saved: false)
        }
        router.post("/status/manage") { request, _ in try await self.saveComponents(request) }
        router.get("/status/unsubscribe") { request, _ in
            let (_, title) = try self.subscribersChannel()
            return Self.page(.ok, SubscribePages.button(
                title: title, heading: "Unsubscribe", text: "Stop all status updates to this address?",
                action: "/status/unsubscribe", token: request.uri.queryParameters.get("token") ?? "", label: "Unsubscribe"))
        }
        router.post("/status/unsubscribe") { request, _ in try await self.unsubscribe(request) }
    }

    /// The subscribers channel and the page's title; 404 without one.
    func subscribersChannel() throws -> (SubscribersChannel, String) {
        let (channel, title) = live.withLock { live in
            (live.routing.subscriberChannel.flatMap { live.channels[$0] as? SubscribersChannel }, live.status.title)
        }
        guard let channel else { throw APIError.notFound("this status page has no subscriptions") }
        return (channel, title)
    }

    static let formPolicy = "default-src 'none'; style-src '\(PublicHeaders.hash(StatusPage.stylesheet))'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func page(_ status: HTTPResponse.Status, _ html: String, extra: HTTPFields = [:]) -> Response {
        var headers = PublicHeaders.fields(contentType: "text/html; charset=utf-8", policy: formPolicy)
        headers[.cacheControl] = "no-store"
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A fresh random secret, URL-safe.
    static func secret() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    func signUpForm() throws -> Response {
        let (_, title) = try subscribersChannel()
        let csrf = Self.secret()
        return Self.page(.ok, SubscribePages.signUp(title: title, components: live.withLock { $0.status.page.components }, csrf: csrf),
                         extra: [.setCookie: csrfCookie(csrf)])
    }

    func csrfCookie(_ value: String) -> String {
        "\(Self.csrfCookie)=\(value); Path=/status; Max-Age=3600; HttpOnly; SameSite=Strict\(listenerTLS == nil ? "" : "; Secure")"
    }

    /// The fields of a form body (`application/x-www-form-urlencoded`), in order; at most 16 KiB.
    static func form(_ request: Request) async throws -> [(String, String)] {
        let body = try await request.body.collect(upTo: 16 * 1024)
        let text = String(buffer: body)
        return text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    func signUp(_ request: Request, client: String) async throws -> Response {
        let (channel, title) = try subscribersChannel()
        let declared = live.withLock { $0.status.page.components }
        let fields = try await Self.form(request)
        let csrf = fields.first { $0.0 == "csrf" }?.1 ?? ""
        let address = EmailAddress.normalized(fields.first { $0.0 == "email" }?.1 ?? "")
        let chosen = fields.filter { $0.0 == "components" }.map(\.1).uniqued()
        func again(_ status: HTTPResponse.Status, _ error: String) -> Response {
            let fresh = Self.secret()
            return Self.page(status, SubscribePages.signUp(title: title, components: declared, csrf: fresh, error: error,
                                                           address: address, chosen: chosen),
                             extra: [.setCookie: csrfCookie(fresh)])
        }
        let cookie = request.cookies[Self.csrfCookie]?.value ?? ""
        guard Self.sameSecret(csrf, cookie) else {
            return again(.forbidden, "This form has expired. Please send it again.")
        }
        guard EmailAddress.isPlausible(address) else {
            return again(.badRequest, "email: enter an email address such as name@example.com.")
        }
        if let unknown = chosen.first(where: { name in !declared.contains { $0.name == name } }) {
            return again(.badRequest, "components: there is no component \"\(unknown)\".")
        }
        if let wait = signUpThrottle.take(client) {
            var response = again(.tooManyRequests, "Too many sign-ups just now. Please try again in a few minutes.")
            response.headers[.retryAfter] = "\(max(1, Int(wait.components.seconds) + 1))"
            return response
        }
        let now = Date()
        let confirm = Self.secret()
        let subscriber = Subscriber(id: Identifier.make(prefix: "sub", at: now), address: address,
                                    components: chosen.count == declared.count ? [] : chosen, createdAt: now, confirmedAt: nil,
                                    token: Self.secret())
        let outcome: SignUp
        do {
            outcome = try await store.addSubscriber(subscriber, confirmHash: Digest.hex(Data(confirm.utf8)), now: now)
        } catch {
            logger.error("cannot store a sign-up", metadata: ["error": "\(redactor.redact("\(error)"))"])
            throw APIError(.serviceUnavailable, "store unavailable; retry later", headers: [.retryAfter: "5"])
        }
        if case .pending = outcome {
            let link = "\(channel.publicURL)/status/confirm?token=\(confirm)"
            let logger = self.logger
            Task {
                do {
                    try await channel.sendConfirmation(to: address, pageTitle: title, link: link)
                } catch {
                    // The address stays out of the log: the sign-up's id says which one.
                    logger.warning("cannot send a subscription's confirmation", metadata: [
                        "subscriber": "\(subscriber.id)",
                        "error": "\("\(error)".replacingOccurrences(of: address, with: subscriber.id, options: .caseInsensitive))"])
                }
            }
        }
        return Self.page(.ok, SubscribePages.message(
            title: title, heading: "Check your inbox",
            text: "If this address can receive our mail, a confirmation link is on its way. It works for 24 hours.",
            link: ("/status", "Back to the status page")), extra: [.setCookie: csrfCookie(Self.secret())])
    }

    func confirm(_ request: Request) async throws -> Response {
        let (channel, title) = try subscribersChannel()
        let token = try await Self.form(request).first { $0.0 == "token" }?.1 ?? ""
        guard !token.isEmpty, let subscriber = try await store.confirmSubscriber(confirmHash: Digest.hex(Data(token.utf8)), now: Date()) else {
            return Self.page(.notFound, SubscribePages.message(
                title: title, heading: "This link no longer works",
                text: "It has expired or was already used. You can sign up again.", link: ("/status/subscribe", "Subscribe")))
        }
        return Self.page(.ok, SubscribePages.message(
            title: title, heading: "You are subscribed",
            text: "Updates will reach you by email. Every message has a link to change what you receive or to unsubscribe.",
            link: (channel.manageLink(subscriber), "Manage your subscription")))
    }

    func manage(token: String, saved: Bool) async throws -> Response {
        let (_, title) = try subscribersChannel()
        guard !token.isEmpty, let subscriber = try await store.subscriber(token: token) else {
            return Self.page(.notFound, SubscribePages.message(title: title, heading: "No such subscription",
                                                               text: "This link does not belong to a subscription (any more)."))
        }
        return Self.page(.ok, SubscribePages.manage(title: title, subscriber: subscriber,
                                                    components: live.withLock { $0.status.page.components }, saved: saved))
    }

    func saveComponents(_ request: Request) async throws -> Response {
        let (_, title) = try subscribersChannel()
        let declared = live.withLock { $0.status.page.components }
        let fields = try await Self.form(request)
        let token = fields.first { $0.0 == "token" }?.1 ?? ""
        let chosen = fields.filter { $0.0 == "components" }.map(\.1).uniqued().filter { name in declared.contains { $0.name == name } }
        guard !token.isEmpty, let subscriber = try await store.subscriber(token: token) else {
            return Self.page(.notFound, SubscribePages.message(title: title, heading: "No such subscription",
                                                               text: "This link does not belong to a subscription (any more)."))
        }
        _ = try await store.setSubscriberComponents(id: subscriber.id, components: chosen.count == declared.count ? [] : chosen)
        return try await manage(token: token, saved: true)
    }

    /// RFC 8058 one-click (`List-Unsubscribe=One-Click` to the header's URL, token in the query)
    /// or the page's button (token in the form).
    func unsubscribe(_ request: Request) async throws -> Response {
        let (_, title) = try subscribersChannel()
        let fields = try await Self.form(request)
        let token = request.uri.queryParameters.get("token") ?? fields.first { $0.0 == "token" }?.1 ?? ""
        if !token.isEmpty, let subscriber = try await store.subscriber(token: token) {
            _ = try await store.removeSubscriber(id: subscriber.id, now: Date())
        }
        // The same answer for a link already used: the address is off the list either way.
        return Self.page(.ok, SubscribePages.message(title: title, heading: "Unsubscribed",
                                                     text: "No more status updates will be sent to this address.",
                                                     link: ("/status", "Back to the status page")))
    }
}

/// The subscribers channel's view of the store.
struct StoreSubscriberDirectory: SubscriberDirectory {
    let store: any Store
    func subscriber(id: String) async throws -> Subscriber? { try await store.subscriber(id: id) }
}
