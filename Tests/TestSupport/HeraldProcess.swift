import Foundation
import HeraldTransport

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

/// One running `herald` process with its output captured. Output goes to files, read on demand:
/// no dispatch read sources on pipes (their EOF handling has crashed test runs on Linux).
public final class HeraldProcess: Sendable {
    private let process: Process
    private let outPath: String
    private let errPath: String

    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HeraldBinary.path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        outPath = dir.appendingPathComponent("stdout").path
        errPath = dir.appendingPathComponent("stderr").path
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardInput = FileHandle.nullDevice
        self.process = process
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { process.isRunning }

    /// The port from the "listening on http(s)://HOST:PORT" log line, once it appears.
    public func waitForPort(timeout: Duration = .seconds(30)) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let range = stderr.range(of: #"listening on https?://[^\s]+:(\d+)"#, options: .regularExpression) {
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
            // Said on the test's own standard error, whatever the caller expects: a server that
            // outlives its SIGTERM is a bug, and its log is the only witness.
            let log = stderr.suffix(4000)
            FileHandle.standardError.write(Data("herald \(process.arguments?.first ?? "") (pid \(process.processIdentifier)) did not exit within \(timeout); killed. Its log ends:\n\(log)\n".utf8))
            signal(SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// POSTs one event to a running server's /v1/events as a monitoring tool would; the status.
public func postEvent(_ client: CurlTransport, port: Int, token: String, incident: String, status: String = "triggered",
                      title: String? = nil) async throws -> Int {
    let body = #"{"incident":"\#(incident)","status":"\#(status)","title":"\#(title ?? "Disk full on \(incident)")"}"#
    return try await client.send(HTTPRequest(
        url: "http://127.0.0.1:\(port)/v1/events",
        headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
        body: Array(body.utf8))).status
}

/// The `server:` block an end-to-end test's configuration starts with: any free port, a short
/// drain, an ingest token and an admin token.
public func serverYAML(ingest: String, admin: String) -> String {
    """
    server:
      listen: 127.0.0.1:0
      drain_timeout: 2s
      tokens:
        - {name: monitoring, token: "\(ingest)", scopes: [ingest]}
        - {name: ops, token: "\(admin)", scopes: [admin]}
    """
}
