import Testing
import TestSupport

/// Runs a suite against one plain and one secure SMTP peer, started before its first test and
/// stopped after its last.
struct SMTPPeersTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        async let plainStart = SMTPPeer.start(.plain)
        async let secureStart = SMTPPeer.start(.secure)
        let plain: SMTPPeer, secure: SMTPPeer
        do {
            plain = try await plainStart
        } catch {
            (try? await secureStart)?.stop()
            throw error
        }
        do {
            secure = try await secureStart
        } catch {
            plain.stop()
            throw error
        }
        defer {
            plain.stop()
            secure.stop()
        }
        try await SMTPPeer.$plain.withValue(plain) {
            try await SMTPPeer.$secure.withValue(secure) {
                try await function()
            }
        }
    }
}

extension Trait where Self == SMTPPeersTrait {
    /// Real SMTP servers for the suite: `SMTPPeer.plain` and `SMTPPeer.secure` inside its tests.
    static var smtpPeers: Self { SMTPPeersTrait() }
}
