import ArgumentParser
import Foundation
import HeraldTransport

/// `--server`, `--token`, `--wait`: how client commands reach a running Herald.
struct ClientOptions: ParsableArguments {
    @Option(help: "Herald server URL (default: $HERALD_URL or http://127.0.0.1:8080).")
    var server: String?

    @Option(help: "Bearer token (default: $HERALD_TOKEN).")
    var token: String?

    @Option(help: "Seconds to keep retrying while the server is unreachable or unavailable (0 to 86400).")
    var wait: Double = 30

    /// NaN or infinity would trap where the wait is printed as whole seconds; a day is longer
    /// than any script should block on one call.
    mutating func validate() throws {
        guard wait.isFinite, (0...86_400).contains(wait) else {
            throw ValidationError("--wait must be a number of seconds from 0 to 86400")
        }
    }

    var baseURL: String {
        let url = server ?? ProcessInfo.processInfo.environment["HERALD_URL"] ?? "http://127.0.0.1:8080"
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    var bearer: String? { token ?? ProcessInfo.processInfo.environment["HERALD_TOKEN"] }
}

/// A small JSON client: plain sockets to an `http://` server (a hook's process then never loads
/// libcurl), the dispatcher's libcurl transport for `https://` or through a proxy.
struct ServerClient {
    let options: ClientOptions
    let transport: any HTTPTransport

    init(options: ClientOptions) {
        self.options = options
        // Lists (`herald deliveries`, `incidents`) can be long: answers up to 16 MB are read whole.
        transport = PlainHTTPTransport.handles(options.baseURL, environment: ProcessInfo.processInfo.environment)
            ? PlainHTTPTransport(maxResponseBytes: 16 << 20) : CurlTransport(maxResponseBytes: 16 << 20)
    }

    /// Sends the request, retrying connection failures and 502/503/504 until `--wait` runs out
    /// (exit 4; at once for a refused certificate, which waiting cannot change). A 4xx/5xx answer
    /// is exit 3 with the server's error text. Answers the JSON body.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil, headers: [(String, String)] = []) async throws -> Any {
        var request = HTTPRequest(method: method, url: options.baseURL + path, timeout: .seconds(30), connectTimeout: .seconds(5))
        request.headers = headers.map { (name: $0.0, value: $0.1) }
        request.headers.append((name: "Accept", value: "application/json"))
        // The server records events from `herald send` with the source `cli`.
        request.headers.append((name: "User-Agent", value: "herald/cli"))
        if let token = options.bearer { request.headers.append((name: "Authorization", value: "Bearer \(token)")) }
        if let body {
            request.body = Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
            request.headers.append((name: "Content-Type", value: "application/json"))
        }
        let deadline = Date().addingTimeInterval(max(0, options.wait))
        var delay = 0.25
        var lastProblem = ""
        defer { (transport as? CurlTransport)?.shutdown() }
        while true {
            do {
                let response = try await transport.send(request)
                let json = try? JSONSerialization.jsonObject(with: Data(response.body))
                switch response.status {
                case 200..<300:
                    return json ?? [:]
                case 502, 503, 504:
                    lastProblem = "server answered \(response.status)\(Self.errorText(json).map { ": \($0)" } ?? "")"
                default:
                    var text = "herald: server answered \(response.status)"
                    if let error = Self.errorText(json) { text += ": \(error)" }
                    if let field = (json as? [String: Any])?["field"] as? String { text += " (field: \(field))" }
                    throw CLIExit.rejected(text)
                }
            } catch let error as TransportError where error.kind == .invalidRequest {
                // Waiting cannot fix the request itself (a URL with credentials, a header with a line break).
                throw CLIExit.usage("herald: \(error.message)")
            } catch let error as TransportError where error.isCertificateRefused {
                // The same certificate answers every retry: say so now instead of after `--wait`.
                throw CLIExit.unreachable("herald: cannot reach \(Self.origin(options.baseURL)): \(error.message) (not retried: the certificate was refused)")
            } catch let error as TransportError {
                lastProblem = "\(error.message)"
            }
            if Date().addingTimeInterval(delay) > deadline {
                throw CLIExit.unreachable("herald: cannot reach \(Self.origin(options.baseURL)) after \(Int(options.wait))s: \(lastProblem)")
            }
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            delay = min(delay * 2, 2)
        }
    }

    static func errorText(_ json: Any?) -> String? {
        (json as? [String: Any])?["error"] as? String
    }

    static func origin(_ url: String) -> String {
        guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return "the server" }
        return "\(scheme)://\(host)\(c.port.map { ":\($0)" } ?? "")"
    }
}

func printJSON(_ value: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
