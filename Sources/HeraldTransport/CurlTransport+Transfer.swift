import CCurl
import Foundation

extension CurlTransport {
    /// One request in flight — an HTTP request or an SMTP message. Created on the caller's thread, then
    /// owned by the loop thread. While libcurl holds it (from `curl_multi_add_handle` until the transfer is
    /// done) it is kept alive by an `Unmanaged` retain whose opaque pointer is the
    /// WRITEDATA/HEADERDATA/READDATA/PRIVATE of the easy handle.
    final class Transfer: @unchecked Sendable {
        enum Payload {
            case http(HTTPRequest)
            case mail(MailMessage)
        }
        enum Answer {
            case http(HTTPResponse)
            case mail(MailResponse)
        }
        private enum Waiter {
            case http(CheckedContinuation<HTTPResponse, any Error>)
            case mail(CheckedContinuation<MailResponse, any Error>)

            func resume(throwing error: any Error) {
                switch self {
                case .http(let c): c.resume(throwing: error)
                case .mail(let c): c.resume(throwing: error)
                }
            }
        }

        let payload: Payload
        let maxResponseBytes: Int
        private var continuation: Waiter?

        var body: [UInt8] = []
        /// When set (a download), the body goes to this file descriptor instead of `body`, whole.
        var bodyFile: Int32 = -1
        /// The errno of a failed write to `bodyFile`; the transfer is then aborted.
        var bodyFileError: Int32 = 0
        var headers: [(name: String, value: String)] = []
        /// Request headers (HTTP) or `RCPT TO` addresses (SMTP) handed to libcurl; freed once libcurl is
        /// done with the easy handle.
        var headerList: UnsafeMutablePointer<curl_slist>?
        /// How much of an SMTP message or HTTP body the read callback has handed to libcurl.
        var uploadOffset = 0
        /// libcurl sent the request again after a reused connection closed with no answer byte.
        var resent = false
        /// It asked a second time and was refused: the transfer fails with CURLE_SEND_FAIL_REWIND.
        var refusedResend = false
        /// The last SMTP error reply line the server sent (for the error text).
        var lastReply: [UInt8] = []
        let errorBuffer: UnsafeMutablePointer<CChar>

        static let maxHeaderCount = 256

        init(request: HTTPRequest, maxResponseBytes: Int, continuation: CheckedContinuation<HTTPResponse, any Error>) {
            payload = .http(request)
            self.maxResponseBytes = maxResponseBytes
            self.continuation = .http(continuation)
            let size = Int(hc_error_size())
            errorBuffer = .allocate(capacity: size)
            errorBuffer.initialize(repeating: 0, count: size)
        }

        init(mail: MailMessage, continuation: CheckedContinuation<MailResponse, any Error>) {
            payload = .mail(mail)
            // SMTP answers arrive as reply codes, never as a body.
            maxResponseBytes = 0
            self.continuation = .mail(continuation)
            let size = Int(hc_error_size())
            errorBuffer = .allocate(capacity: size)
            errorBuffer.initialize(repeating: 0, count: size)
        }

        deinit {
            freeHeaderList()
            errorBuffer.deallocate()
            // A transfer must never be dropped unanswered.
            continuation?.resume(throwing: TransportError(kind: .other, message: "transfer dropped"))
        }

        func freeHeaderList() {
            if let headerList {
                hc_slist_free_all(headerList)
                self.headerList = nil
            }
        }

        /// Resumes the caller; only the first call has an effect.
        func finish(_ result: Result<Answer, TransportError>) {
            guard let continuation else { return }
            self.continuation = nil
            switch (result, continuation) {
            case (.success(.http(let response)), .http(let c)): c.resume(returning: response)
            case (.success(.mail(let response)), .mail(let c)): c.resume(returning: response)
            case (.success, _): continuation.resume(throwing: TransportError(kind: .other, message: "answer of the wrong kind"))
            case (.failure(let error), _): continuation.resume(throwing: error)
            }
        }

        /// Copies the next piece of the upload (an SMTP message, an HTTP request's body) into
        /// libcurl's buffer; 0 at the end.
        func readUpload(into buffer: UnsafeMutableRawBufferPointer) -> Int {
            switch payload {
            case .mail(let mail): return copyUpload(mail.data, into: buffer)
            case .http(let request): return copyUpload(request.body, into: buffer)
            }
        }

