import Foundation
import Synchronization

/// The built `herald` binary, run as a child process: what a user runs.
public enum HeraldBinary {
    /// `$HERALD_BINARY`, or `.build/debug/herald` beside this package.
    public static var path: String {
        if let p = ProcessInfo.processInfo.environment["HERALD_BINARY"] { return p }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for config in ["debug", "release"] {
            let p = root.appendingPathComponent(".build/\(config)/herald").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return root.appendingPathComponent(".build/debug/herald").path
    }

    /// Runs a command to completion: exit status, standard output, standard error.
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> (Int32, String, String) {
        let p = try HeraldProcess(arguments, environment: environment)
        let status = await p.waitForExit(timeout: timeout)
        return (status ?? -1, p.stdout, p.stderr)
    }
}

/// One running `herald` process with its output captured.
public final class HeraldProcess: Sendable {
    private let process: Process
    private final class Buffer: Sendable {
        let bytes = Mutex<[UInt8]>([])
        var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
    }
    private let out = Buffer()
    private let err = Buffer()

    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HeraldBinary.path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        let out = self.out
        let err = self.err
        outPipe.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            out.bytes.withLock { $0.append(contentsOf: d) }
        }
        errPipe.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            err.bytes.withLock { $0.append(contentsOf: d) }
        }
        self.process = process
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var stdout: String { out.text }
    public var stderr: String { err.text }
    public var isRunning: Bool { process.isRunning }

    /// The port from the "listening on http://HOST:PORT" log line, once it appears.
    public func waitForPort(timeout: Duration = .seconds(30)) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let range = stderr.range(of: #"listening on http://[^\s]+:(\d+)"#, options: .regularExpression) {
                let line = stderr[range]
                if let colon = line.lastIndex(of: ":") { return Int(line[line.index(after: colon)...]) }
            }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    public func signal(_ sig: Int32) {
        kill(process.processIdentifier, sig)
    }

    /// Waits for the process to end; nil on timeout (then it is killed).
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
            return nil
        }
        // Let the pipe handlers drain what is left.
        try? await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
