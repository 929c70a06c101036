import CCurl
import Foundation

extension CurlTransport {
    static func kind(for code: CURLcode) -> TransportError.Kind {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .resolve
        case CURLE_COULDNT_CONNECT:
            return .connect
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_INITFAILED,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            return .tls
        case CURLE_SEND_ERROR, CURLE_SEND_FAIL_REWIND:
            return .send
        case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM,
             CURLE_WEIRD_SERVER_REPLY, CURLE_BAD_CONTENT_ENCODING:
            return .receive
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT:
            return .invalidRequest
        default:
            return .other
        }
    }

    /// Codes for a certificate refused: the peer's did not verify (or its pinned key did not match)
    /// or the local trust settings cannot be used. Waiting does not change either.
    static let certificateRefusedCodes: Set<Int32> = Set([
        CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
        CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CERTPROBLEM,
    ].map { Int32(bitPattern: $0.rawValue) })

    /// libcurl's text for `code` plus the error buffer, with every secret the request carries removed.
    static func error(for code: CURLcode, transfer: Transfer) -> TransportError {
        let detail = transfer.errorBufferText.trimmingCharacters(in: .whitespacesAndNewlines)
        if code == CURLE_SEND_FAIL_REWIND && transfer.refusedResend {
            // The buffer keeps the first failure's text (libcurl writes it once per transfer).
            var message = "no answer after the request was sent on two connections; not sent a third time"
            if !detail.isEmpty && !detail.contains("seek") { message += ": " + detail }
            return TransportError(kind: .send, code: Int32(bitPattern: code.rawValue), message: redact(message, transfer: transfer))
        }
        var message = String(cString: hc_easy_strerror(code))
        if !detail.isEmpty && detail != message {
            message += ": " + detail
        }
        return TransportError(
            kind: kind(for: code), code: Int32(bitPattern: code.rawValue),
            message: redact(message, transfer: transfer))
    }

    static func redact(_ text: String, transfer: Transfer) -> String {
        switch transfer.payload {
        case .http(let request): return redact(text, request: request)
        case .mail(let mail): return redact(text, mail: mail)
        }
    }

    /// Removes the URL's userinfo, path, query and fragment (whole and piecewise) and every header value
    /// from `text`. Scheme, host and port are left alone.
    static func redact(_ text: String, request: HTTPRequest) -> String {
        var secrets: [String] = [request.url]
        var rest = Substring(request.url)
        if let schemeEnd = rest.range(of: "://") {
            rest = rest[schemeEnd.upperBound...]
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let tail = rest[authorityEnd...]
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            secrets.append(String(userinfo))
            secrets.append(contentsOf: userinfo.split(separator: ":").map(String.init))
        }
        if tail.count > 1 {
            secrets.append(String(tail))
            for piece in tail.split(whereSeparator: { "/?#&=;".contains($0) }) where looksLikeASecret(piece) {
                secrets.append(String(piece))
                if let decoded = String(piece).removingPercentEncoding, decoded != String(piece) {
                    secrets.append(decoded)
                }
            }
        }
        for header in request.headers {
            let value = header.value.trimmingCharacters(in: .whitespaces)
            secrets.append(value)
            secrets.append(contentsOf: value.split(separator: " ").filter(looksLikeASecret).map(String.init))
        }
        // Longest first, so a whole secret goes before its pieces; very short pieces would only mangle text.
        var result = text
        for secret in Set(secrets).filter({ $0.count >= 3 }).sorted(by: { $0.count > $1.count })
        where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: "[redacted]")
        }
        return result
    }

    /// A piece of a URL or header that may be (part of) a token: long, or carrying digits. Short
    /// plain words (`reset`, `hooks`, `Bearer`) are left alone so errors such as "Connection reset
    /// by peer" stay readable; whole URLs, paths and header values are always removed.
    static func looksLikeASecret(_ piece: Substring) -> Bool {
        piece.count >= 8 || piece.contains(where: \.isNumber)
    }
}

extension TransportError {
    /// libcurl refused a certificate (see `CurlTransport.certificateRefusedCodes`): a retry within
    /// seconds meets the same certificate, so a caller waiting for a server to come up stops here.
    public var isCertificateRefused: Bool {
        kind == .tls && CurlTransport.certificateRefusedCodes.contains(code)
    }
}
