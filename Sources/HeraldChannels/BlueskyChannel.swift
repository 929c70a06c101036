import Foundation
import HeraldCore
import HeraldTransport
import Synchronization

/// `type: bluesky` — posts as an account with an app password: `com.atproto.server.createSession`
/// once (refreshed with `refreshSession` when the access token expires), then
/// `com.atproto.repo.createRecord` of an `app.bsky.feed.post` (300 graphemes, the link as a link
/// facet). The record key is derived from the delivery id, so a retry after a lost answer cannot
/// post twice: the second write finds the record and answers it. Receipt: `uri cid`; follow-ups
/// reply with `reply.root` / `reply.parent` set to the notice.
///
/// Keys: `identifier` (handle or DID), `app_password` / `app_password_file`, `service` (default
/// https://bsky.social), `verify_tls`. Reference: https://docs.bsky.app/docs/advanced-guides/posts
public struct BlueskyChannel: Channel {
    public let name: String
    public let type = "bluesky"
    public var limits: ChannelLimits { ChannelLimits(maxTitle: 300, maxBody: 300) }
    let identifier: String
    let password: Secret
    let service: String
    let verifyTLS: Bool
    let context: ChannelContext
    let session: SessionBox

    struct Session: Sendable {
        var access: String
        var refresh: String
        var did: String
    }

    final class SessionBox: Sendable {
        let current = Mutex<Session?>(nil)
    }

    public static func make(_ settings: ChannelSettings, _ context: ChannelContext) throws -> any Channel {
        let service = try settings.optionalString("service").map { _ in try settings.url("service", schemes: ["https", "http"]) }
        return BlueskyChannel(name: settings.channel, identifier: try settings.string("identifier"),
                              password: try settings.requiredSecret("app_password"),
                              service: (service ?? "https://bsky.social").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                              verifyTLS: try settings.bool("verify_tls") ?? true, context: context, session: SessionBox())
    }

    public var redactedDescription: String { "bluesky \(RedactedURL(service)) as \(identifier)" }

    func xrpc(_ method: String) -> String { "\(service)/xrpc/\(method)" }

