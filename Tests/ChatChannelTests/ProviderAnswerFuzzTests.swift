import Foundation
import HeraldChannels
import HeraldCore
import HeraldTransport
import Synchronization
import Testing
import TestSupport

/// Seeded fuzzing of providers' answers against every HTTP channel type: random statuses, rate-limit
/// headers and bodies with hostile waits (`nan`, `inf`, `1e30`, `99999999999999999999`, far and
/// impossible dates), provider-shaped JSON and garbage. Whatever comes back, `deliver` returns a
/// receipt or throws a `DeliveryError` whose wait is absent or within [0, 100 years] — never a
/// trap, never another error type. A failure names its seed: replay it with
/// `HERALD_FUZZ_SEED=<seed> swift test --filter ProviderAnswerFuzzTests`.
///
/// Serialized, and the scripted transport yields on every request: its answers never wait, so a
/// run would otherwise hold the cooperative pool's threads (two on two cores) for its whole length
/// and starve the suite's other tests — under load, servers they start missed their 10 s to listen.
@Suite(.serialized) struct ProviderAnswerFuzzTests {
    /// Every HTTP channel type in the registry, in each mode that talks to the provider differently.
    static let configs: [(type: String, values: [String: String])] = [
        ("webhook", ["url": "http://fuzz.invalid/hook", "secret": "whsec_ZnV6ei1rZXk="]),
        ("slack", ["token": "xoxb-fuzz", "channel": "#ops", "api_url": "http://fuzz.invalid/api"]),
        ("slack", ["webhook_url": "http://fuzz.invalid/services/T0/B0/x"]),
        ("mattermost", ["url": "http://fuzz.invalid", "token": "mm-fuzz", "channel_id": "c0ffee"]),
        ("mattermost", ["webhook_url": "http://fuzz.invalid/hooks/x"]),
        ("discord", ["webhook_url": "http://fuzz.invalid/api/webhooks/1/x"]),
        ("teams", ["webhook_url": "http://fuzz.invalid/workflows/x"]),
        ("matrix", ["homeserver": "http://fuzz.invalid", "access_token": "syt_fuzz", "room": "!room:fuzz.invalid"]),
        ("telegram", ["token": "1:fuzz", "chat_id": "-100123", "api_url": "http://fuzz.invalid"]),
        ("mastodon", ["url": "http://fuzz.invalid", "token": "m-fuzz"]),
        ("bluesky", ["identifier": "herald.fuzz.invalid", "app_password": "abcd-efgh-ijkl-mnop", "service": "http://fuzz.invalid"]),
        ("x", ["consumer_key": "ck", "consumer_secret": "cs", "access_token": "at", "access_token_secret": "ats",
               "api_url": "http://fuzz.invalid"]),
    ]

    static let answersPerSeed = 400

    static var seeds: [UInt64] {
        if let one = ProcessInfo.processInfo.environment["HERALD_FUZZ_SEED"].flatMap({ UInt64($0) }) { return [one] }
        return [1, 2, 3, 20261125, 0xDEAD_BEEF, 0x5EED_0F_4E4A1D]
    }

    @Test func everyTypeIsCovered() {
        let fuzzed = Set(Self.configs.map(\.type))
        // Not HTTP: email and subscribers (SMTP), console and statuspage (local).
        #expect(fuzzed == Set(ChannelRegistry.types).subtracting(["email", "subscribers", "console", "statuspage"]))
    }

