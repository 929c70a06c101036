import Foundation
import HeraldCore
import HeraldDispatcher
import Hummingbird

extension HeraldApplication {
    /// `GET /v1/channels` (admin): every configured channel with its health — healthy, failing
    /// (every attempt since `failing_since` failed) or paused (one probe per `probe_every`).
    func addChannelRoutes(to router: Router<HeraldRequestContext>) {
        router.get("/v1/channels") { request, context in
            _ = try self.auth.require(.admin, request, context)
            return JSONBody.response(.ok, ["channels": self.channelReports()])
        }
    }

    struct ChannelReport: Encodable {
        var name: String
        var type: String
        var state: String
        var in_flight: Int
        var failures: Int
        var failing_since: String?
        var last_error: String?
        var paused_since: String?
        var next_probe_at: String?
        var pause_after: String?
        var probe_every: String
        var notify: [String]
    }

    func channelReports() -> [ChannelReport] {
        let (config, redactor) = live.withLock { ($0.config, $0.redactor) }
        let health = dispatcher.health.snapshot()
        let inFlight = dispatcher.inFlight()
        return config.channels.map { channel in
            let h = health[channel.name] ?? ChannelHealth()
            let nextProbe = h.state == .paused
                ? h.admits(1, at: Date(), policy: channel.health).nextProbe ?? Date() : nil
            return ChannelReport(
                name: channel.name, type: channel.type, state: h.state.rawValue, in_flight: inFlight[channel.name] ?? 0,
                failures: h.failures, failing_since: h.failingSince.map(RFC3339.format),
                last_error: h.lastError.map(redactor.redact), paused_since: h.pausedAt.map(RFC3339.format),
                next_probe_at: nextProbe.map(RFC3339.format), pause_after: channel.health.pauseAfter?.formatted ?? "off",
                probe_every: channel.health.probeEvery.formatted, notify: channel.health.notify.filter { $0 != channel.name })
        }
    }
}
