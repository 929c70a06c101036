import Foundation
import HeraldCore
import Hummingbird

extension HeraldApplication {
    func addOpsRoutes(to router: Router<HeraldRequestContext>) {
        addHealthRoute(to: router)
        // Ready: listening, and the store answers.
        router.get("/readyz") { _, _ in
            guard self.isReady else {
                throw APIError(.serviceUnavailable, "starting")
            }
            do {
                _ = try await self.store.incidents(limit: 1)
            } catch {
                throw APIError(.serviceUnavailable, "store unavailable")
            }
            return JSONBody.response(.ok, ["status": "ready"])
        }
        router.get("/metrics") { _, _ in
            let bytes = await HeraldMetrics.render(store: self.store)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// Alive: the process answers (served on `server.public_listen` too, for a load balancer).
    func addHealthRoute(to router: Router<HeraldRequestContext>) {
        router.get("/healthz") { _, _ in
            JSONBody.response(.ok, ["status": "ok"])
        }
    }
}
