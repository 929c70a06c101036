import Foundation
import HeraldCore
import HeraldDispatcher
import HeraldStore
import Logging
import NIOCore

extension HeraldApplication {
    /// The operator notice's incident for a channel: one per channel, so a second pause while the
    /// first is open pages nobody again, and the recovery is its all-clear.
    static func healthIncident(_ channel: String) -> String { "herald:channel:\(channel)" }

    /// A channel paused or recovered: log it, and tell the channels its `health.notify` names
    /// (never the channel itself) as an incident Herald raises and resolves.
    func announce(_ change: HealthChange) async {
        let live = self.live.withLock { $0 }
        let name = change.channel
        let health = change.health
        let lastError = live.redactor.redact(health.lastError ?? "unknown")
        let since = health.failingSince.map(RFC3339.format) ?? RFC3339.format(change.at)
        let title: String
        let message: String
        switch change.change {
        case .paused:
            let window = change.policy.pauseAfter?.formatted ?? "a while"
            title = "Channel \(name) is paused: every attempt failed for \(window)"
            message = "\(health.failures) attempts failed since \(since); the last: \(lastError). Its deliveries wait "
                + "(nothing is dropped): Herald sends one every \(change.policy.probeEvery.formatted) and resumes the "
                + "channel on the first that succeeds."
            logger.error("channel paused: every attempt failed", metadata: [
                "channel": "\(name)", "failing_since": "\(since)", "failures": "\(health.failures)",
                "error": "\(lastError)", "probe_every": "\(change.policy.probeEvery.formatted)",
            ])
        case .recovered:
            title = "Channel \(name) recovered"
            message = "An attempt succeeded after \(health.failures) failed since \(since); its waiting deliveries go out now."
            logger.notice("channel recovered", metadata: [
                "channel": "\(name)", "failing_since": "\(since)", "failures": "\(health.failures)",
            ])
        }
        let notify = change.policy.notify.filter { $0 != name && live.channels[$0] != nil }
        guard !notify.isEmpty else { return }
        let now = Date()
        let event = Event(id: Identifier.make(prefix: "evt", at: now), incident: Self.healthIncident(name),
                          status: change.change == .paused ? .triggered : .resolved, severity: .major,
                          title: title, message: message, components: ["herald"], labels: ["channel": name],
                          occurredAt: change.at, receivedAt: now, source: "herald", actor: "herald")
        let request = EnqueueRequest(event: event, routing: Routing(channels: notify, recipients: live.routing.recipients))
        do {
            for result in try await ingest.submit([request]) {
                if case .accepted(let accepted) = result { dispatcher.wake(channels: accepted.channels) }
            }
        } catch {
            logger.error("cannot commit the operator notice for a channel's health", metadata: [
                "channel": "\(name)", "error": "\(live.redactor.redact("\(error)"))",
            ])
        }
    }
}
