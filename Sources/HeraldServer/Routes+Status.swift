import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import HTTPTypes
import Hummingbird

/// The public status page, feed and JSON: no token, and only what a statuspage channel published.
/// Served from memory (see `StatusCache`) with an `ETag` and `Last-Modified`, so a conditional GET
/// is a 304 and a proxy or CDN in front can absorb a crowd; `HEAD` answers the same headers.
extension HeraldApplication {
    func addStatusRoutes(to router: Router<HeraldRequestContext>) {
        let documents: [(path: String, kind: StatusCache.Kind, type: String, policy: String)] = [
            ("/status", .page, "text/html; charset=utf-8", PublicHeaders.pagePolicy),
            ("/status/feed.atom", .feed, "application/atom+xml; charset=utf-8", PublicHeaders.dataPolicy),
            ("/status.json", .json, "application/json", PublicHeaders.dataPolicy),
        ]
        for d in documents {
            router.get(RouterPath(d.path)) { request, _ in
                try await self.statusResponse(request, d.kind, type: d.type, policy: d.policy, head: false)
            }
            router.head(RouterPath(d.path)) { request, _ in
                try await self.statusResponse(request, d.kind, type: d.type, policy: d.policy, head: true)
            }
        }
        router.get("/status/logo") { _, _ in try self.logoResponse(head: false) }
        router.head("/status/logo") { _, _ in try self.logoResponse(head: true) }
    }

    /// The configured logo file, read once per configured path (a reload naming another file reads
    /// that one) and served from memory; 404 without one.
    func logoResponse(head: Bool) throws -> Response {
        guard let path = live.withLock({ $0.status.page.logo }), let type = StatusPageConfig.logoType(path) else {
            throw APIError.notFound("no logo")
        }
        let body: ByteBuffer
        if let cached = logoCache.withLock({ $0 }), cached.path == path {
            body = cached.body
        } else {
            // Checked before reading: the file may have grown since the configuration was loaded.
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int,
                  size <= StatusPageConfig.logoLimit, let data = FileManager.default.contents(atPath: path),
                  data.count <= StatusPageConfig.logoLimit else {
                throw APIError.notFound("no logo")
            }
            body = ByteBuffer(bytes: data)
            logoCache.withLock { $0 = (path, body) }
        }
        var headers = PublicHeaders.fields(contentType: type, policy: PublicHeaders.dataPolicy)
        headers[.cacheControl] = "public, max-age=3600"
        headers[.contentLength] = "\(body.readableBytes)"
        return Response(status: .ok, headers: headers, body: head ? .init() : .init(byteBuffer: body))
    }

    func statusResponse(_ request: Request, _ kind: StatusCache.Kind, type: String, policy: String, head: Bool) async throws -> Response {
        let status = live.withLock { $0.status }
        let settings = status.page
        let title = status.title
        let store = self.store
        let document = try await statusCache.document(kind, title: status.key) {
            let now = Date()
            let windows = try await store.maintenanceWindows(endingAfter: now.addingTimeInterval(-Self.maintenanceShown), limit: 100)
            let posts = try await store.statusPosts(limit: kind == .feed ? 100 : 500)
            let page = StatusPage(posts: posts, maintenance: windows, settings: settings, now: now)
            switch kind {
            case .page:
                return (posts, windows, page.html(title: title, subscribe: status.subscribe))
            case .feed:
                return (posts, windows, page.atom(title: title))
            case .json:
                let data = (try? JSONSerialization.data(withJSONObject: page.json(), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                return (posts, windows, String(decoding: data, as: UTF8.self))
            }
        }
        var headers = PublicHeaders.fields(contentType: type, policy: policy)
        headers[.eTag] = document.etag
        if let modified = document.lastModified { headers[.lastModified] = HTTPDate.format(modified) }
        if Self.notModified(request.headers, document) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        if head {
            headers[.contentLength] = "\(document.body.readableBytes)"
            return Response(status: .ok, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: document.body))
    }

    /// `If-None-Match` (any of its tags, weak or strong, or `*`) wins; else `If-Modified-Since`.
    static func notModified(_ headers: HTTPFields, _ document: StatusCache.Document) -> Bool {
        if let match = headers[.ifNoneMatch] {
            return match.split(separator: ",").contains { tag in
                let t = tag.trimmingCharacters(in: .whitespaces)
                return t == "*" || t == document.etag || t == "W/" + document.etag
            }
        }
        if let since = headers[.ifModifiedSince].flatMap(HTTPDate.parse), let modified = document.lastModified {
            return modified.timeIntervalSince1970.rounded(.down) <= since.timeIntervalSince1970
        }
        return false
    }
}

/// What the public status documents show of the configuration — the page's title and settings —
/// and the cache key they make: derived once per configuration (at start and on each reload), not
/// on every request of an outage's crowd.
struct StatusSettings: Sendable {
    let title: String
    let page: StatusPageConfig
    /// A subscribers channel is configured: the page offers the email sign-up.
    let subscribe: Bool
    /// Whatever of the settings a document shows: in its cache key and ETag.
    let key: String

    init(_ config: HeraldConfig) {
        page = config.statusPage
        title = page.title ?? config.server.statusTitle
        subscribe = config.channels.contains { $0.type == "subscribers" }
        key = ([title, page.url ?? "", page.logo ?? "", subscribe ? "subscribe" : ""]
               + page.components.map { "\($0.name)\u{1}\($0.group ?? "")\u{1}\($0.description ?? "")" }).joined(separator: "\u{0}")
    }
}

/// Publishes status posts into the store, and drops the rendered documents so the next reader
/// sees the post at once.
struct StoreStatusBoard: StatusBoard {
    let store: any Store
    let cache: StatusCache
    func publish(_ post: StatusPost) async throws {
        try await store.publishStatus(post)
        cache.invalidate()
    }
}

/// IMF-fixdate (RFC 9110): `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        return String(format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", days[(c.weekday ?? 1) - 1], c.day ?? 1,
                      months[(c.month ?? 1) - 1], c.year ?? 1970, c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }

    static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int(parts[3]) else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: year, month: month + 1, day: day, hour: time[0], minute: time[1], second: time[2]))
    }
}
