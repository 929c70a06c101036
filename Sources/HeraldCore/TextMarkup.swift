/// The markup a channel's provider reads in a message's text, and how text that comes from an
/// event (title, message, components, labels, link, actor) is made inert in it: anyone with an
/// ingest token — and through them whatever an alert's annotations carry — writes that text, and
/// it must never page a room, form a link or change the message's look. What operators write in
/// templates and channel settings is left as it is, so a mention written there on purpose works.
public enum TextMarkup: String, Sendable, Hashable, CaseIterable {
    /// Read as plain text (email, signed webhooks, the status page, which escapes for itself).
    case plain
    /// Slack mrkdwn: `&`, `<` and `>` become entities, so no `<!channel>`, `<@U…>` or `<url|label>`
    /// can be formed; a bare `@channel` is text to Slack's API.
    case slack
    /// Markdown as Mattermost, Discord and Teams read it: markup characters backslash-escaped, and
    /// `@` followed by a zero-width space, so `@all`, `@channel`, `@here` and `@user` mention nobody.
    case markdown
    /// An Adaptive Card's Markdown subset (Teams): emphasis and link characters backslash-escaped
    /// (a mention needs an entity Herald never sends, so `@` is text).
    case teams
    /// HTML as Telegram (`parse_mode: HTML`) and Matrix (`formatted_body`) read it: `&`, `<`, `>`,
    /// `"` and `'` escaped.
    case html
    /// A microblog post (Mastodon, X): plain text in which `@user` would mention and notify; `@` is
    /// followed by a zero-width space.
    case microblog

    static let zeroWidthSpace = "\u{200B}"

    /// `text` from an event, made inert in this markup.
    public func escape(_ text: String) -> String {
        switch self {
        case .plain:
            return text
        case .slack:
            return Self.replacing(text) { c in
                switch c {
                case "&": return "&amp;"
                case "<": return "&lt;"
                case ">": return "&gt;"
                default: return nil
                }
            }
        case .markdown:
            return Self.replacing(text) { c in
                switch c {
                case "\\", "`", "*", "_", "~", "[", "]", "(", ")", "<", ">", "#", "|", "!": return "\\" + String(c)
                case "@": return "@" + Self.zeroWidthSpace
                default: return nil
                }
            }
        case .teams:
            return Self.replacing(text) { c in
                switch c {
                case "\\", "*", "_", "[", "]", "(", ")": return "\\" + String(c)
                default: return nil
                }
            }
        case .html:
            return Self.replacing(text) { c in
                switch c {
                case "&": return "&amp;"
                case "<": return "&lt;"
                case ">": return "&gt;"
                case "\"": return "&quot;"
                case "'": return "&#39;"
                default: return nil
                }
            }
        case .microblog:
            return Self.replacing(text) { $0 == "@" ? "@" + Self.zeroWidthSpace : nil }
        }
    }

    /// An event's link (an http or https URL, checked at ingest) as it may stand in this markup's
    /// text: still a working link, with the characters that could close or add markup
    /// percent-encoded (`@` included, so no mention can hide in a path).
    public func escapeLink(_ url: String) -> String {
        let special: Set<Character>
        switch self {
        case .plain: return url
        case .slack: special = ["<", ">", "|", " "]
        case .markdown: special = ["<", ">", "(", ")", "[", "]", "`", "*", "|", "@", " ", "!", "\\"]
        case .teams: special = ["(", ")", "[", "]", "*", " ", "\\"]
        case .html: special = ["<", ">", "\"", "'", " "]
        case .microblog: special = ["@", " "]
        }
        var out = ""
        for c in url {
            if special.contains(c) {
                for b in String(c).utf8 { out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2) }
            } else {
                out.append(c)
            }
        }
        return self == .slack || self == .html ? out.replacingOccurrences(of: "&", with: "&amp;") : out
    }

    private static func replacing(_ text: String, _ replacement: (Character) -> String?) -> String {
        guard text.contains(where: { replacement($0) != nil }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for c in text {
            if let r = replacement(c) { out += r } else { out.append(c) }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
