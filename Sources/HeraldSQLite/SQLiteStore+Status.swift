import Foundation
import GRDB
import HeraldCore
import HeraldStore

extension SQLiteStore {
    public func publishStatus(_ post: StatusPost) async throws {
        let body = try encoder.encode(post)
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO status_posts (id, posted_at, body) VALUES (?, ?, ?)",
                               arguments: [post.id, post.postedAt.timeIntervalSince1970, body])
            }
        }
    }

    public func statusPosts(limit: Int) async throws -> [StatusPost] {
        let decoder = self.decoder
        return try await wrap {
            try await pool.read { db in
                try Data.fetchAll(db, sql: "SELECT body FROM status_posts ORDER BY posted_at DESC, id DESC LIMIT ?",
                                  arguments: [max(1, limit)]).map { try decoder.decode(StatusPost.self, from: $0) }
            }
        }
    }
}