    public func deliver(_ message: OutboundMessage) async throws -> Receipt {
        var current = try await currentSession()
        let record = Self.record(message)
        let rkey = Self.recordKey(deliveryId: message.deliveryId)
        for attempt in 0..<2 {
            do {
                let (response, json) = try await JSONRequest.send(
                    url: xrpc("com.atproto.repo.createRecord"), headers: [("Authorization", "Bearer \(current.access)")],
                    body: ["repo": current.did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": record],
                    context: context, verifyTLS: verifyTLS, refine: Self.refine)
                return Receipt(reference: try Self.reference(json, status: response.status), status: response.status)
            } catch BlueskyError.expired {
                guard attempt == 0 else { throw Self.surface(.expired) }
                current = try await refreshedSession(current)
            } catch BlueskyError.exists {
                // Written by an earlier attempt whose answer was lost: answer that record.
                let (response, json) = try await JSONRequest.send(
                    method: "GET", url: xrpc("com.atproto.repo.getRecord") + "?repo=\(Self.query(current.did))&collection=app.bsky.feed.post&rkey=\(rkey)",
                    headers: [("Authorization", "Bearer \(current.access)")], body: nil, context: context, verifyTLS: verifyTLS)
                return Receipt(reference: try Self.reference(json, status: response.status), status: response.status)
            }
        }
        throw DeliveryError.transient(.auth, "Bluesky session expired again right after refreshing")
    }

    /// An expired session that outlives this attempt is a transient failure.
    static func surface(_ error: BlueskyError) -> DeliveryError {
        .transient(.auth, "Bluesky session expired")
    }

    static func reference(_ json: [String: Any]?, status: Int) throws -> String {
        guard let uri = json?["uri"] as? String, let cid = json?["cid"] as? String else {
            throw DeliveryError.transient(.other, status: status, "Bluesky answered without uri and cid")
        }
        return "\(uri) \(cid)"
    }

    static func query(_ s: String) -> String {
        s.percentEncodedUnreserved
    }

    // MARK: Session

    func currentSession() async throws -> Session {
        if let s = session.current.withLock({ $0 }) { return s }
        let (_, json) = try await JSONRequest.send(
            url: xrpc("com.atproto.server.createSession"),
            body: ["identifier": identifier, "password": password.value], context: context, verifyTLS: verifyTLS, refine: Self.refineSession)
        return try store(json)
    }

    func refreshedSession(_ old: Session) async throws -> Session {
        session.current.withLock { $0 = nil }
        do {
            let (_, json) = try await JSONRequest.send(
                url: xrpc("com.atproto.server.refreshSession"), headers: [("Authorization", "Bearer \(old.refresh)")],
                body: nil, context: context, verifyTLS: verifyTLS, refine: Self.refineSession)
            return try store(json)
        } catch {
            return try await currentSession()
        }
    }

    func store(_ json: [String: Any]?) throws -> Session {
        guard let access = json?["accessJwt"] as? String, let refresh = json?["refreshJwt"] as? String,
              let did = json?["did"] as? String else {
            throw DeliveryError.transient(.auth, "Bluesky session answer lacks accessJwt, refreshJwt or did")
        }
        let s = Session(access: access, refresh: refresh, did: did)
        session.current.withLock { $0 = s }
        return s
    }

    enum BlueskyError: Error, Equatable { case expired, exists }

    /// XRPC errors are `{"error": "Name", "message": "…"}`.
    static func refine(_ response: HTTPResponse, _ json: [String: Any]?) -> (any Error)? {
        guard !(200..<300).contains(response.status), let name = json?["error"] as? String else { return nil }
        let message = json?["message"] as? String ?? ""
        let detail = "Bluesky \(response.status) \(name)" + (message.isEmpty ? "" : ": \(message)")
        switch name {
        case "ExpiredToken":
            return BlueskyError.expired
        case "AuthenticationRequired", "InvalidToken", "AccountTakedown":
            return DeliveryError.permanent(.auth, status: response.status, detail)
        case "RateLimitExceeded":
            return DeliveryError.transient(.rateLimited, status: response.status, retryAfter: resetWait(response), detail)
        default:
            if message.localizedCaseInsensitiveContains("already exists") {
                return BlueskyError.exists
            }
            return nil
        }
    }

    /// For the session calls, whose errors leave `deliver` as they are: the record-write signals
    /// become a `DeliveryError` (an expired token) or the shared classifier's (an "already
    /// exists", which means nothing there), so `deliver` throws `DeliveryError` only.
    static func refineSession(_ response: HTTPResponse, _ json: [String: Any]?) -> (any Error)? {
        let refined = refine(response, json)
        if let signal = refined as? BlueskyError { return signal == .expired ? surface(.expired) : nil }
        return refined
    }

    /// `Retry-After`, else `RateLimit-Reset` (epoch seconds); a value that is no time counts as
    /// absent, a huge one is clamped (see `Duration(untilEpochSeconds:now:)`).
    static func resetWait(_ response: HTTPResponse) -> Duration? {
        if let wait = HTTPClassifier.retryAfter(response) { return wait }
        guard let reset = response.header("RateLimit-Reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) else { return nil }
        return Duration(untilEpochSeconds: reset, now: Date())
    }

    // MARK: Record

    static func record(_ m: OutboundMessage) -> [String: Any] {
        let text = MicroblogText.compose(m, limit: 300)
        var record: [String: Any] = [
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": RFC3339.format(Date()),
        ]
        if let link = m.event.link, let range = text.range(of: link, options: .backwards) {
            let start = text.utf8.distance(from: text.utf8.startIndex, to: range.lowerBound)
            let end = start + link.utf8.count
            record["facets"] = [[
                "index": ["byteStart": start, "byteEnd": end],
                "features": [["$type": "app.bsky.richtext.facet#link", "uri": link]],
            ]]
        }
        if let thread = m.thread {
            let parts = thread.split(separator: " ")
            if parts.count == 2 {
                let ref: [String: Any] = ["uri": String(parts[0]), "cid": String(parts[1])]
                record["reply"] = ["root": ref, "parent": ref]
            }
        }
        return record
    }

    /// A TID (13 characters of base32-sortable) made from the delivery id, so the same delivery
    /// always writes the same record key.
    static func recordKey(deliveryId: String) -> String {
        let alphabet = Array("234567abcdefghijklmnopqrstuvwxyz")
        // FNV-1a over the id: the microsecond part and the clock id are both derived from it.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in deliveryId.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        // 53 bits of "time" (kept positive and plausible), 10 bits of clock id; top bit zero.
        let micros = (UInt64(1_700_000_000_000_000) + (hash >> 11) % 100_000_000_000_000) & ((1 << 53) - 1)
        var value = (micros << 10) | (hash & 0x3FF)
        var out = [Character](repeating: "2", count: 13)
        for i in stride(from: 12, through: 0, by: -1) {
            out[i] = alphabet[Int(value & 31)]
            value >>= 5
        }
        return String(out)
    }
}