    @Test(arguments: seeds)
    func hostileAnswersNeverTrapAndWaitsStayInRange(_ seed: UInt64) async throws {
        let transport = ScriptedTransport(seed: seed)
        var channels: [any Channel] = []
        for (type, values) in Self.configs {
            let settings = ChannelSettings(channel: "fuzz-\(type)-\(channels.count)", type: type, values: values)
            channels.append(try ChannelRegistry.factories[type]!(settings, ChannelContext(transport: transport, timeout: .seconds(5))))
            try settings.finish()
        }
        var outcomes: [String: Int] = [:]
        for n in 0..<Self.answersPerSeed {
            let channel = channels[transport.pick(channels.count)]
            let thread = transport.pick(3) == 0 ? transport.threadReference(for: channel.type) : nil
            let message = Self.message(n, kind: thread == nil ? .notice : .allClear, thread: thread)
            transport.note("seed \(seed), delivery #\(n) on \(channel.type) (\(channel.name))")
            do {
                _ = try await channel.deliver(message)
                outcomes["receipt", default: 0] += 1
            } catch let error as DeliveryError {
                outcomes[error.isTransient ? "transient" : "permanent", default: 0] += 1
                if let wait = error.retryAfter {
                    outcomes["with a wait", default: 0] += 1
                    #expect(wait >= .zero && wait <= .longestAccepted,
                            "\(transport.context): wait \(wait) out of range; answers: \(transport.lastAnswers)")
                }
            } catch {
                Issue.record("\(transport.context): \(type(of: error)) is not a DeliveryError: \(error); answers: \(transport.lastAnswers)")
            }
        }
        print("fuzz seed \(seed): \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        // The generator reaches every kind of outcome, else the test fuzzes less than it claims.
        #expect((outcomes["receipt"] ?? 0) > 0 && (outcomes["transient"] ?? 0) > 0 && (outcomes["permanent"] ?? 0) > 0
                && (outcomes["with a wait"] ?? 0) > 0, "seed \(seed): \(outcomes)")
    }

    static func message(_ n: Int, kind: DeliveryKind, thread: String?) -> OutboundMessage {
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        var event = makeEvent("fuzz-\(n % 7)", kind == .notice ? .triggered : .resolved, at: at)
        event.link = "https://status.example.com/fuzz"
        let incident = Incident(key: event.incident, status: kind == .notice ? .open : .resolved, cycle: 1, title: event.title,
                                severity: .critical, openedAt: at, resolvedAt: kind == .notice ? nil : at, updatedAt: at)
        return OutboundMessage(deliveryId: "dlv_fuzz_\(n)", kind: kind, event: event, incident: incident,
                               title: event.title, text: "resolvers time out", thread: thread)
    }
}

/// An `HTTPTransport` whose every answer is drawn from a seeded generator: the same seed gives the
/// same answers in the same order. It also fails some requests as a transport would.
final class ScriptedTransport: HTTPTransport {
    private struct State {
        var rng: SplitMix64
        var context = ""
        var answers: [String] = []
    }
    private let state: Mutex<State>

    init(seed: UInt64) {
        state = Mutex(State(rng: SplitMix64(seed: seed)))
    }

    func note(_ context: String) {
        state.withLock { $0.context = context; $0.answers = [] }
    }
    var context: String { state.withLock { $0.context } }
    var lastAnswers: String { state.withLock { $0.answers.joined(separator: " | ") } }

    func pick(_ n: Int) -> Int { state.withLock { Int($0.rng.next() % UInt64(n)) } }

    /// A plausible reference to thread onto, per provider.
    func threadReference(for type: String) -> String {
        switch type {
        case "bluesky": return "at://did:plc:fuzz/app.bsky.feed.post/3k bafyfuzz"
        case "telegram", "x", "mastodon": return "12345"
        case "matrix": return "$event:fuzz.invalid"
        default: return "1764064920.000100"
        }
    }

    // Waits as providers write them, most of them hostile.
    static let waits = [
        "nan", "-nan", "NaN", "inf", "-inf", "Infinity", "+inf", "1e30", "-1e30", "1e308", "1.7976931348623157e308",
        "9223372036854775807", "9223372036854775808", "99999999999999999999", "18446744073709551616", "-5", "-0",
        "0", "1", "2.5", "30", "abc", "", " ", "0x1p1000", "1e-400", "３０",
        "Fri, 31 Dec 9999 23:59:59 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "Wed, 31 Dec 1969 23:59:59 GMT",
        "Sat, 01 Jan 0000 00:00:00 GMT", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z",
        "2000-01-01T00:00:00Z", "2999-01-01T00:00:00.999Z", "1800000030", "-1800000030", "253402300799", "1e19",
    ]
    static let waitHeaders = ["Retry-After", "X-RateLimit-Reset", "x-rate-limit-reset", "RateLimit-Reset", "X-Ratelimit-Reset"]
    // JSON numbers as a provider might send them (1e400 is not valid JSON to every parser).
    static let jsonNumbers = [
        "1e30", "-1e30", "1e308", "-1e308", "1e400", "99999999999999999999", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "-5", "0", "2.5", "0.0001", "true", "null", "\"3\"", "\"inf\"", "[]", "{}",
    ]
    static let statuses = [200, 200, 201, 204, 400, 401, 403, 404, 408, 409, 413, 422, 425, 429, 429, 429, 500, 502, 503, 504]

