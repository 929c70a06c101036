import Foundation
import HeraldCore

extension Store {
    /// Makes the stored silences of quiet hours (ids `quiet_…`) those the configuration wants
    /// now: each occurrence in `desired` is added unless it is already stored (an operator may
    /// have expired it: it stays expired); one in force or pending that the configuration no
    /// longer wants (a reload changed or removed it) is expired now. Built on the silence
    /// operations every store has; several nodes may run it at once (the same ids).
    /// Answers whether anything changed.
    @discardableResult
    public func syncQuietHours(_ desired: [Silence], now: Date) async throws -> Bool {
        let stored = try await silences(includeExpired: false, now: now, limit: 1000).filter { $0.id.hasPrefix(QuietHours.idPrefix) }
        let wanted = Set(desired.map(\.id))
        var changed = false
        for silence in stored where !wanted.contains(silence.id) {
            _ = try await expireSilence(id: silence.id, now: now)
            changed = true
        }
        let have = Set(stored.map(\.id))
        for silence in desired where !have.contains(silence.id) {
            guard try await self.silence(id: silence.id) == nil else { continue }
            do {
                try await addSilence(silence)
                changed = true
            } catch let error as StoreError where error.isRejected {
                // Another node added it first.
                guard try await self.silence(id: silence.id) != nil else { throw error }
            }
        }
        return changed
    }
}
