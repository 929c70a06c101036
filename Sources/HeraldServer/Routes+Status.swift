import Foundation
import HeraldChannels
import HeraldCore
import HeraldStore
import Hummingbird

/// The public status page, feed and JSON: no token, and only what a statuspage channel published.
extension HeraldApplication {
    func addStatusRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/status") { _, _ in
            let page = StatusPage(posts: try await self.store.statusPosts(limit: 500))
            return Self.text(page.html(title: self.config.server.statusTitle), type: "text/html; charset=utf-8",
                             policy: PublicHeaders.pagePolicy)
        }
        router.get("/status/feed.atom") { _, _ in
            let page = StatusPage(posts: try await self.store.statusPosts(limit: 100))
            return Self.text(page.atom(title: self.config.server.statusTitle), type: "application/atom+xml; charset=utf-8",
                             policy: PublicHeaders.dataPolicy)
        }
        router.get("/status.json") { _, _ in
            let page = StatusPage(posts: try await self.store.statusPosts(limit: 500))
            let data = (try? JSONSerialization.data(withJSONObject: page.json(), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return Self.text(String(decoding: data, as: UTF8.self), type: "application/json", policy: PublicHeaders.dataPolicy)
        }
    }

    static func text(_ body: String, type: String, policy: String) -> Response {
        Response(status: .ok, headers: PublicHeaders.fields(contentType: type, policy: policy),
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Publishes status posts into the store.
struct StoreStatusBoard: StatusBoard {
    let store: any Store
    func publish(_ post: StatusPost) async throws {
        try await store.publishStatus(post)
    }
}
