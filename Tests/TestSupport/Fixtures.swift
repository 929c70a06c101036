import Foundation
import HeraldCore

/// A fresh directory under the system temporary directory.
public func temporaryDirectory(_ prefix: String = "herald-test") throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Polls `condition` until it holds or `timeout` passes. Answers whether it held.
public func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

public func makeEvent(_ incident: String, _ status: EventStatus = .triggered, severity: Severity = .critical,
                      title: String = "DNS resolution failing", at date: Date = Date()) -> Event {
    Event(id: Identifier.make(prefix: "evt", at: date), incident: incident, status: status, severity: severity,
          title: title, message: "resolvers time out", components: ["web"], labels: ["team": "net"],
          occurredAt: date, receivedAt: date)
}

/// Runs blocking work (a child process and its pipes) on a thread of its own rather than one of
/// the concurrency pool's (two on this machine): a test that blocks a pool thread while its child
/// talks to a server in this process can starve that server until the child times out.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
