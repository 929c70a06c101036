import ArgumentParser
import Foundation
import HeraldCore
import HeraldSQLite
import HeraldStore
import HeraldTransport
#if canImport(Glibc)
import Glibc
#endif

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy a running server's SQLite store to a file, while it serves.",
        discussion: """
            Asks the server (GET /v1/backup, an admin token) for a consistent copy made with \
            SQLite's online backup API: every event and delivery committed before the backup \
            began is in it. The copy is written to FILE.partial, checked (SQLite quick_check and \
            Herald's schema), then renamed to FILE. To restore, stop herald and put the copy in \
            place of the store file (see the README). A PostgreSQL store is backed up with pg_dump.

            Exit codes: 0 done, 1 the file cannot be written or the copy fails its check, \
            2 usage, 3 refused by the server (a PostgreSQL store, a backup already running, \
            the token), 4 server unreachable.
            """)

    @OptionGroup var client: ClientOptions

    @Option(name: .customLong("to"), help: "Write the copy to this file.")
    var file: String

    @Flag(help: "Replace FILE if it exists.")
    var force = false

    @Option(help: "Seconds the whole transfer may take (1 to 86400).")
    var timeout: Double = 3600

    func validate() throws {
        guard timeout.isFinite, (1...86_400).contains(timeout) else {
            throw ValidationError("--timeout must be a number of seconds from 1 to 86400")
        }
    }

    func run() async throws {
        if FileManager.default.fileExists(atPath: file), !force {
            throw CLIExit.local("herald backup: \(file) exists (use --force to replace it)")
        }
        let partial = file + ".partial"
        let fd = open(partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CLIExit.local("herald backup: cannot write \(partial): \(String(cString: strerror(errno)))")
        }
        var kept = false
        defer {
            close(fd)
            if !kept { unlink(partial) }
        }
        let started = ContinuousClock.now
        let response = try await download(to: fd, partial: partial)
        var info = stat()
        guard fstat(fd, &info) == 0, fsync(fd) == 0 else {
            throw CLIExit.local("herald backup: cannot write \(partial): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        if let expected = response.header("Content-Length").flatMap(Int.init), expected != size {
            throw CLIExit.local("herald backup: the transfer was cut short (\(size) of \(expected) bytes); nothing was written to \(file)")
        }
        let backup: BackupInfo
        do {
            backup = try SQLiteStore.inspectBackup(at: partial)
        } catch {
            throw CLIExit.local("herald backup: the copy is not a readable SQLite database (\(error)); nothing was written to \(file)")
        }
        if let problem = backup.integrity {
            throw CLIExit.local("herald backup: the copy fails SQLite's quick_check (\(problem)); nothing was written to \(file)")
        }
        guard rename(partial, file) == 0 else {
            throw CLIExit.local("herald backup: cannot rename \(partial) to \(file): \(String(cString: strerror(errno)))")
        }
        kept = true
        let seconds = (ContinuousClock.now - started).seconds
        print("backed up \(backup.deliveries) deliveries, \(backup.events) events, \(backup.incidents) incidents "
              + "(\(Self.megabytes(size)), schema \(backup.schemaVersion)) to \(file) in \(String(format: "%.1f", seconds)) s")
    }

    /// GET /v1/backup into `fd`, retrying while the server is unreachable or unavailable for
    /// `--wait` seconds (as the other client commands do). A refusal is exit 3 with its reason.
    func download(to fd: Int32, partial: String) async throws -> HTTPResponse {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        var request = HTTPRequest(method: "GET", url: client.baseURL + "/v1/backup",
                                  timeout: .milliseconds(Int64(timeout * 1000)), connectTimeout: .seconds(5))
        request.headers = [(name: "User-Agent", value: "herald/cli")]
        if let token = client.bearer { request.headers.append((name: "Authorization", value: "Bearer \(token)")) }
        let deadline = Date().addingTimeInterval(max(0, client.wait))
        var delay = 0.25
        var lastProblem = ""
        while true {
            guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
                throw CLIExit.local("herald backup: cannot write \(partial): \(String(cString: strerror(errno)))")
            }
            do {
                let response = try await transport.download(request, to: fd)
                if response.status == 200 { return response }
                // An error answer is small JSON, written to the file like any body.
                let answer = (try? Data(contentsOf: URL(fileURLWithPath: partial))) ?? Data()
                let error = ServerClient.errorText(try? JSONSerialization.jsonObject(with: answer))
                if [502, 503, 504].contains(response.status) {
                    lastProblem = "server answered \(response.status)\(error.map { ": \($0)" } ?? "")"
                } else {
                    throw CLIExit.rejected("herald backup: server answered \(response.status)\(error.map { ": \($0)" } ?? "")")
                }
            } catch let error as TransportError {
                if error.kind == .other { throw CLIExit.local("herald backup: \(partial): \(error.message)") }
                // A transfer cut mid-way is not retried: the server may be busy copying a large store.
                if error.kind == .timeout || error.kind == .receive {
                    throw CLIExit.unreachable("herald backup: the transfer from \(ServerClient.origin(client.baseURL)) failed: \(error.message)")
                }
                lastProblem = error.message
            }
            if Date().addingTimeInterval(delay) > deadline {
                throw CLIExit.unreachable("herald backup: cannot reach \(ServerClient.origin(client.baseURL)) after \(Int(client.wait))s: \(lastProblem)")
            }
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            delay = min(delay * 2, 2)
        }
    }

    static func megabytes(_ bytes: Int) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }
}
