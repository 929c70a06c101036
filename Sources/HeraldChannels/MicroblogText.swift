import Foundation
import HeraldCore

/// Fits a message into a microblog post: the title, as much of the text as fits, and the link
/// kept whole at the end. Lengths are in graphemes; a provider that counts every URL as a fixed
/// length (Mastodon, X: 23) passes it as `urlLength`. With `markup`, the text used is the one
/// escaped for it (`@` in event text mentions nobody), and so is the link.
enum MicroblogText {
    static func compose(_ m: OutboundMessage, limit: Int, urlLength: Int? = nil, markup: TextMarkup = .plain) -> String {
        let link = m.event.link.map(markup.escapeLink)
        let linkCost = link.map { 2 + (urlLength ?? $0.count) } ?? 0
        let (title, text) = markup == .plain ? (m.title, m.text) : (m.formattedTitle, m.formattedText)
        let eventTitle = markup.escape(m.event.title)
        // The template's own "More: <link>" line is replaced by the link at the end.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { line in link.map { !line.contains($0) } ?? true }
        let rest = lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        // The title already says the state; the text's first line usually repeats it.
        let body = rest.hasPrefix("Resolved: \(eventTitle)") || rest.hasPrefix(eventTitle)
            ? String(rest.drop(while: { $0 != "\n" })).trimmingCharacters(in: .whitespacesAndNewlines)
            : rest
        let budget = max(0, limit - linkCost)
        var post = "\(ChatText.marker(m)) \(title)".truncated(to: budget)
        let room = budget - post.count - 2
        if room > 8, !body.isEmpty {
            post += "\n\n" + body.truncated(to: room)
        }
        if let link { post += "\n\n" + link }
        return post
    }
}