        private func copyUpload(_ data: some ContiguousBytes & Collection, into buffer: UnsafeMutableRawBufferPointer) -> Int {
            let count = min(buffer.count, data.count - uploadOffset)
            guard count > 0 else { return 0 }
            data.withUnsafeBytes { bytes in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[uploadOffset..<(uploadOffset + count)]))
            }
            uploadOffset += count
            return count
        }

        /// A reused connection closed before any answer byte, and libcurl wants to send the request
        /// again on another (up to 5 times). That is right for the keep-alive race (the receiver
        /// closed the idle connection as the request went out, so it never read it) but libcurl
        /// cannot tell it from a receiver that read the request and then reset: each resend would
        /// deliver the message again. One resend is allowed per transfer; a second fails it, and
        /// the dispatcher's retry policy (a recorded attempt, with its backoff) takes over.
        /// A rewind before anything was handed out costs nothing and is always allowed (so an
        /// empty body, like a GET, is left to libcurl's own limit: it carries no message).
        func rewindUpload(to offset: Int64, origin: Int32) -> Int32 {
            guard origin == SEEK_SET, offset >= 0 else { return CURL_SEEKFUNC_CANTSEEK }
            if uploadOffset > 0 {
                if resent {
                    refusedResend = true
                    return CURL_SEEKFUNC_FAIL
                }
                resent = true
            }
            uploadOffset = Int(offset)
            return CURL_SEEKFUNC_OK
        }

        var errorBufferText: String {
            String(cString: errorBuffer)
        }

        // MARK: libcurl callbacks (loop thread)

        /// False aborts the transfer (a download whose file cannot be written).
        func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
            if bodyFile >= 0 {
                var rest = bytes[...]
                while !rest.isEmpty {
                    let n = write(bodyFile, UnsafeRawBufferPointer(rebasing: rest).baseAddress, rest.count)
                    if n < 0 {
                        if errno == EINTR { continue }
                        bodyFileError = errno
                        return false
                    }
                    rest = rest.dropFirst(n)
                }
                return true
            }
            appendBodyInMemory(bytes)
            return true
        }

        private func appendBodyInMemory(_ bytes: UnsafeRawBufferPointer) {
            let room = maxResponseBytes - body.count
            guard room > 0 else { return }
            let take = min(room, bytes.count)
            if body.isEmpty {
                body.reserveCapacity(min(maxResponseBytes, max(take, 4096)))
            }
            body.append(contentsOf: bytes.prefix(take).bindMemory(to: UInt8.self))
        }

        func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
            var line = bytes[...]
            while let last = line.last, last == 0x0A || last == 0x0D {
                line = line.dropLast()
            }
            guard !line.isEmpty else { return }
            // A status line starts a new response (1xx interim, or a later one): keep only the final one's headers.
            if line.starts(with: "HTTP/".utf8) {
                headers.removeAll(keepingCapacity: true)
                return
            }
            // Folded continuation line (obsolete syntax): append to the previous header.
            if let first = line.first, first == 0x20 || first == 0x09 {
                if !headers.isEmpty {
                    headers[headers.count - 1].value += " " + Self.trimmedString(line)
                }
                return
            }
            guard headers.count < Self.maxHeaderCount, let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
            headers.append((name: Self.trimmedString(line[..<colon]), value: Self.trimmedString(line[(colon + 1)...])))
        }

        /// The bytes without surrounding spaces and tabs, as a String (header lines arrive once
        /// per response: Foundation's trimming was a visible cost per delivery).
        static func trimmedString(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
            var part = bytes
            while let b = part.first, b == 0x20 || b == 0x09 { part = part.dropFirst() }
            while let b = part.last, b == 0x20 || b == 0x09 { part = part.dropLast() }
            return String(decoding: UnsafeRawBufferPointer(rebasing: part), as: UTF8.self)
        }
    }
}

/// WRITEFUNCTION: `userdata` is the transfer's unretained opaque pointer. Consumes everything
/// (past the cap it is discarded), except when a download's file cannot be written: 0 aborts.
let curlWriteCallback: hc_data_cb = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let userdata, total > 0 else { return total }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.appendBody(UnsafeRawBufferPointer(start: pointer, count: total)) ? total : 0
}

/// HEADERFUNCTION: called once per complete header line, status lines included.
let curlHeaderCallback: hc_data_cb = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let userdata, total > 0 else { return total }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(userdata).takeUnretainedValue()
    transfer.appendHeaderLine(UnsafeRawBufferPointer(start: pointer, count: total))
    return total
}

/// SEEKFUNCTION: `userdata` is the transfer's unretained opaque pointer (see `rewindUpload`).
let curlSeekCallback: hc_seek_cb = { userdata, offset, origin in
    guard let userdata else { return CURL_SEEKFUNC_CANTSEEK }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.rewindUpload(to: Int64(offset), origin: origin)
}

/// READFUNCTION: `userdata` is the transfer's unretained opaque pointer (C callbacks cannot capture).
let curlReadCallback: hc_data_cb = { pointer, size, count, userdata in
    let room = size * count
    guard let pointer, let userdata, room > 0 else { return 0 }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.readUpload(into: UnsafeMutableRawBufferPointer(start: pointer, count: room))
}
