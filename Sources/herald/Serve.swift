import ArgumentParser
import Foundation
import HeraldChannels
import HeraldCore
import HeraldServer
import HeraldStore
import HeraldTransport
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the Herald server and dispatcher.")

    @Option(help: "Configuration file (default: $HERALD_CONFIG).")
    var config: String?

    @Option(help: "Listen on HOST:PORT, overriding server.listen.")
    var listen: String?

    @Option(help: "The store, overriding the configuration: a SQLite file, or a postgres:// URL (several nodes may share one).")
    var store: String?

    @Flag(help: "Apply pending PostgreSQL migrations before starting (without it, an un-migrated database is refused).")
    var migrate = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "Log format: text (key=value) or json (one object per line), overriding server.log_format.")
    var logFormat: String?

    func run() async throws {
        limitMallocArenas()
        // libcurl is loaded on first use: a server without it would accept events it cannot send.
        if let problem = CurlTransport.unavailable { throw CLIExit.local("herald serve: \(problem)") }
        var loaded = try loadConfig(config)
        if let listen, HostPort(parsing: listen) == nil {
            throw CLIExit.usage("--listen: expected HOST:PORT, got \"\(listen)\"")
        }
        let overrides: @Sendable (inout HeraldConfig) -> Void = { [listen, store] loaded in
            if let listen, let hp = HostPort(parsing: listen) { loaded.server.listen = hp }
            if let store {
                if StoreConfig.isPostgresURL(store) {
                    loaded.store.url = Secret(store)
                } else {
                    loaded.store.path = store
                    loaded.store.url = nil
                }
            }
        }
        overrides(&loaded)
        guard let level = Logger.Level(rawValue: logLevel) else { throw CLIExit.usage("--log-level: unknown level \"\(logLevel)\"") }
        var format = loaded.server.logFormat
        if let logFormat {
            guard let chosen = LogFormat(rawValue: logFormat) else { throw CLIExit.usage("--log-format: expected text or json, got \"\(logFormat)\"") }
            format = chosen
        }
        // Configured secrets are masked in every line, whatever the call site did.
        let redaction = LogRedaction(Redactor(secrets: loaded.secrets))
        HeraldLogging.bootstrap(format: format, level: level, redaction: redaction)
        let logger = Logger(label: "herald")
        let app: HeraldApplication
        let opened: any Store
        do {
            opened = try await HeraldApplication.openStore(loaded.store, migrate: migrate, logger: logger)
        } catch let error as StoreError {
            throw CLIExit.local("herald: \(error)")
        }
        do {
            app = try HeraldApplication(config: loaded, store: opened, logger: logger)
        } catch let errors as ConfigErrors {
            await opened.close()
            throw CLIExit.local(errors.description)
        } catch let error as StoreError {
            await opened.close()
            throw CLIExit.local("herald: \(error)")
        }
        redaction.follow(app)
        app.keepOverrides(overrides)
        // SIGHUP re-reads the configuration (as `herald reload` does): a file with a problem
        // changes nothing, and the log says why.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler {
            Task {
                do {
                    _ = try await app.reload()
                } catch {
                    logger.error("configuration not reloaded; the running one is unchanged", metadata: ["error": "\(error)"])
                }
            }
        }
        hangup.resume()
        defer { hangup.cancel() }
        do {
            try await app.run()
            await opened.close()
        } catch {
            await opened.close()
            if let failed = error as? ListenerError {
                let why = "\(failed.underlying)"
                let reason = why.contains("Address already in use") ? "address already in use" : why
                throw CLIExit.local("herald: cannot listen on \(failed.address) (\(failed.key)): \(reason)")
            }
            throw CLIExit.local("herald: \(error)")
        }
    }
}

/// Loads the configuration named by `--config` or `HERALD_CONFIG`, turning problems into one
/// line each (file:line:column: key path: message) and exit code 1.
func loadConfig(_ path: String?) throws -> HeraldConfig {
    guard let file = path ?? ProcessInfo.processInfo.environment["HERALD_CONFIG"], !file.isEmpty else {
        throw CLIExit.usage("herald: no configuration: pass --config FILE or set HERALD_CONFIG")
    }
    do {
        // The listener's certificate and key are checked here too, so `herald check` finds them.
        return try ConfigLoader.load(file: file, validate: { ChannelRegistry.validate($0) + ListenerTLS.validate($0) })
    } catch let errors as ConfigErrors {
        throw CLIExit.local(errors.description)
    } catch let error as ConfigError {
        throw CLIExit.local(error.description)
    }
}

/// glibc gives each thread that allocates concurrently its own arena (up to 8 per core); with a
/// thread pool, an event loop and libcurl's thread, the arenas' fragmentation was most of the
/// growth of resident memory under load (peak RSS 77-80 MB → 68 MB at 100k deliveries with two).
/// `MALLOC_ARENA_MAX` in the environment still wins.
private func limitMallocArenas() {
    #if canImport(Glibc)
    // mallopt is not in the Glibc module (malloc.h); M_ARENA_MAX is -8 in it.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    if getenv("MALLOC_ARENA_MAX") == nil, let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-8, 2)
    }
    #endif
}
