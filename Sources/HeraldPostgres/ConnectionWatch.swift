import PostgresNIO
import Synchronization

/// Fails the operation running on a pooled connection as soon as that connection closes.
///
/// A server that ends a connection (a restart: `pg_ctl restart -m fast`) normally fails the query
/// running on it at once. Under load it was seen not to: a query whose connection had closed stayed
/// unanswered (PostgresNIO 1.33) until the store's own 15 s operation clock, and the outcomes
/// waiting on it kept their deliveries in flight past their leases, so other nodes sent them again.
/// Each connection gets one close callback when first seen (a pooled connection serves many
/// operations: a callback per operation would pile up on it); the callback trips whatever
/// operation is running on the connection then.
final class ConnectionWatch: Sendable {
    /// How long a closed connection's own error has to fail the query first: it says why (the
    /// server's message and SQLSTATE), the watch only that the connection is gone.
    static let grace: TimeAmount = .milliseconds(250)

    private struct Entry {
        var running: Tripwire?
    }
    private let entries = Mutex<[PostgresConnection.ID: Entry]>([:])

    /// Marks `tripwire` as the operation running on `connection` until `finished` is called.
    func watch(_ connection: PostgresConnection, _ tripwire: Tripwire) {
        let first = entries.withLock { e -> Bool in
            let first = e[connection.id] == nil
            e[connection.id, default: Entry()].running = tripwire
            return first
        }
        if first {
            let id = connection.id
            let eventLoop = connection.eventLoop
            connection.closeFuture.whenComplete { [weak self] _ in
                eventLoop.scheduleTask(in: Self.grace) { [weak self] in
                    let running = self?.entries.withLock { $0.removeValue(forKey: id)?.running }
                    running?.trip()
                }
            }
        }
        // Closed before it was watched: the callback above ran (or will run) after the grace.
    }

    func finished(_ connection: PostgresConnection) {
        entries.withLock { $0[connection.id]?.running = nil }
    }
}

/// The other way a `deadline` ends early: its body's connection closed. Armed by the deadline with
/// what to do; tripping before it is armed does it when armed.
final class Tripwire: Sendable {
    private struct State {
        var action: (@Sendable () -> Void)?
        var tripped = false
    }
    private let state = Mutex(State())

    func arm(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.tripped { return true }
            s.action = action
            return false
        }
        if now { action() }
    }

    func trip() {
        let action = state.withLock { s -> (@Sendable () -> Void)? in
            if s.tripped { return nil }
            s.tripped = true
            defer { s.action = nil }
            return s.action
        }
        action?()
    }
}
