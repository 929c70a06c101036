import Crypto
import Foundation
import HeraldCore
import HeraldStore
import NIOCore
import Synchronization

/// The public status documents (page, Atom feed, JSON), rendered once per change and served from
/// memory: during an outage customers reload the page by the thousand, and each reload must not
/// cost a store read and a render (nor slow the all-clear they are waiting for). A publish through
/// this node drops them at once; `ttl` bounds how long a change made elsewhere (another node of a
/// cluster, the retention pruner) takes to show.
final class StatusCache: Sendable {
    enum Kind: Sendable { case page, feed, json }

    struct Document: Sendable {
        var body: ByteBuffer
        /// A strong validator of the posts, maintenance windows and title the document was made from.
        var etag: String
        /// The newest post's or maintenance step's time, as an HTTP date; nil with neither.
        var lastModified: Date?
    }

    private struct Entry {
        var generation: UInt64
        var title: String
        var madeAt: ContinuousClock.Instant
        var document: Task<Document, any Error>
    }
    private struct State {
        var generation: UInt64 = 0
        var entries: [Kind: Entry] = [:]
    }
    private let state = Mutex(State())
    private let ttl: Duration

    init(ttl: Duration) {
        self.ttl = ttl
    }

    /// The status changed here: the next request renders again.
    func invalidate() {
        state.withLock {
            $0.generation &+= 1
            $0.entries.removeAll()
        }
    }

    /// The document, from memory while it is current; else rendered once (concurrent readers wait
    /// for the same render).
    func document(_ kind: Kind, title: String, render: @escaping @Sendable () async throws -> ([StatusPost], [Silence], String)) async throws -> Document {
        let now = ContinuousClock.now
        let task = state.withLock { s -> Task<Document, any Error> in
            if let entry = s.entries[kind], entry.generation == s.generation, entry.title == title, now - entry.madeAt < ttl {
                return entry.document
            }
            let task = Task<Document, any Error> {
                let (posts, windows, body) = try await render()
                return Document(body: ByteBuffer(string: body), etag: Self.etag(posts, windows, title: title, kind: kind),
                                lastModified: (posts.map(\.postedAt) + windows.compactMap(\.lastChanged)
                                               + windows.flatMap { [$0.startsAt, $0.endsAt] }.filter { $0 <= Date() }).max())
            }
            s.entries[kind] = Entry(generation: s.generation, title: title, madeAt: now, document: task)
            return task
        }
        do {
            return try await task.value
        } catch {
            // A failed render is not remembered: the next request tries again.
            state.withLock { s in
                if let entry = s.entries[kind], entry.madeAt == now { s.entries[kind] = nil }
            }
            throw error
        }
    }

    /// From the posts and the maintenance windows shown (their steps and times) and the title.
    static func etag(_ posts: [StatusPost], _ windows: [Silence], title: String, kind: Kind) -> String {
        var hasher = SHA256()
        hasher.update(data: Data("\(kind)\u{0}\(title)\u{0}".utf8))
        // Sorted keys: a dictionary's order differs from one decoding to the next (and per node).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        hasher.update(data: (try? encoder.encode(posts)) ?? Data())
        hasher.update(data: (try? encoder.encode(windows)) ?? Data())
        // A window changes state with time alone (scheduled, in progress, over).
        let now = Date()
        hasher.update(data: Data(windows.map { $0.maintenanceStatus(at: now) }.joined(separator: ",").utf8))
        return "\"" + hasher.finalize().prefix(16).map { String(format: "%02x", $0) }.joined() + "\""
    }
}
