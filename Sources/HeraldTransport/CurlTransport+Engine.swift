import CCurl
import Foundation

extension CurlTransport {
    /// Owns the multi handle and the loop thread. State behind `condition` is shared with submitters;
    /// everything else (`active`, `idle`, libcurl handles) is touched only by the loop thread.
    final class Engine: @unchecked Sendable {
        private let condition = NSCondition()
        // Guarded by `condition`:
        private var queue: [Transfer] = []
        private var stopping = false
        private var finished = false
        private var loopThread: Thread?

        // Loop thread only:
        private let multi: UnsafeMutableRawPointer?
        private let share: UnsafeMutableRawPointer?
        private var active = Set<UnsafeMutableRawPointer>()
        private var idle: [UnsafeMutableRawPointer] = []
        private let maxIdleHandles: Int
        /// Per SMTP server (host:port) of a `smtp://` URL: true while only cleartext transfers
        /// (`starttls: off`) went there, false once a transfer wanting TLS did too.
        var smtpCleartextOnly: [String: Bool] = [:]
        private let userAgent: String
        private let initError: TransportError?

        init(maxConnectionsPerHost: Int, maxTotalConnections: Int, userAgent: String) {
            self.userAgent = userAgent
            // Connections and easy handles kept for reuse (however many may be open at once).
            let kept = maxTotalConnections == 0 ? 512 : maxTotalConnections
            maxIdleHandles = min(kept, 256)
            if let problem = CurlTransport.unavailable {
                multi = nil
                share = nil
                initError = TransportError(kind: .other, code: Int32(bitPattern: hc_global_init_once().rawValue), message: problem)
                finished = true
                stopping = true
                return
            }
            multi = hc_multi_init()
            share = hc_share_new_ssl_sessions()
            guard let multi else {
                initError = TransportError(kind: .other, message: "curl_multi_init failed")
                finished = true
                stopping = true
                return
            }
            initError = nil
            _ = hc_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxConnectionsPerHost)
            _ = hc_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxTotalConnections)
            _ = hc_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, kept)
            let thread = Thread { [self] in self.run() }
            thread.name = "herald-curl"
            loopThread = thread
            thread.start()
        }

        // MARK: submitters (any thread)

        func submit(_ transfer: Transfer) {
            condition.lock()
            if stopping {
                condition.unlock()
                transfer.finish(.failure(initError ?? Self.shutdownError))
                return
            }
            queue.append(transfer)
            // Under the lock: the loop cannot tear the multi handle down until it has seen `stopping`,
            // which is only set under this lock.
            hc_multi_wakeup(multi)
            condition.unlock()
        }

        func shutdown() {
            condition.lock()
            if !stopping {
                stopping = true
                hc_multi_wakeup(multi)
            }
            let onLoopThread = loopThread.map { $0 == Thread.current } ?? false
            if !onLoopThread {
                while !finished {
                    condition.wait()
                }
            }
            condition.unlock()
        }

        static let shutdownError = TransportError(kind: .shutdown, message: "transport is shut down")

        // MARK: loop thread

        private func run() {
            guard let multi else { return }
            var incoming: [Transfer] = []
            while true {
                condition.lock()
                swap(&incoming, &queue)
                let stop = stopping
                condition.unlock()
                if stop {
                    for transfer in incoming {
                        transfer.finish(.failure(Self.shutdownError))
                    }
                    break
                }
                for transfer in incoming {
                    start(transfer, multi: multi)
                }
                incoming.removeAll(keepingCapacity: true)

                var running: Int32 = 0
                _ = hc_multi_perform(multi, &running)
                collectCompleted(multi: multi)

                var ready: Int32 = 0
                let pollRC = hc_multi_poll(multi, 1000, &ready)
                if pollRC != CURLM_OK {
                    // Should not happen; avoid a hot loop if it does.
                    Thread.sleep(forTimeInterval: 0.01)
                }
            }
            tearDown(multi: multi)
        }

        private func start(_ transfer: Transfer, multi: UnsafeMutableRawPointer) {
            guard let easy = idle.popLast() ?? hc_easy_init() else {
                transfer.finish(.failure(TransportError(kind: .other, message: "curl_easy_init failed")))
                return
            }
            let opaque = Unmanaged.passRetained(transfer).toOpaque()
            let rc = configure(easy, for: transfer, opaque: opaque)
            if rc != CURLE_OK {
                Unmanaged<Transfer>.fromOpaque(opaque).release()
                transfer.freeHeaderList()
                recycle(easy)
                transfer.finish(.failure(CurlTransport.error(for: rc, transfer: transfer)))
                return
            }
            let mrc = hc_multi_add_handle(multi, easy)
            if mrc != CURLM_OK {
                Unmanaged<Transfer>.fromOpaque(opaque).release()
                transfer.freeHeaderList()
                recycle(easy)
                transfer.finish(.failure(TransportError(
                    kind: .other, code: Int32(truncatingIfNeeded: mrc.rawValue),
                    message: "curl_multi_add_handle: " + String(cString: hc_multi_strerror(mrc)))))
                return
            }
            active.insert(easy)
        }

        private func collectCompleted(multi: UnsafeMutableRawPointer) {
            var remaining: Int32 = 0
            while let message = hc_multi_info_read(multi, &remaining) {
                guard hc_msg_is_done(message) != 0, let easy = hc_msg_easy(message) else { continue }
                let result = hc_msg_result(message)
                complete(easy, result: result, multi: multi)
            }
        }

        private func complete(_ easy: UnsafeMutableRawPointer, result: CURLcode, multi: UnsafeMutableRawPointer) {
            var privateData: UnsafeMutableRawPointer?
            _ = hc_easy_getinfo_ptr(easy, CURLINFO_PRIVATE, &privateData)
            var status = 0
            _ = hc_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            var micros: curl_off_t = 0
            _ = hc_easy_getinfo_off_t(easy, CURLINFO_TOTAL_TIME_T, &micros)

            _ = hc_multi_remove_handle(multi, easy)
            active.remove(easy)
            guard let privateData else {
                recycle(easy)
                return
            }
            let transfer = Unmanaged<Transfer>.fromOpaque(privateData).takeRetainedValue()
            transfer.freeHeaderList()
            recycle(easy)

            if case .mail = transfer.payload {
                transfer.finish(CurlTransport.mailResult(result, code: status, micros: Int64(micros), transfer: transfer))
            } else if result == CURLE_OK && status > 0 {
                transfer.finish(.success(.http(HTTPResponse(
                    status: status, headers: transfer.headers, body: transfer.body,
                    duration: .microseconds(Int64(micros))))))
            } else if result == CURLE_OK {
                transfer.finish(.failure(TransportError(kind: .receive, message: "no HTTP status received")))
            } else {
                transfer.finish(.failure(CurlTransport.error(for: result, transfer: transfer)))
            }
        }

        /// Keeps a small pool of easy handles: a reused handle keeps its TLS session cache and lets the
        /// multi handle's connection cache hand it a live connection.
        private func recycle(_ easy: UnsafeMutableRawPointer) {
            if idle.count < maxIdleHandles {
                hc_easy_reset(easy)
                idle.append(easy)
            } else {
                hc_easy_cleanup(easy)
            }
        }

        private func tearDown(multi: UnsafeMutableRawPointer) {
            for easy in active {
                var privateData: UnsafeMutableRawPointer?
                _ = hc_easy_getinfo_ptr(easy, CURLINFO_PRIVATE, &privateData)
                _ = hc_multi_remove_handle(multi, easy)
                hc_easy_cleanup(easy)
                if let privateData {
                    let transfer = Unmanaged<Transfer>.fromOpaque(privateData).takeRetainedValue()
                    transfer.freeHeaderList()
                    transfer.finish(.failure(Self.shutdownError))
                }
            }
            active.removeAll()
            for easy in idle {
                hc_easy_cleanup(easy)
            }
            idle.removeAll()
            condition.lock()
            // Anything that slipped in is answered too (submit checks `stopping`, so this should be empty).
            let leftovers = queue
            queue.removeAll()
            hc_multi_cleanup(multi)
            if let share {
                hc_share_cleanup(share)
            }
            finished = true
            condition.broadcast()
            condition.unlock()
            for transfer in leftovers {
                transfer.finish(.failure(Self.shutdownError))
            }
        }

        // MARK: per-transfer options

        private func configure(_ easy: UnsafeMutableRawPointer, for transfer: Transfer, opaque: UnsafeMutableRawPointer) -> CURLcode {
            let request: HTTPRequest
            switch transfer.payload {
            case .http(let http): request = http
            case .mail(let mail): return configureMail(easy, mail, for: transfer, opaque: opaque, share: share)
            }
            var rc = CURLE_OK
            func set(_ code: CURLcode) {
                if rc == CURLE_OK && code != CURLE_OK { rc = code }
            }
            // Error buffer first, so that later failures fill it.
            set(hc_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer))
            set(hc_easy_setopt_ptr(easy, CURLOPT_PRIVATE, opaque))
            set(hc_easy_setopt_write_cb(easy, curlWriteCallback))
            set(hc_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, opaque))
            set(hc_easy_setopt_header_cb(easy, curlHeaderCallback))
            set(hc_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, opaque))
            set(hc_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
            set(hc_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
            set(hc_easy_setopt_str(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
            set(hc_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0))
            set(hc_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, request.verifyTLS ? 1 : 0))
            set(hc_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, request.verifyTLS ? 2 : 0))
            set(hc_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout)))
            set(hc_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.connectTimeout)))
            set(hc_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1))
            // Over TLS, wait for a connection being opened to the host to say (by ALPN, in its
            // handshake) whether it multiplexes HTTP/2, rather than opening another. Over plain
            // HTTP there is no HTTP/2 here, and libcurl would learn that only from the first
            // answer: every other transfer to the host would wait for a slow receiver's first
            // answer, its timeout running, and could time out without having been sent.
            let overTLS = request.url.prefix(8).lowercased() == "https://"
            set(hc_easy_setopt_long(easy, CURLOPT_PIPEWAIT, overTLS ? 1 : 0))
            // Optional niceties: ignore failures (e.g. libcurl built without zlib).
            _ = hc_easy_setopt_str(easy, CURLOPT_ACCEPT_ENCODING, "")
            if let share {
                _ = hc_easy_setopt_ptr(easy, CURLOPT_SHARE, share)
            }
            if !userAgent.isEmpty {
                set(hc_easy_setopt_str(easy, CURLOPT_USERAGENT, userAgent))
            }
            set(hc_easy_setopt_str(easy, CURLOPT_URL, request.url))

            let method = request.method.uppercased()
            switch method {
            case "GET" where request.body.isEmpty:
                set(hc_easy_setopt_long(easy, CURLOPT_HTTPGET, 1))
            case "HEAD":
                set(hc_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
            case "POST":
                set(hc_easy_setopt_long(easy, CURLOPT_POST, 1))
                set(setBody(easy, request.body, opaque: opaque))
            default:
                if !request.body.isEmpty || method == "PUT" || method == "PATCH" {
                    set(hc_easy_setopt_long(easy, CURLOPT_POST, 1))
                    set(setBody(easy, request.body, opaque: opaque))
                }
                set(hc_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, request.method))
            }

            var list: UnsafeMutablePointer<curl_slist>?
            var sawExpect = false
            for header in request.headers {
                if HTTPHeaderName.equal(header.name, "Expect") { sawExpect = true }
                // "Name;" is libcurl's syntax for a header with an empty value ("Name:" would remove it).
                let line = header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)"
                guard let appended = hc_slist_append(list, line) else {
                    rc = rc == CURLE_OK ? CURLE_OUT_OF_MEMORY : rc
                    break
                }
                list = appended
            }
            if !sawExpect, let appended = hc_slist_append(list, "Expect:") {
                list = appended
            }
            transfer.headerList = list
            if let list {
                set(hc_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list))
            }
            return rc
        }

        /// The body goes through READFUNCTION (from the request's own bytes, no copy) so that
        /// libcurl must ask SEEKFUNCTION before sending it again (see `rewindUpload`).
        private func setBody(_ easy: UnsafeMutableRawPointer, _ body: [UInt8], opaque: UnsafeMutableRawPointer) -> CURLcode {
            var rc = hc_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            if rc == CURLE_OK { rc = hc_easy_setopt_read_cb(easy, curlReadCallback) }
            if rc == CURLE_OK { rc = hc_easy_setopt_ptr(easy, CURLOPT_READDATA, opaque) }
            if rc == CURLE_OK { rc = hc_easy_setopt_seek_cb(easy, curlSeekCallback) }
            if rc == CURLE_OK { rc = hc_easy_setopt_ptr(easy, CURLOPT_SEEKDATA, opaque) }
            return rc
        }

        /// libcurl treats 0 as "no timeout"; never pass it.
        static func milliseconds(_ duration: Duration) -> Int {
            let (seconds, attoseconds) = duration.components
            if seconds >= Int64(Int32.max / 1000) { return Int(Int32.max) }
            let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
            return Int(max(1, ms))
        }
    }
}
