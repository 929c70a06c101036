import Foundation
import Synchronization

/// A one-slot wake-up signal: `signal()` from anywhere, `wait(until:)` from one waiter. A signal
/// sent while nobody waits is kept, so a wake-up between "found nothing" and "wait" is not lost.
public final class Wakeup: Sendable {
    public init() {}
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    public func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// The longest one wait sleeps. A later deadline (a retry far away, a rate of one start a
    /// year, a date no clock reaches) returns after this, and the caller looks again: a spare
    /// wake-up an hour costs nothing, and no deadline can overflow the sleep's conversion.
    static let longestSleep: TimeInterval = 3600

    /// Returns on a signal, or at `deadline` (nil: no deadline), or after `longestSleep` at most.
    public func wait(until deadline: Date?) async {
        var timer: Task<Void, Never>?
        if let deadline {
            let delay = deadline.timeIntervalSinceNow
            if delay <= 0 { return }
            // NaN (not a time) and +infinity sleep the longest too.
            let seconds = delay.isFinite ? min(delay, Self.longestSleep) : Self.longestSleep
            let sleep = Duration.milliseconds(Int64(seconds * 1000) + 1)
            timer = Task { [weak self] in
                // Cancelled when the wait ends first; a cancelled sleep must not signal.
                guard (try? await Task.sleep(for: sleep)) != nil else { return }
                self?.signal()
            }
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.pending {
                    s.pending = false
                    return true
                }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
        timer?.cancel()
    }
}
