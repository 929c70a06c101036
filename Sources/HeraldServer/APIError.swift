import Foundation
import HeraldCore
import Hummingbird

/// An answer to a client's mistake (or to a service problem): the exact status and
/// `{"error": "…", "field": "…"}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var field: String?
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var object: [String: String] = ["error": message]
        if let field { object["field"] = field }
        var response = JSONBody.response(status, object)
        response.headers.append(contentsOf: headers)
        return response
    }

    static func badRequest(_ message: String, field: String? = nil) -> APIError { APIError(.badRequest, message, field: field) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }
}

/// Turns every error that escapes a handler into a JSON answer, so no client ever sees a bare
/// text body or an internal error's text.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods a path this router serves allows (nil: a path it does not serve).
    var allowedMethods: @Sendable (String) -> [String]? = { HeraldApplication.allowedMethods(path: $0) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            // The router answers 404 for a known path with another method: that is 405, with Allow.
            if error.status == .notFound, let allowed = allowedMethods(request.uri.path) {
                return try APIError(.methodNotAllowed, "method \(request.method.rawValue) not allowed",
                                    headers: [.allow: allowed.joined(separator: ", ")]).response(from: request, context: context)
            }
            return try APIError(error.status, error.body ?? error.status.reasonPhrase).response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            return try APIError(error.status, error.status.reasonPhrase).response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return try APIError(.internalServerError, "internal error").response(from: request, context: context)
        }
    }
}

/// JSON bodies: RFC 3339 dates, sorted keys, no escaped slashes.
enum JSONBody {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(RFC3339.format(date))
        }
        return e
    }()

    static func response(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"cannot encode answer\"}".utf8)
        var buffer = ByteBuffer()
        buffer.writeBytes(data)
        buffer.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}
