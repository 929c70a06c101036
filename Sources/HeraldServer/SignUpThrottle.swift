import Foundation

/// Sign-ups on the public status page, limited per client address (a burst of 5, then one every
/// 2 minutes) and in total (a burst of 100, then one a second): a sign-up sends mail to an address
/// anyone may type, so a script must not turn Herald into a mail cannon. Behind a reverse proxy
/// every client shares its address: limit there too.
final class SignUpThrottle: Sendable {
    let perClient: AuthThrottle
    let total: AuthThrottle

    init(perClient: AuthThrottle = AuthThrottle(burst: 5, perSecond: 1.0 / 120),
         total: AuthThrottle = AuthThrottle(burst: 100, perSecond: 1)) {
        self.perClient = perClient
        self.total = total
    }

    /// Takes one sign-up from `client`'s budget and the total's; nil when allowed, else how long
    /// to wait (nothing is taken then).
    func take(_ client: String, now: Date = Date()) -> Duration? {
        if let wait = perClient.blocked(client, now: now) ?? total.blocked("*", now: now) { return wait }
        perClient.failed(client, now: now)
        total.failed("*", now: now)
        return nil
    }
}