    func body(_ rng: inout SplitMix64) -> String {
        func any<T>(_ list: [T]) -> T { list[Int(rng.next() % UInt64(list.count))] }
        let n = any(Self.jsonNumbers)
        let shapes = [
            "", "ok", "not json {", "\u{0}\u{1}binary\u{7F}", String(repeating: "x", count: 5000),
            #"{"retry_after":\#(n),"global":false,"message":"You are being rate limited."}"#,
            #"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":\#(n)}}"#,
            #"{"ok":false,"error_code":\#(n),"description":"odd"}"#,
            #"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":\#(n)}"#,
            #"{"errcode":"M_FORBIDDEN","error":"no"}"#,
            #"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#,
            #"{"error":"ExpiredToken","message":"Token has expired"}"#,
            #"{"error":"InvalidRequest","message":"Record already exists"}"#,
            #"{"error":"AuthenticationRequired"}"#,
            #"{"ok":false,"error":"ratelimited"}"#,
            #"{"ok":false,"error":"channel_not_found"}"#,
            #"{"ok":true,"channel":"C0123","ts":"1764064920.000100"}"#,
            #"{"id":"1111","channel_id":"42"}"#, #"{"id":\#(n)}"#,
            #"{"event_id":"$abc:fuzz.invalid"}"#, #"{"event_id":\#(n)}"#,
            #"{"ok":true,"result":{"message_id":\#(n)}}"#, #"{"ok":true,"result":{"message_id":7}}"#,
            #"{"uri":"at://did:plc:fuzz/app.bsky.feed.post/3k","cid":"bafy"}"#,
            #"{"accessJwt":"a","refreshJwt":"r","did":"did:plc:fuzz"}"#,
            #"{"data":{"id":"1790000000000000000","text":"x"}}"#,
            #"{"errors":[{"message":"Too Many Requests","code":88}],"retry_after":\#(n)}"#,
            "[1,2,3]", "\(n)",
        ]
        return any(shapes)
    }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        // A real transport suspends here; so does this one, to share the pool with other tests.
        await Task.yield()
        let (answer, failure) = state.withLock { s -> (HTTPResponse?, TransportError?) in
            func any<T>(_ list: [T]) -> T { list[Int(s.rng.next() % UInt64(list.count))] }
            if s.rng.next() % 20 == 0 {
                let kind = any([TransportError.Kind.timeout, .connect, .receive, .tls, .resolve])
                s.answers.append("transport \(kind)")
                return (nil, TransportError(kind: kind, message: "fuzzed \(kind)"))
            }
            let status = s.rng.next() % 8 == 0 ? Int(100 + s.rng.next() % 500) : any(Self.statuses)
            var headers: [(name: String, value: String)] = []
            for _ in 0..<Int(s.rng.next() % 4) {
                headers.append((any(Self.waitHeaders), any(Self.waits)))
            }
            let body = body(&s.rng)
            s.answers.append("\(request.method) \(status) \(headers.map { "\($0.name): \($0.value)" }) \(body.prefix(120))")
            return (HTTPResponse(status: status, headers: headers, body: Array(body.utf8)), nil)
        }
        if let failure { throw failure }
        return answer!
    }
}

/// A small, fast, seedable generator (Steele, Lea, Flood 2014), so that a seed replays exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
