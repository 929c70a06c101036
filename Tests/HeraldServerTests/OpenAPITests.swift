import Foundation
import HeraldCore
import HeraldServer
import HeraldTransport
import Logging
import Testing
import TestSupport

/// The document served at GET /openapi.json is the repo's openapi.json, byte for byte
/// (the EmbedOpenAPI build plugin compiles it into HeraldServer).
@Suite(.serialized) struct OpenAPITests {
    static let repoDocument = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("openapi.json")

    @Test func servesTheRepoDocumentByteForByte() async throws {
        let dir = try temporaryDirectory()
        let yaml = """
            server:
              listen: 127.0.0.1:0
              tokens:
                - {name: monitoring, token: "openapi-ingest-token-0123456789", scopes: [ingest]}
                - {name: ops, token: "openapi-admin-token-01234567890", scopes: [admin]}
            store: {path: \(dir.path)/herald.sqlite}
            channels:
              quiet: {type: console}
            routes:
              - channels: [quiet]
            """
        let config = try ConfigLoader.load(yaml: yaml, file: "test.yaml")
        var logger = Logger(label: "openapi-test")
        logger.logLevel = .critical
        let app = try HeraldApplication(config: config, logger: logger, console: { _ in })
        let task = Task { try await app.run() }
        // The document is larger than the transport's default answer cap (made for providers' answers).
        let client = CurlTransport(maxResponseBytes: 1 << 20)
        #expect(await eventually(timeout: .seconds(60)) { app.port != 0 }, "the server did not start listening")
        let response = try await client.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(app.port)/openapi.json",
                                                         timeout: .seconds(10)))
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)

        let expected = try Data(contentsOf: Self.repoDocument)
        #expect(Data(response.body) == expected, "GET /openapi.json differs from openapi.json (the EmbedOpenAPI plugin embeds it at build time)")

        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(object["openapi"] as? String == "3.1.0")
        let paths = try #require(object["paths"] as? [String: Any])
        for path in ["/v1/events", "/v1/hooks/alertmanager", "/v1/hooks/grafana", "/v2/enqueue", "/v1/deliveries",
                     "/v1/deliveries/{id}", "/v1/deliveries/{id}/replay", "/v1/replay", "/v1/incidents",
                     "/v1/incidents/{key}", "/healthz", "/readyz", "/metrics", "/status", "/status/feed.atom",
                     "/status.json", "/openapi.json"] {
            #expect(paths[path] != nil, "openapi.json lacks \(path)")
        }
        // A documented path with another method is 405 with Allow; an unknown path stays 404.
        let base = "http://127.0.0.1:\(app.port)"
        let trace = try await client.send(HTTPRequest(method: "TRACE", url: base + "/v1/events", timeout: .seconds(10)))
        #expect(trace.status == 405 && trace.header("Allow") == "POST")
        let delete = try await client.send(HTTPRequest(method: "DELETE", url: base + "/v1/deliveries/dlv_1", timeout: .seconds(10)))
        #expect(delete.status == 405 && delete.header("Allow") == "GET")
        let nowhere = try await client.send(HTTPRequest(method: "GET", url: base + "/v1/nowhere", timeout: .seconds(10)))
        #expect(nowhere.status == 404)

        // Path parameters are percent-decoded, as the CLI encodes them (`:` and `/` in keys).
        var post = HTTPRequest(method: "POST", url: base + "/v1/events", timeout: .seconds(10))
        post.headers = [(name: "Authorization", value: "Bearer openapi-ingest-token-0123456789"), (name: "Content-Type", value: "application/json")]
        post.body = Array(#"{"incident":"am:web/1","status":"firing","title":"t"}"#.utf8)
        #expect(try await client.send(post).status == 202)
        var get = HTTPRequest(method: "GET", url: base + "/v1/incidents/am%3Aweb%2F1", timeout: .seconds(10))
        get.headers = [(name: "Authorization", value: "Bearer openapi-admin-token-01234567890")]
        let incident = try await client.send(get)
        #expect(incident.status == 200)
        #expect((try? JSONSerialization.jsonObject(with: Data(incident.body)) as? [String: Any])?["key"] as? String == "am:web/1")

        task.cancel()
        _ = try? await task.value
        client.shutdown()
    }
}
